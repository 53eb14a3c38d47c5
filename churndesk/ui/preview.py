"""Open one screen alone with demo data: ``python -m churndesk.ui.preview SCREEN``."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QWidget

from churndesk.config import sqlite_url
from churndesk.db.connect import Database, open_database


def demo_database(folder: Path, customers: int = 2000) -> Database:
    from churndesk.services.demo import create_demo_database

    url = sqlite_url(folder / "preview.sqlite3")
    create_demo_database(url, customers, seed=0, score=True)
    return open_database(url)


def build_main(database: Database) -> QWidget:
    from churndesk.ui.main_window import MainWindow

    return MainWindow(database, "alice")


SCREENS: dict[str, Callable[[Database], QWidget]] = {"main": build_main}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m churndesk.ui.preview")
    parser.add_argument("screen", choices=sorted(SCREENS))
    parser.add_argument("--screenshot", type=Path, help="save a PNG and exit")
    args = parser.parse_args(argv)
    from churndesk.ui.app import application

    app = application()
    with tempfile.TemporaryDirectory() as folder:
        database = demo_database(Path(folder))
        widget = SCREENS[args.screen](database)
        widget.show()
        if args.screenshot:
            for _ in range(20):
                app.processEvents()
            widget.grab().save(str(args.screenshot))
            widget.close()
            code = 0
        else:
            code = app.exec()
        database.engine.dispose()
    return code


if __name__ == "__main__":
    sys.exit(main())
