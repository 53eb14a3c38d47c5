"""Customer detail: loads on selection, edits with inline validation, resolves a conflict."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import QItemSelectionModel

from churndesk.db.bulk import insert_rows
from churndesk.db.connect import Database
from churndesk.services.customers import update_customer
from churndesk.services.overview import Overview
from churndesk.ui.panes.customer_detail import CustomerDetailPane
from churndesk.ui.panes.customers import CustomersPane

NAME = "<img src=x onerror=alert(1)>"


@pytest.fixture
def customer_id(database: Database) -> int:
    with database.engine.begin() as connection:
        insert_rows(
            connection,
            "customers",
            ("external_id", "name", "email", "monthly_revenue", "attributes"),
            [("C-1", NAME, "c1@example.com", 42.5, {"tenure": 12, "Contract": "One year"})],
        )
        model_id = connection.exec_driver_sql(
            "INSERT INTO model_versions (name, version, algorithm, params, feature_schema, "
            "metrics, artifact, artifact_format, sha256, status, notes) VALUES ('churn', 1, "
            "'logreg', '{}', '{}', '{}', x'00', 'test', 'x', 'active', '') RETURNING id"
        ).scalar_one()
        customer = connection.exec_driver_sql("SELECT id FROM customers").scalar_one()
        insert_rows(
            connection,
            "risk_scores",
            ("customer_id", "model_version_id", "score", "band", "scored_at"),
            [
                (
                    customer,
                    model_id,
                    30.0 + 10 * i,
                    "medium",
                    dt.datetime(2026, 10, 1 + i, tzinfo=dt.UTC),
                )
                for i in range(3)
            ],
        )
        insert_rows(
            connection,
            "customer_scores",
            ("customer_id", "risk_score", "risk_score_prev", "risk_band", "drivers", "scored_at"),
            [
                (
                    customer,
                    50.0,
                    40.0,
                    "medium",
                    [{"feature": "Contract", "direction": "+", "value": "One year"}],
                    dt.datetime(2026, 10, 3, tzinfo=dt.UTC),
                )
            ],
        )
    return int(customer)


def _detail(qtbot, database, jobs, customer_id) -> CustomerDetailPane:
    pane = CustomerDetailPane(database.engine, jobs, "alice")
    qtbot.addWidget(pane)
    pane.show()
    pane.show_customer(customer_id)
    qtbot.waitUntil(lambda: pane.record is not None, timeout=10_000)
    return pane


def test_detail_shows_values_literally_with_history_and_drivers(
    qtbot, database, jobs, customer_id
) -> None:
    pane = _detail(qtbot, database, jobs, customer_id)
    assert pane.header.text() == NAME
    assert pane.inputs["name"].text() == NAME
    _x, y = pane.chart.curve.getData()
    assert list(y) == [30.0, 40.0, 50.0]
    assert pane.drivers.item(0).text().startswith("Contract = One year")
    attributes = {
        pane.attributes.item(r, 0).text(): pane.attributes.item(r, 1).text()
        for r in range(pane.attributes.rowCount())
    }
    assert attributes == {"Contract": "One year", "tenure": "12"}


def test_validation_errors_show_under_the_field(qtbot, database, jobs, customer_id) -> None:
    pane = _detail(qtbot, database, jobs, customer_id)
    pane.inputs["email"].setText("not an address")
    pane.inputs["monthly_revenue"].setText("-3")
    pane.save()
    qtbot.waitUntil(lambda: not pane.message_bar.isHidden(), timeout=10_000)
    assert not pane.field_messages["email"].isHidden()
    assert pane.field_messages["monthly_revenue"].text()
    assert pane.inputs["email"].text() == "not an address"  # the user's input is kept


def test_conflict_keeps_my_edit_and_reapplies_it(qtbot, database, jobs, customer_id) -> None:
    pane = _detail(qtbot, database, jobs, customer_id)
    # Someone else saves first.
    update_customer(database.engine, customer_id, {"segment": "Enterprise"}, expected_version=1)
    pane.inputs["plan"].setText("Fiber Premium")
    pane.save()
    qtbot.waitUntil(lambda: not pane.conflict_table.isHidden(), timeout=10_000)
    assert not pane.reapply_button.isHidden()
    compared = {
        pane.conflict_table.item(r, 0).text(): (
            pane.conflict_table.item(r, 1).text(),
            pane.conflict_table.item(r, 2).text(),
        )
        for r in range(pane.conflict_table.rowCount())
    }
    assert compared["Plan"] == ("Fiber Premium", "")
    assert compared["Segment"] == ("", "Enterprise")
    pane.reapply_button.click()
    assert pane.inputs["segment"].text() == "Enterprise"
    assert pane.inputs["plan"].text() == "Fiber Premium"
    with qtbot.waitSignal(pane.saved, timeout=10_000) as saved:
        pane.save()
    record = saved.args[0]
    assert (record.segment, record.plan, record.version) == ("Enterprise", "Fiber Premium", 3)


def test_selecting_a_row_opens_the_customer(qtbot, database, jobs, customer_id) -> None:
    pane = CustomersPane(database.engine, jobs, "alice")
    qtbot.addWidget(pane)
    pane.show()
    pane.show_overview(Overview(customers=1, churned=0, models=1, scoring_runs=0))
    with qtbot.waitSignal(pane.model.view_loaded, timeout=10_000):
        pane.load()
    pane.table.selectionModel().setCurrentIndex(
        pane.model.index(0, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    qtbot.waitUntil(lambda: pane.detail.record is not None, timeout=10_000)
    assert pane.detail.record.id == customer_id
