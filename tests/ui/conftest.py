"""Qt fixtures: a migrated SQLite database opened the way the app opens it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from churndesk.config import sqlite_url
from churndesk.db.connect import Database, open_database


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = open_database(sqlite_url(tmp_path / "ui.sqlite3"))
    yield db
    db.engine.dispose()


@pytest.fixture(autouse=True)
def _app_names(qapp: object) -> None:
    from churndesk.ui.app import application

    application()
