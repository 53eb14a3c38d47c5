"""Alerts in the desktop: the list, acknowledging, and the popup fallback when there is no tray."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QSystemTrayIcon

from churndesk.config import sqlite_url
from churndesk.db.connect import open_database
from churndesk.services.alerts import AlertView
from churndesk.services.demo import create_demo_database
from churndesk.services.notify import unread_notifications
from churndesk.ui.main_window import MainWindow
from churndesk.ui.panes.alerts import LIST_LIMIT, AlertsPane, AlertTableModel


def test_new_alerts_pop_up_in_the_window_and_can_be_acknowledged(
    qtbot, qtmodeltester, tmp_path: Path
) -> None:
    url = sqlite_url(tmp_path / "alerts.sqlite3")
    create_demo_database(url, 2000, seed=0, score=True)  # trains, scores, raises alerts
    database = open_database(url)
    try:
        window = MainWindow(database, "alice")
        qtbot.addWidget(window)
        window.show()
        # Offscreen there is no system tray: the in-window banner is the fallback.
        assert not window.notifier.uses_tray
        qtbot.waitUntil(window.banner.isVisible, timeout=30_000)
        assert "new alert" in window.banner.text.text()

        pane = window.alerts_pane
        qtbot.waitUntil(lambda: pane.model.rowCount() > 0, timeout=10_000)
        standalone = AlertTableModel()  # outlives the window for the tester's teardown
        standalone.set_alerts(pane._alerts)
        qtmodeltester.check(standalone, force_py=True)
        assert standalone.rowCount() == pane.model.rowCount()
        window.banner.show_button.click()
        assert window.current_page() == "alerts"
        assert pane.model.data(pane.model.index(0, 2)) == "open"
        pane.table.selectionModel().select(
            pane.table.model().index(0, 0),
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        pane.ack_button.click()
        qtbot.waitUntil(
            lambda: pane.model.data(pane.model.index(0, 2)) == "acknowledged", timeout=10_000
        )

        window.banner.dismiss_button.click()
        assert not window.banner.isVisible()
        qtbot.waitUntil(lambda: not window.jobs.busy("write"), timeout=10_000)
        assert unread_notifications(database.engine, "alice") == []
        window.close()
    finally:
        database.engine.dispose()


class RecordingTray(QSystemTrayIcon):
    """A tray icon that records its popups (the offscreen platform has no tray to show them)."""

    def __init__(self) -> None:
        super().__init__()
        self.popups: list[tuple[str, str]] = []

    def showMessage(self, title: str, message: str, *args: object) -> None:
        self.popups.append((title, message))


# The offscreen platform cannot raise or activate windows; it says so instead of doing it.
@pytest.mark.qt_log_ignore("This plugin does not support")
def test_with_a_tray_new_alerts_pop_up_from_it_and_a_click_opens_them(
    qtbot, tmp_path: Path
) -> None:
    url = sqlite_url(tmp_path / "tray.sqlite3")
    create_demo_database(url, 2000, seed=0, score=True)
    database = open_database(url)
    try:
        window = MainWindow(database, "alice")
        qtbot.addWidget(window)
        tray = RecordingTray()
        window.attach_tray(tray)
        window.show()
        assert window.notifier.uses_tray
        qtbot.waitUntil(lambda: bool(tray.popups), timeout=30_000)
        title, body = tray.popups[0]
        assert "new churn alert" in title
        assert body  # the alerts' titles
        assert not window.banner.isVisible()  # the tray replaces the in-window banner
        assert unread_notifications(database.engine, "alice")

        window.show_page("customers")
        tray.messageClicked.emit()
        assert window.current_page() == "alerts"
        qtbot.waitUntil(lambda: not window.jobs.busy("write"), timeout=10_000)
        assert unread_notifications(database.engine, "alice") == []
        window.close()
    finally:
        database.engine.dispose()


def _alert(i: int, name: str) -> AlertView:
    return AlertView(
        id=i, rule_id=1, rule_name="Critical", customer_id=i, customer_name=name,
        external_id=f"C-{i}", run_id=1, status="open", severity="critical",
        title=f"Critical: {name}", details={}, score=91.0,
        created_at=dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC), acknowledged_at=None,
        acknowledged_by=None, assigned_to=None, assigned_at=None, snoozed_until=None,
        resolved_at=None, resolved_by=None, note="",
    )  # fmt: skip


def test_alert_list_is_plain_text_and_says_when_it_is_capped(qtbot, jobs) -> None:
    pane = AlertsPane(None, jobs, "alice")  # no database: rows are handed over directly
    qtbot.addWidget(pane)
    hostile = '<b>Bold</b> =HYPERLINK("http://x")'
    pane._on_loaded([_alert(1, hostile)])
    assert pane.model.data(pane.model.index(0, 3)) == hostile
    tooltip = pane.model.data(pane.model.index(0, 3), Qt.ItemDataRole.ToolTipRole)
    assert "&lt;b&gt;" in tooltip and "<b>" not in tooltip
    assert pane.message.text() == "1 alert."

    pane._on_loaded([_alert(i, f"Customer {i}") for i in range(LIST_LIMIT)])
    assert pane.model.rowCount() == LIST_LIMIT
    assert pane.message.text().startswith(f"Showing the newest {LIST_LIMIT:,} alerts.")
    pane._on_loaded([])
    assert pane.model.rowCount() == 0
    assert pane.message.text().startswith("No alerts.")
