"""Start the desktop application: QApplication, the database, the main window."""

from __future__ import annotations

import getpass
import logging
import sys

from PySide6.QtWidgets import QApplication

from churndesk import __version__
from churndesk.config import LocalSettings, resolve_database_url
from churndesk.db.connect import Database, open_database
from churndesk.errors import ChurndeskError
from churndesk.ui.errors import install_excepthook, show_error

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


def run_app(database_url: str | None = None) -> int:
    """Open the main window on the database and run the event loop; returns the exit code."""
    app = application()
    install_excepthook()
    from churndesk.ui.main_window import MainWindow

    try:
        database: Database = open_database(resolve_database_url(database_url))
    except ChurndeskError as exc:
        show_error(None, exc, "churndesk — cannot open the database")
        return 1
    window = MainWindow(database, current_username())
    window.show()
    code = app.exec()
    database.engine.dispose()
    return code
