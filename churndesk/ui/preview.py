"""Open one screen alone with demo data: ``python -m churndesk.ui.preview SCREEN``.

Every page of the main window, the customer detail, the import wizard and the open-database
dialog. ``--screenshot FILE`` waits until the screen's background jobs have finished, saves a
PNG and exits (that is how the pictures in docs/screenshots are made).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QWidget

from churndesk.config import sqlite_url
from churndesk.db.connect import Database, open_database

if TYPE_CHECKING:
    from churndesk.ui.main_window import MainWindow

#: Longest wait for a screen's jobs before the screenshot is taken anyway.
SETTLE_S = 30.0


def demo_database(folder: Path, customers: int = 2000) -> Database:
    from churndesk.services.demo import create_demo_database

    url = sqlite_url(folder / "preview.sqlite3")
    create_demo_database(url, customers, seed=0, score=True)
    return open_database(url)


@dataclass
class Screen:
    """What to show, and what to do once its data has arrived (select a row, say)."""

    widget: QWidget
    window: QWidget  # the main window behind it, whose jobs are waited for
    when_ready: Callable[[], None] | None = None


def _main_window(database: Database, page: str = "customers") -> MainWindow:
    from churndesk.ui.main_window import MainWindow

    window = MainWindow(database, "alice")
    window.resize(1400, 860)
    window.show_page(page)
    return window


def page(key: str) -> Callable[[Database], Screen]:
    def build(database: Database) -> Screen:
        window = _main_window(database, key)
        return Screen(window, window)

    return build


def customer_detail(database: Database) -> Screen:
    """The customers page with the riskiest customer selected: detail, drivers, risk history."""
    window = _main_window(database)
    table = window.customers_pane.table
    return Screen(window, window, lambda: table.selectRow(0))


def import_wizard(database: Database) -> Screen:
    window = _main_window(database)
    return Screen(window.open_import_wizard(), window)


def open_dialog(database: Database) -> Screen:
    from churndesk.ui.panes.open_database import OpenDatabaseDialog

    dialog = OpenDatabaseDialog()
    return Screen(dialog, dialog)


SCREENS: dict[str, Callable[[Database], Screen]] = {
    "main": page("customers"),
    "customers": page("customers"),
    "detail": customer_detail,
    "models": page("models"),
    "alerts": page("alerts"),
    "dashboard": page("dashboard"),
    "reports": page("reports"),
    "settings": page("settings"),
    "import": import_wizard,
    "open": open_dialog,
}


def settle(window: QWidget, timeout_s: float = SETTLE_S) -> None:
    """Process events until the window's jobs have finished (or ``timeout_s`` has passed)."""
    jobs = getattr(window, "jobs", None)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        QCoreApplication.processEvents()
        if jobs is None or not jobs.busy():
            break
        time.sleep(0.01)  # let the job threads run instead of spinning
    for _ in range(20):  # the results' repaints
        QCoreApplication.processEvents()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m churndesk.ui.preview")
    parser.add_argument("screen", choices=sorted(SCREENS))
    parser.add_argument("--screenshot", type=Path, help="save a PNG and exit")
    args = parser.parse_args(argv)
    from churndesk.ui.app import application

    app = application()
    with tempfile.TemporaryDirectory() as folder:
        database = demo_database(Path(folder))
        screen = SCREENS[args.screen](database)
        screen.window.show()
        screen.widget.show()
        if args.screenshot:
            settle(screen.window)
            if screen.when_ready is not None:
                screen.when_ready()
                settle(screen.window)
            screen.widget.grab().save(str(args.screenshot))
            screen.window.close()
            code = 0
        else:
            if screen.when_ready is not None:
                settle(screen.window)
                screen.when_ready()
            code = app.exec()
        database.engine.dispose()
    return code


if __name__ == "__main__":
    sys.exit(main())
