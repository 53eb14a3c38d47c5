"""Live updates reach the open window without a reload, keeping the user's selection."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QItemSelectionModel

from churndesk.db import migrate
from churndesk.db.bulk import insert_rows
from churndesk.db.connect import Database, open_database
from churndesk.db.engine import make_engine
from churndesk.services.changes import Changes, publish
from churndesk.ui.live import LiveUpdates, merge
from churndesk.ui.main_window import MainWindow
from churndesk.ui.models.customer_table import CUSTOMER_ID_ROLE
from tests import pg


def test_bursts_are_coalesced_into_one_signal(qtbot, database: Database) -> None:
    live = LiveUpdates(database.engine)
    seen: list[Changes] = []
    live.data_changed.connect(seen.append)
    try:
        with qtbot.waitSignal(live.data_changed, timeout=5_000):
            for i in range(20):
                with database.engine.begin() as connection:
                    publish(connection, Changes(customers=True, customer_ids=(i,)))
        qtbot.wait(50)
        assert len(seen) == 1
        assert seen[0].customer_ids == tuple(range(20))
    finally:
        live.stop()


def test_merge_keeps_every_flag() -> None:
    merged = merge(Changes(customers=True), Changes(alerts=True, customer_ids=(3,)))
    assert merged.customers
    assert merged.alerts
    assert merged.customer_ids == (3,)


@pytest.fixture
def pg_database() -> Iterator[Database]:
    with pg.scratch_database() as name:
        url = pg.sqlalchemy_url(pg.database_dsn(name))
        engine = make_engine(url)
        migrate.upgrade(engine)
        rows = [(i + 1, f"C{i:03d}", f"Customer {i:03d}", {}) for i in range(50)]
        at = dt.datetime(2026, 11, 25, 7, 0, tzinfo=dt.UTC)
        scores = [(i + 1, float(i), "low" if i < 30 else "medium", at) for i in range(50)]
        with engine.begin() as connection:
            insert_rows(connection, "customers", ("id", "external_id", "name", "attributes"), rows)
            insert_rows(
                connection,
                "customer_scores",
                ("customer_id", "risk_score", "risk_band", "scored_at"),
                scores,
            )
        engine.dispose()
        database = open_database(url)
        yield database
        database.engine.dispose()


@pytest.mark.postgres
def test_change_from_another_desktop_appears_without_reload(qtbot, pg_database) -> None:
    window = MainWindow(pg_database, "alice")
    qtbot.addWidget(window)
    window.show()
    pane = window.customers_pane
    qtbot.waitUntil(lambda: pane.model.rowCount() == 50, timeout=10_000)
    qtbot.waitUntil(window.live.listening.is_set, timeout=10_000)
    model = pane.model
    qtbot.waitUntil(lambda: model.data(model.index(20, 0)) == "Customer 029", timeout=10_000)
    selected = model.data(model.index(20, 0), CUSTOMER_ID_ROLE)
    pane.table.selectionModel().select(
        model.index(20, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    # Another desktop raises the lowest-risk customer to the top and commits: a separate
    # process with its own connection. Only a re-read of the view can move it to row 0.
    code = (
        "from churndesk.db.engine import make_engine\n"
        "from churndesk.services.changes import Changes, publish\n"
        f"e = make_engine({pg_database.url!r})\n"
        "with e.begin() as c:\n"
        '    c.exec_driver_sql("UPDATE customer_scores SET risk_score = 100 '
        'WHERE customer_id = 1")\n'
        "    publish(c, Changes(customers=True))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)

    qtbot.waitUntil(lambda: model.data(model.index(0, 0)) == "Customer 049", timeout=10_000)
    qtbot.waitUntil(lambda: model.data(model.index(0, 0)) == "Customer 000", timeout=10_000)
    assert pane.selected_customer_id() == selected
    assert pane.table.selectionModel().selectedRows()[0].row() == 21
    window.close()
