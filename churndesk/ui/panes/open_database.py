"""The open-database dialog: the demo, a SQLite file, or a PostgreSQL server, with a retry.

Opening runs on a worker thread (a server that does not answer takes up to the connection
timeout, and an upgrade can take a while), so the dialog stays responsive and shows what went
wrong in words, next to the fields the user can fix.
"""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import quote

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from churndesk import secrets
from churndesk.config import demo_database_path, sqlite_url
from churndesk.db.connect import Database, open_database
from churndesk.db.engine import parse_url
from churndesk.errors import ChurndeskError
from churndesk.progress import ProgressFn
from churndesk.ui.errors import user_message
from churndesk.ui.jobs import JobRunner


def postgres_url(host: str, port: int, database: str, user: str) -> str:
    """A URL without the password: passwords travel separately and never into settings."""
    auth = f"{quote(user, safe='')}@" if user else ""
    return f"postgresql://{auth}{host or 'localhost'}:{port}/{quote(database, safe='')}"


class OpenDatabaseDialog(QDialog):
    """Pick and open a database; ``database`` holds the opened one after ``accept()``."""

    def __init__(self, message: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open a churndesk database")
        self.setMinimumWidth(520)
        self.database: Database | None = None
        self.url: str | None = None
        self._jobs = JobRunner(self)

        self.demo_choice = QRadioButton("The demo database (synthetic customers)")
        self.file_choice = QRadioButton("A SQLite file on this computer")
        self.server_choice = QRadioButton("A PostgreSQL server shared with your team")
        self.demo_choice.setChecked(True)

        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("sqlite_path")
        self.path_edit.setPlaceholderText("churndesk.sqlite3")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        file_row = QHBoxLayout()
        file_row.addWidget(self.path_edit, 1)
        file_row.addWidget(browse)

        self.host_edit = QLineEdit("localhost")
        self.port_spin = QSpinBox()
        self.port_spin.setRange(1, 65535)
        self.port_spin.setValue(5432)
        self.name_edit = QLineEdit("churndesk")
        self.user_edit = QLineEdit()
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.save_password = QCheckBox("Remember the password in the system keyring")
        server_form = QFormLayout()
        server_form.addRow("Server", self.host_edit)
        server_form.addRow("Port", self.port_spin)
        server_form.addRow("Database", self.name_edit)
        server_form.addRow("User", self.user_edit)
        server_form.addRow("Password", self.password_edit)
        server_form.addRow("", self.save_password)
        self.server_box = QWidget()
        self.server_box.setLayout(server_form)

        self.message = QLabel(message)
        self.message.setObjectName("open_message")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b71c1c;")
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setVisible(False)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.try_open)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.demo_choice)
        layout.addWidget(self.file_choice)
        layout.addLayout(file_row)
        layout.addWidget(self.server_choice)
        layout.addWidget(self.server_box)
        layout.addWidget(self.message)
        layout.addWidget(self.progress)
        layout.addWidget(self.buttons)
        for choice in (self.demo_choice, self.file_choice, self.server_choice):
            choice.toggled.connect(self._on_choice_toggled)
        self._on_choice_toggled()

    # -- choosing ----------------------------------------------------------------------------

    @Slot()
    def _on_choice_toggled(self) -> None:
        self.path_edit.setEnabled(self.file_choice.isChecked())
        self.server_box.setEnabled(self.server_choice.isChecked())

    @Slot()
    def _on_browse_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Open or create a SQLite database",
            "churndesk.sqlite3",
            "SQLite databases (*.sqlite3 *.sqlite *.db);;All files (*)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.path_edit.setText(path)
            self.file_choice.setChecked(True)

    def chosen_url(self) -> str:
        """The URL of the chosen database; raises ChurndeskError for an incomplete form."""
        if self.demo_choice.isChecked():
            return sqlite_url(demo_database_path())
        if self.file_choice.isChecked():
            path = self.path_edit.text().strip()
            if not path:
                raise ChurndeskError("Choose a SQLite file (an existing one, or a new name).")
            return sqlite_url(Path(path))
        if not self.name_edit.text().strip():
            raise ChurndeskError("Enter the name of the database on the server.")
        return postgres_url(
            self.host_edit.text().strip(),
            self.port_spin.value(),
            self.name_edit.text().strip(),
            self.user_edit.text().strip(),
        )

    # -- opening -----------------------------------------------------------------------------

    @Slot()
    def try_open(self) -> None:
        try:
            url = self.chosen_url()
        except ChurndeskError as exc:
            self.message.setText(exc.user_message)
            return
        password = self.password_edit.text() if self.server_choice.isChecked() else ""
        demo = self.demo_choice.isChecked() and not demo_database_path().exists()

        def run(progress: ProgressFn, cancel: threading.Event) -> Database:
            if demo:
                from churndesk.services.demo import create_demo_database

                demo_database_path().parent.mkdir(parents=True, exist_ok=True)
                create_demo_database(url, 5000, score=True, progress=progress, cancel=cancel)
            return open_database(url, password=password or None, progress=progress)

        self.url = url
        self.message.setText("Creating the demo database…" if demo else "Connecting…")
        self.message.setStyleSheet("color: palette(text);")
        self.progress.setVisible(True)
        self.buttons.setEnabled(False)
        worker = self._jobs.start("_open", run)
        worker.succeeded.connect(self._on_open_succeeded)
        worker.failed.connect(self._on_open_failed)

    @Slot(object)
    def _on_open_succeeded(self, database: Database) -> None:
        self.progress.setVisible(False)
        self.buttons.setEnabled(True)
        self.database = database
        if self.server_choice.isChecked() and self.save_password.isChecked():
            try:
                secrets.save_database_password(parse_url(database.url), self.password_edit.text())
            except ChurndeskError as exc:
                self.message.setText(exc.user_message)
        self.accept()

    @Slot(object)
    def _on_open_failed(self, exc: object) -> None:
        self.progress.setVisible(False)
        self.buttons.setEnabled(True)
        self.message.setStyleSheet("color: #b71c1c;")
        text = user_message(exc) if isinstance(exc, BaseException) else str(exc)
        self.message.setText(text + " Check the details and press Open to try again.")

    def done(self, result: int) -> None:
        self._jobs.shutdown()
        super().done(result)
