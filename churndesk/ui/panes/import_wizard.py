"""The import wizard: pick a CSV file, check the mapping, run with progress, review the errors."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from churndesk.errors import ChurndeskError
from churndesk.plurals import counted
from churndesk.progress import ProgressFn, step_name
from churndesk.services.customer_fields import FIELD_LABELS, FIELDS
from churndesk.services.importing import (
    ImportPreview,
    ImportRejected,
    ImportResult,
    import_customers,
    preview_import,
)
from churndesk.ui import formatting
from churndesk.ui.errors import user_message
from churndesk.ui.jobs import JobRunner, JobWorker

NOT_IMPORTED = "(not imported)"


def _item(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    return item


def _message_label() -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setStyleSheet("color: #b71c1c;")
    return label


class FilePage(QWizardPage):
    def __init__(self, wizard: ImportWizard) -> None:
        super().__init__()
        self._wizard = wizard
        self.setTitle("Choose a CSV file")
        self.setSubTitle(
            "An export from your CRM or billing system: one row per customer, a header row, "
            "and a column that identifies each customer."
        )
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("import_path")
        self.path_edit.setPlaceholderText("Path to a .csv file")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        self.message = _message_label()
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addStretch(1)
        self.path_edit.textChanged.connect(self.completeChanged)

    def isComplete(self) -> bool:
        return bool(self.path_edit.text().strip())

    def validatePage(self) -> bool:
        try:
            self._wizard.preview = preview_import(Path(self.path_edit.text().strip()))
        except ChurndeskError as exc:
            self.message.setText(exc.user_message)
            return False
        except OSError as exc:
            self.message.setText(f"The file cannot be read: {exc.strerror or exc}.")
            return False
        self.message.clear()
        return True

    @Slot()
    def _on_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import customers", "", "CSV files (*.csv *.txt);;All files (*)"
        )
        if path:
            self.path_edit.setText(path)


class MappingPage(QWizardPage):
    def __init__(self, wizard: ImportWizard) -> None:
        super().__init__()
        self._wizard = wizard
        self.setTitle("Check the columns")
        self.setSubTitle(
            "Each customer field reads from the column shown. Columns not used here are kept "
            "as customer attributes for the churn model."
        )
        self.preview_table = QTableWidget()
        self.preview_table.setObjectName("import_preview")
        self.preview_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.preview_table.verticalHeader().setVisible(False)
        self.combos: dict[str, QComboBox] = {}
        form = QFormLayout()
        for field_name in FIELDS:
            combo = QComboBox()
            combo.setObjectName(f"map_{field_name}")
            combo.currentIndexChanged.connect(self._on_mapping_changed)
            self.combos[field_name] = combo
            form.addRow(FIELD_LABELS[field_name], combo)
        self.churn_values = QLineEdit()
        self.churn_values.setPlaceholderText("yes, true, 1, churned")
        self.churn_values.setToolTip("Values of the status column that mean the customer left")
        form.addRow("Churned when status is", self.churn_values)
        self.all_or_nothing = QCheckBox("Import nothing if any row has an error")
        form.addRow("", self.all_or_nothing)
        self.layout_label = QLabel()
        self.problems = _message_label()
        columns = QHBoxLayout()
        columns.addLayout(form, 1)
        columns.addWidget(self.preview_table, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.layout_label)
        layout.addLayout(columns)
        layout.addWidget(self.problems)
        self._filling = False

    def initializePage(self) -> None:
        preview = self._wizard.preview
        assert preview is not None
        self._filling = True
        for field_name, combo in self.combos.items():
            combo.clear()
            combo.addItem(NOT_IMPORTED, "")
            for column in preview.columns:
                combo.addItem(column, column)
            chosen = preview.mapping.get(field_name)
            combo.setCurrentIndex(combo.findData(chosen) if chosen else 0)
        self._filling = False
        self._show(preview)

    def _show(self, preview: ImportPreview) -> None:
        names = {"telco": "IBM Telco sample layout", "churndesk": "churndesk export layout"}
        self.layout_label.setText(
            f"{preview.path.name}: {preview.format.encoding}, "
            f"delimiter {preview.format.delimiter!r}, "
            f"{names.get(preview.layout, 'custom layout')}."
        )
        table = self.preview_table
        table.clear()
        table.setColumnCount(len(preview.columns))
        table.setHorizontalHeaderLabels(list(preview.columns))
        table.setRowCount(len(preview.rows))
        for r, row in enumerate(preview.rows):
            for c, value in enumerate(row[: len(preview.columns)]):
                table.setItem(r, c, _item(value))
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.problems.setText("\n".join(preview.problems))
        self.completeChanged.emit()

    def mapping(self) -> dict[str, str]:
        return {f: str(combo.currentData() or "") for f, combo in self.combos.items()}

    def churn_value_list(self) -> list[str] | None:
        values = [v.strip() for v in self.churn_values.text().split(",") if v.strip()]
        return values or None

    @Slot()
    def _on_mapping_changed(self) -> None:
        if self._filling or self._wizard.preview is None:
            return
        try:
            preview = preview_import(self._wizard.preview.path, mapping=self.mapping())
        except ChurndeskError as exc:
            self.problems.setText(exc.user_message)
            return
        self._wizard.preview = preview
        self._show(preview)

    def isComplete(self) -> bool:
        preview = self._wizard.preview
        return preview is not None and not preview.problems


class RunPage(QWizardPage):
    def __init__(self, wizard: ImportWizard) -> None:
        super().__init__()
        self._wizard = wizard
        self.setTitle("Importing")
        self.setSubTitle("Nothing is stored until the import commits; until then you can cancel.")
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.status = QLabel("Starting…")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.time_left = QLabel()
        self.time_left.setStyleSheet("color: palette(placeholder-text);")
        self.cancel_button = QPushButton("Cancel import")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.message = _message_label()
        # Steps done so far with how long each took: a million rows take a minute, and the
        # bar alone does not say where that minute went.
        self.steps = QLabel()
        self.steps.setTextFormat(Qt.TextFormat.PlainText)
        self.steps.setStyleSheet("color: palette(placeholder-text);")
        layout = QVBoxLayout(self)
        heading = QHBoxLayout()
        heading.addWidget(self.status, 1)
        heading.addWidget(self.time_left)
        layout.addLayout(heading)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button, alignment=Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.steps)
        layout.addWidget(self.message)
        layout.addStretch(1)
        self.worker: JobWorker | None = None
        self.finished = False
        self.clock: Callable[[], float] = time.monotonic
        self._done_steps: list[str] = []
        self._step = ""
        self._step_text = ""
        self._step_started = 0.0
        self._started: float | None = None
        self._fraction = 0.0
        # The time left is estimated again every second, so it grows while a long step (an
        # index rebuild) holds the bar still instead of standing at a stale figure.
        self.tick = QTimer(self)
        self.tick.setInterval(1000)
        self.tick.timeout.connect(self._on_tick)

    def initializePage(self) -> None:
        self.finished = False
        self.message.clear()
        self._done_steps.clear()
        self._step = ""
        self._started = None
        self._fraction = 0.0
        self.steps.clear()
        self.bar.setValue(0)
        self.time_left.clear()
        self.tick.start()
        self.cancel_button.setEnabled(True)
        self.worker = self._wizard.start_import()
        if self.worker is not None:
            self.worker.progressed.connect(self._on_worker_progressed)

    def isComplete(self) -> bool:
        return self.finished

    def done(self, message: str = "") -> None:
        """The import ended: successfully unless there is a ``message`` (why it stopped)."""
        self.finished = True
        self.tick.stop()
        self.time_left.clear()
        self.cancel_button.setEnabled(False)
        self._end_step(self.clock(), stopped=bool(message))
        self.message.setText(message)
        self.completeChanged.emit()

    def _end_step(self, now: float, stopped: bool = False) -> None:
        if self._step and self._step != "Import":  # "Import finished" is the end, not a step
            took = formatting.duration(now - self._step_started)
            line = f"✗ Stopped while: {self._step_text}" if stopped else f"✓ {self._step_text}"
            self._done_steps.append(f"{line} ({took})")
            self.steps.setText("\n".join(self._done_steps))
        self._step = ""

    @Slot(float, str)
    def _on_worker_progressed(self, fraction: float, text: str) -> None:
        now = self.clock()
        if self._started is None:
            self._started = now
        self._fraction = fraction
        self.bar.setValue(int(fraction * 100))
        self._show_time_left(now - self._started)
        self.status.setText(text or "Importing…")
        step = step_name(text)
        if step == "Committing":
            # From here on the import is saved whatever happens: nothing left to cancel.
            self.cancel_button.setEnabled(False)
        if step != self._step:
            self._end_step(now)
            self._step = step
            self._step_started = now
        self._step_text = text

    @Slot()
    def _on_tick(self) -> None:
        if self._started is not None and not self.finished:
            self._show_time_left(self.clock() - self._started)

    def _show_time_left(self, elapsed: float) -> None:
        """Show "about 40 s left": the time so far scaled by the share of the bar still to go.

        The import lays its bar out by where the time of a large import goes (reading,
        saving, rebuilding), so the share done is a fair clock. Nothing is promised before
        5 % and 3 s of evidence.
        """
        done = self._fraction
        left = elapsed * (1 - done) / done if done >= 0.05 and elapsed >= 3 else 0.0
        self.time_left.setText(f"about {formatting.duration(left)} left" if left >= 1 else "")

    @Slot()
    def _on_cancel_clicked(self) -> None:
        if self.worker is not None:
            self.worker.cancel_event.set()
            self.status.setText("Cancelling…")


class ResultPage(QWizardPage):
    def __init__(self, wizard: ImportWizard) -> None:
        super().__init__()
        self._wizard = wizard
        self.setTitle("Import finished")
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setWordWrap(True)
        self.errors = QTableWidget(0, 4)
        self.errors.setObjectName("import_errors")
        self.errors.setHorizontalHeaderLabels(["Row", "Column", "Value", "Problem"])
        self.errors.horizontalHeader().setStretchLastSection(True)
        self.errors.verticalHeader().setVisible(False)
        self.save_button = QPushButton("Save error report…")
        self.save_button.clicked.connect(self._on_save_clicked)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.errors, 1)
        layout.addWidget(self.save_button, alignment=Qt.AlignmentFlag.AlignLeft)
        layout.addStretch()  # keeps the summary at the top when there is no table

    def initializePage(self) -> None:
        result = self._wizard.result
        if result is None:
            return
        verb = "Imported" if result.committed else "Nothing was imported:"
        text = (
            f"{verb} {result.imported:,} of {counted(result.rows, 'row')} — "
            f"{result.inserted:,} new, {result.updated:,} updated, {result.unchanged:,} unchanged, "
            f"{result.rejected:,} rejected, in {formatting.duration(result.seconds)}."
        )
        if result.error_count > len(result.errors):
            text += f" The first {len(result.errors):,} of {result.error_count:,} problems:"
        elif result.error_count:
            text += " Problems:"
        else:
            text += " No row had a problem."
        if result.warnings:  # the import is saved, but something after it went wrong
            text += "\n\n" + "\n".join(result.warnings)
        self.summary.setText(text)
        # An empty problem table and a disabled report button would only raise questions.
        self.errors.setHidden(result.error_count == 0)
        self.save_button.setHidden(result.error_count == 0)
        self.errors.setRowCount(len(result.errors))
        for r, error in enumerate(result.errors):
            for c, value in enumerate((str(error.row), error.column, error.value, error.reason)):
                self.errors.setItem(r, c, _item(value))
        # Row and column names are short; values may be anything, so they keep their width.
        self.errors.resizeColumnToContents(0)
        self.errors.resizeColumnToContents(1)
        self.save_button.setEnabled(result.errors_path is not None and result.error_count > 0)

    @Slot()
    def _on_save_clicked(self) -> None:
        result = self._wizard.result
        if result is None or result.errors_path is None:
            return
        target, _ = QFileDialog.getSaveFileName(
            self, "Save error report", "import-errors.csv", "CSV files (*.csv)"
        )
        if target:
            self._wizard.save_error_report(Path(target))


class ImportWizard(QWizard):
    """Runs the import as a job on the write lane; the database changes only when it ends."""

    def __init__(
        self, engine: Any, jobs: JobRunner, actor: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import customers")
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self._engine = engine
        self._jobs = jobs
        self._actor = actor
        self.preview: ImportPreview | None = None
        self.result: ImportResult | None = None
        self._report_dir = tempfile.TemporaryDirectory(prefix="churndesk-import-")
        self.file_page = FilePage(self)
        self.mapping_page = MappingPage(self)
        self.run_page = RunPage(self)
        self.result_page = ResultPage(self)
        for page in (self.file_page, self.mapping_page, self.run_page, self.result_page):
            self.addPage(page)
        self.resize(900, 600)

    def start_import(self) -> JobWorker | None:
        assert self.preview is not None
        engine, path, actor = self._engine, self.preview.path, self._actor
        mapping = self.mapping_page.mapping()
        churn_values = self.mapping_page.churn_value_list()
        all_or_nothing = self.mapping_page.all_or_nothing.isChecked()
        errors_out = Path(self._report_dir.name) / "import-errors.csv"

        def run(progress: ProgressFn, cancel: threading.Event) -> ImportResult:
            try:
                return import_customers(
                    engine,
                    path,
                    mapping=mapping,
                    churn_values=churn_values,
                    all_or_nothing=all_or_nothing,
                    errors_out=errors_out,
                    actor=actor,
                    progress=progress,
                    cancel=cancel,
                )
            except ImportRejected as exc:
                return exc.result

        try:
            worker = self._jobs.start("Importing customers", run)
        except ChurndeskError as exc:
            self.run_page.done(exc.user_message)
            return None
        worker.succeeded.connect(self._on_import_succeeded)
        worker.failed.connect(self._on_import_failed)
        worker.cancelled.connect(self._on_import_cancelled)
        return worker

    @Slot(object)
    def _on_import_succeeded(self, result: ImportResult) -> None:
        self.result = result
        self.run_page.done()
        self.next()

    @Slot(object)
    def _on_import_failed(self, exc: object) -> None:
        message = user_message(exc) if isinstance(exc, BaseException) else str(exc)
        self.run_page.done(message + " Nothing was imported; go back to try again.")

    @Slot()
    def _on_import_cancelled(self) -> None:
        self.run_page.done("The import was cancelled. Nothing was imported.")

    def save_error_report(self, target: Path) -> None:
        if self.result is None or self.result.errors_path is None:
            return
        shutil.copyfile(self.result.errors_path, target)

    def done(self, result: int) -> None:
        if self.run_page.worker is not None and not self.run_page.finished:
            self.run_page.worker.cancel_event.set()
        super().done(result)
        self._report_dir.cleanup()
