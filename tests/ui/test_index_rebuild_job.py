"""The desktop app finishes the customer indexes an interrupted import left (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from churndesk.db import migrate, pending_indexes
from churndesk.db.connect import Database, open_database
from churndesk.db.engine import make_engine
from churndesk.services.indexes import BUILD_TEXT
from churndesk.ui.main_window import MainWindow
from tests import pg

LEFT = ["ix_customers_name_trgm", "ix_customers_plan_id"]


def index_names(database: Database) -> set[str]:
    with database.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'customers'"
        ).all()
    return {name for (name,) in rows}


@pytest.fixture
def interrupted() -> Iterator[Database]:
    """A database whose last import was killed after its commit, before two of its builds."""
    with pg.scratch_database() as name:
        url = pg.sqlalchemy_url(pg.database_dsn(name))
        engine = make_engine(url)
        migrate.upgrade(engine)
        pg.leave_indexes_pending(engine, LEFT)
        engine.dispose()
        database = open_database(url)
        yield database
        database.engine.dispose()


@pytest.mark.postgres
def test_the_window_builds_the_indexes_an_import_left(qtbot, interrupted: Database) -> None:
    assert not set(LEFT) & index_names(interrupted)
    window = MainWindow(interrupted, "alice")
    qtbot.addWidget(window)
    started: list[str] = []
    window.jobs.job_started.connect(lambda worker: started.append(worker.title))
    window.show()
    # A visible job of its own (status bar, cancel button), then the indexes are there.
    qtbot.waitUntil(lambda: BUILD_TEXT in started, timeout=20_000)
    qtbot.waitUntil(lambda: not window.jobs.busy(), timeout=60_000)
    assert set(LEFT) <= index_names(interrupted)
    assert pending_indexes.pending(interrupted.engine) == []


@pytest.mark.postgres
def test_nothing_left_starts_no_visible_job(qtbot, interrupted: Database) -> None:
    assert pending_indexes.build_pending(interrupted.engine) == 2
    window = MainWindow(interrupted, "alice")
    qtbot.addWidget(window)
    started: list[str] = []
    window.jobs.job_started.connect(lambda worker: started.append(worker.title))
    window.show()
    qtbot.waitUntil(lambda: not window.jobs.busy(), timeout=20_000)
    assert [t for t in started if not t.startswith("_")] == []
