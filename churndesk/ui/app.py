"""Start the desktop application: QApplication, the database, the main window."""

from __future__ import annotations

import getpass
import logging
import os
import sys
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QApplication

from churndesk import __version__
from churndesk.config import (
    DATABASE_URL_ENV,
    LocalSettings,
    default_database_path,
    resolve_database_url,
)
from churndesk.db.connect import Database, open_database
from churndesk.errors import ChurndeskError
from churndesk.ui.errors import install_excepthook

if TYPE_CHECKING:
    from churndesk.ui.main_window import MainWindow

log = logging.getLogger(__name__)


def application(argv: list[str] | None = None) -> QApplication:
    """The QApplication, created once, with the names QSettings keys on."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName("churndesk")
    app.setApplicationName("churndesk")
    app.setApplicationVersion(__version__)
    return app


def current_username() -> str:
    return LocalSettings.load().username or getpass.getuser()


def first_database(database_url: str | None) -> Database | None:
    """The database to start on: the given or remembered one, else ask (first run or failure).

    Returns None when the user cancels the dialog.
    """
    from churndesk.ui.panes.open_database import OpenDatabaseDialog

    explicit = database_url or os.environ.get(DATABASE_URL_ENV)
    remembered = LocalSettings.load().database_url
    message = ""
    if explicit or remembered or default_database_path().exists():
        try:
            return open_database(resolve_database_url(database_url))
        except ChurndeskError as exc:
            log.warning("cannot open the database: %s", exc.user_message)
            message = exc.user_message
    dialog = OpenDatabaseDialog(message)
    if dialog.exec() != OpenDatabaseDialog.DialogCode.Accepted or dialog.database is None:
        return None
    remember(dialog.database.url)
    return dialog.database


def remember(url: str) -> None:
    """Open this database next time (URLs never hold passwords; those go to the keyring)."""
    settings = LocalSettings.load()
    settings.database_url = url
    settings.recent_databases = [url, *(u for u in settings.recent_databases if u != url)][:8]
    settings.save()


def run_app(database_url: str | None = None) -> int:
    """Open the main window on the database and run the event loop; returns the exit code."""
    app = application()
    install_excepthook()
    from churndesk.ui.main_window import MainWindow

    database = first_database(database_url)
    if database is None:
        return 0
    window = MainWindow(database, current_username())
    window.show()
    return leave(window, app.exec())


def leave(window: MainWindow, code: int) -> int:
    """The exit code, or the end of the process if a job thread would outlive the app.

    A job still inside one long statement when the window closed (a big import, say) cannot
    see its cancel; letting Python tear down its running QThread makes Qt abort the process
    ("QThread: Destroyed while thread is still running"). Leaving at once is safe: every job
    writes in one transaction, which the database rolls back when the connection goes.
    """
    if window.jobs_stopped:
        return code
    log.warning("a background job was still running at exit; its changes are rolled back")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
