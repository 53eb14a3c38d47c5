"""The customer table: model contract, database-side sort and filters, plain text, live refresh."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import QItemSelectionModel, QPoint, Qt

from churndesk.db.bulk import insert_rows
from churndesk.db.connect import Database
from churndesk.services.customer_views import CustomerQuery
from churndesk.services.overview import Overview
from churndesk.ui.jobs import JobRunner
from churndesk.ui.models.customer_table import (
    COLUMNS,
    CUSTOMER_ID_ROLE,
    PLACEHOLDER,
    CustomerTableModel,
)
from churndesk.ui.panes.customers import CustomersPane

HOSTILE = "<img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://evil.example","click")'
COLUMNS_WRITTEN = (
    "id",
    "external_id",
    "name",
    "segment",
    "plan",
    "status",
    "owner",
    "monthly_revenue",
    "attributes",
)
SCORE_COLUMNS_WRITTEN = ("customer_id", "risk_score", "risk_score_prev", "risk_band", "scored_at")
SCORED_AT = dt.datetime(2026, 11, 25, 7, 0, tzinfo=dt.UTC)


def _band(score: float) -> str:
    return (
        "critical" if score >= 80 else "high" if score >= 60 else "medium" if score >= 40 else "low"
    )


@pytest.fixture
def populated(database: Database) -> Database:
    rows = []
    scores = []
    for i in range(1000):
        score = float((i * 37) % 101)
        name = HOSTILE if i == 3 else FORMULA if i == 4 else f"Customer {i:04d}"
        previous = score - 5 if i % 2 else score + 5
        scores.append((i + 1, score, previous, _band(score), SCORED_AT))
        rows.append(
            (
                i + 1,
                f"EXT-{i:04d}",
                name,
                ("Residential", "Enterprise")[i % 2],
                ("DSL Basic", "Fiber Premium", "Phone Only")[i % 3],
                "churned" if i % 10 == 0 else "active",
                ("alice", "bob")[i % 2],
                20.0 + i,
                {},
            )
        )
    with database.engine.begin() as connection:
        insert_rows(connection, "customers", COLUMNS_WRITTEN, rows)
        insert_rows(connection, "customer_scores", SCORE_COLUMNS_WRITTEN, scores)
    return database


def _loaded_model(qtbot, jobs: JobRunner, database: Database, **kwargs) -> CustomerTableModel:
    model = CustomerTableModel(database.engine, jobs, page_size=50, **kwargs)
    with qtbot.waitSignal(model.view_loaded, timeout=10_000):
        model.set_query(CustomerQuery())
    return model


def _column(key: str) -> int:
    return [c.key for c in COLUMNS].index(key)


def _wait_all_pages(qtbot, model: CustomerTableModel) -> None:
    def loaded() -> bool:
        return all(model.data(model.index(r, 0)) != PLACEHOLDER for r in range(model.rowCount()))

    qtbot.waitUntil(loaded, timeout=10_000)


@pytest.mark.parametrize("fetch_async", [False, True])
def test_model_passes_the_qt_model_tester(
    qtbot, qtmodeltester, jobs, populated, fetch_async
) -> None:
    model = _loaded_model(qtbot, jobs, populated, fetch_async=fetch_async)
    _wait_all_pages(qtbot, model)
    qtmodeltester.check(model, force_py=True)
    assert model.rowCount() == 1000


def test_async_pages_show_placeholders_until_loaded(qtbot, jobs, populated) -> None:
    model = _loaded_model(qtbot, jobs, populated, fetch_async=True)
    assert model.data(model.index(500, 0)) == PLACEHOLDER
    qtbot.waitUntil(lambda: model.data(model.index(500, 0)) != PLACEHOLDER, timeout=10_000)
    assert model.data(model.index(500, 0)).startswith("Customer")


def test_default_order_is_risk_descending(qtbot, jobs, populated) -> None:
    model = _loaded_model(qtbot, jobs, populated)
    _wait_all_pages(qtbot, model)
    scores = [float(model.data(model.index(r, _column("risk_score")))) for r in range(1000)]
    assert scores == sorted(scores, reverse=True)


def test_values_are_plain_text_in_cells_and_tooltips(qtbot, jobs, populated) -> None:
    model = _loaded_model(qtbot, jobs, populated)
    _wait_all_pages(qtbot, model)
    names = {model.data(model.index(r, 0)): r for r in range(model.rowCount())}
    assert HOSTILE in names
    assert FORMULA in names
    tooltip = model.data(model.index(names[HOSTILE], 0), Qt.ItemDataRole.ToolTipRole)
    assert "&lt;img src=x onerror=alert(1)&gt;" in tooltip
    assert "<img" not in tooltip


def test_trend_and_money_are_formatted(qtbot, jobs, populated) -> None:
    model = _loaded_model(qtbot, jobs, populated)
    _wait_all_pages(qtbot, model)
    trends = {model.data(model.index(r, _column("trend"))) for r in range(model.rowCount())}
    assert any(t.startswith("▲ 5") for t in trends)
    assert any(t.startswith("▼ 5") for t in trends)
    revenue = model.data(model.index(0, _column("monthly_revenue")))
    assert "." in revenue


def _pane(qtbot, jobs: JobRunner, database: Database) -> CustomersPane:
    pane = CustomersPane(database.engine, jobs)
    qtbot.addWidget(pane)
    pane.show()
    pane.show_overview(Overview(customers=1000, churned=100, models=0, scoring_runs=0))
    with qtbot.waitSignal(pane.model.view_loaded, timeout=10_000):
        pane.load()
    assert pane.model.rowCount() == 900  # by default only active customers (10 % churned)
    assert pane.count_label.text().startswith("900 active customers")
    with qtbot.waitSignal(pane.model.view_loaded, timeout=10_000):
        pane.filters.status.setCurrentIndex(0)  # all statuses
    return pane


def test_header_click_sorts_in_the_database(qtbot, jobs, populated) -> None:
    pane = _pane(qtbot, jobs, populated)
    header = pane.table.horizontalHeader()
    name_column = _column("name")
    x = header.sectionViewportPosition(name_column) + 5
    with qtbot.waitSignal(pane.model.view_loaded, timeout=10_000):
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
    assert pane.model.query.sort == "name"
    names = [pane.model.data(pane.model.index(r, name_column)) for r in range(1000)]
    assert names == sorted(names) or names == sorted(names, reverse=True)


def test_search_box_and_filters_narrow_the_view(qtbot, jobs, populated) -> None:
    pane = _pane(qtbot, jobs, populated)
    with qtbot.waitSignal(pane.model.view_loaded, timeout=10_000):
        qtbot.keyClicks(pane.filters.search, "customer 001")
    assert pane.model.rowCount() == 10  # Customer 0010 .. 0019
    assert pane.count_label.text() == "10 customers match"
    status = pane.filters.status
    with qtbot.waitSignal(pane.model.view_loaded, timeout=10_000):
        status.setCurrentIndex(status.findData("churned"))
    assert pane.model.rowCount() == 1  # only 0010 is churned
    qtbot.waitUntil(lambda: pane.model.data(pane.model.index(0, 0)) == "Customer 0010")


def test_no_match_state_offers_to_clear_filters(qtbot, jobs, populated) -> None:
    pane = _pane(qtbot, jobs, populated)
    with qtbot.waitSignal(pane.model.view_loaded, timeout=10_000):
        pane.filters.search.setText("nobody by this name")
        pane.filters.search.returnPressed.emit()
    assert pane._table_stack.currentWidget() is pane.no_match
    with qtbot.waitSignal(pane.model.view_loaded, timeout=10_000):
        qtbot.mouseClick(pane.no_match.action_button, Qt.MouseButton.LeftButton)
    assert pane.model.rowCount() == 900  # back to the default: every active customer
    assert pane._table_stack.currentWidget() is pane.table


def test_refresh_keeps_the_selected_customer(qtbot, jobs, populated) -> None:
    pane = _pane(qtbot, jobs, populated)
    model = pane.model
    selected_id = model.data(model.index(10, 0), CUSTOMER_ID_ROLE)
    pane.table.selectionModel().select(
        model.index(10, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    # Another desktop raises this customer to the top of the risk order.
    with populated.engine.begin() as connection:
        connection.exec_driver_sql(
            f"UPDATE customer_scores SET risk_score = 100 WHERE customer_id = {int(selected_id)}"
        )
    with qtbot.waitSignal(model.view_loaded, timeout=10_000):
        pane.refresh()
    assert pane.selected_customer_id() == selected_id
    assert pane.table.selectionModel().selectedRows()[0].row() == model.row_of(selected_id)
