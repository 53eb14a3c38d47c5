"""The Models page trains in the background, lists versions, promotes and scores."""

from __future__ import annotations

from churndesk.services.importing import import_customers
from churndesk.ui.panes.models import ModelsPane


def test_train_then_score_from_the_models_page(qtbot, database, jobs, telco_csv) -> None:
    import_customers(database.engine, telco_csv)
    pane = ModelsPane(database.engine, jobs, "alice")
    qtbot.addWidget(pane)
    pane.show()
    pane.refresh()
    qtbot.waitUntil(lambda: not jobs.busy(), timeout=10_000)
    assert pane.table.rowCount() == 0
    assert pane.message.text().startswith("No model yet")
    assert not pane.score_button.isEnabled()

    pane.algorithm.setCurrentIndex(pane.algorithm.findData("logreg"))
    pane.train()
    qtbot.waitUntil(lambda: pane.message.text().startswith("Trained"), timeout=120_000)
    qtbot.waitUntil(lambda: pane.table.rowCount() == 1, timeout=10_000)
    assert pane.table.item(0, 0).text() == "churn v1"
    assert pane.table.item(0, 1).text() == "active"
    assert 0.80 < float(pane.table.item(0, 3).text()) < 0.90
    assert pane.score_button.isEnabled()

    pane.score()
    qtbot.waitUntil(lambda: pane.message.text().startswith("Scored"), timeout=120_000)
    assert "7,043 customers with churn v1" in pane.message.text()


def test_promote_without_a_selection_asks_for_one(qtbot, database, jobs) -> None:
    pane = ModelsPane(database.engine, jobs, "alice")
    qtbot.addWidget(pane)
    pane.promote_selected()
    assert pane.message.text() == "Select the version to make active."
