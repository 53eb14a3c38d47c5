"""Qt fixtures: a migrated SQLite database opened the way the app opens it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from churndesk.config import sqlite_url
from churndesk.db.connect import Database, open_database
from churndesk.ui.jobs import JobRunner


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = open_database(sqlite_url(tmp_path / "ui.sqlite3"))
    yield db
    db.engine.dispose()


@pytest.fixture
def jobs(qtbot) -> Iterator[JobRunner]:
    """A job runner whose threads are all stopped before the test's objects are destroyed."""
    runner = JobRunner()
    yield runner
    assert runner.shutdown(timeout_ms=10_000)
    qtbot.waitUntil(lambda: not runner.busy(), timeout=10_000)


@pytest.fixture(autouse=True)
def _app_names(qapp: object) -> None:
    from churndesk.ui.app import application

    application()
