"""The main window shell: navigation, shortcuts, status bar, empty state, remembered layout."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from churndesk.db.bulk import insert_rows
from churndesk.db.connect import Database
from churndesk.errors import ChurndeskError
from churndesk.ui.errors import error_box
from churndesk.ui.main_window import PAGES, MainWindow


def _window(qtbot, database: Database) -> MainWindow:
    window = MainWindow(database, "alice")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: not window.jobs.busy(), timeout=10_000)
    return window


def test_empty_database_tells_the_user_what_to_do(qtbot, database: Database) -> None:
    window = _window(qtbot, database)
    pane = window.customers_pane
    assert pane._stack.currentWidget() is pane.empty
    assert "Import a CSV" in pane.empty.text_label.text()
    assert pane.empty.isVisible()
    assert "0 customers" in window.database_label.text()
    assert window.user_label.text() == "User: alice"


def test_overview_counts_customers(qtbot, database: Database) -> None:
    rows = [(f"c{i}", "churned" if i < 3 else "active", {}) for i in range(10)]
    with database.engine.begin() as connection:
        insert_rows(connection, "customers", ("external_id", "status", "attributes"), rows)
    window = _window(qtbot, database)
    pane = window.customers_pane
    assert pane._stack.currentWidget() is pane.table_page
    assert pane.model.rowCount() == 7  # the three churned customers are one click away
    assert pane.count_label.text().startswith("7 active customers")
    assert "10 customers" in window.database_label.text()


def test_navigation_by_list_and_keyboard(qtbot, database: Database) -> None:
    window = _window(qtbot, database)
    assert window.current_page() == "customers"
    window.show_page("alerts")
    assert window.current_page() == "alerts"
    for index, (key, _label) in enumerate(PAGES):
        qtbot.keyClick(window, Qt.Key(Qt.Key.Key_1 + index), Qt.KeyboardModifier.ControlModifier)
        assert window.current_page() == key
    coming = window.pages.currentWidget()
    assert "coming soon" in coming.title_label.text()


def test_window_layout_is_remembered(qtbot, database: Database) -> None:
    window = _window(qtbot, database)
    window.resize(790, 580)
    splitter = window.splitter
    splitter.setSizes([80, 705])
    window.close()
    again = _window(qtbot, database)
    assert (again.width(), again.height()) == (790, 580)
    assert again.splitter.sizes()[0] == 80


def test_error_messages_show_values_literally(qtbot) -> None:
    name = "<img src=x onerror=alert(1)>"
    box = error_box(None, ChurndeskError(f"Customer {name} could not be saved."))
    qtbot.addWidget(box)
    assert box.textFormat() == Qt.TextFormat.PlainText
    assert box.text() == f"Customer {name} could not be saved."
    assert box.icon() == QMessageBox.Icon.Warning


def test_toolbar_offers_the_main_actions_with_their_shortcuts(qtbot, database: Database) -> None:
    window = _window(qtbot, database)
    assert window.toolbar.isVisible()
    texts = [a.text().replace("&", "") for a in window.toolbar.actions() if a.text()]
    assert texts == ["Import customers…", "Score all customers", "Refresh", "Open database…"]
    assert window.score_action.shortcut().toString() == "F9"
    # F9 on a database with no model: the Models page opens and says what to do first.
    qtbot.keyClick(window, Qt.Key.Key_F9)
    assert window.current_page() == "models"
    qtbot.waitUntil(lambda: not window.jobs.busy(), timeout=10_000)
    assert "model" in window.models_pane.message.text().lower()
    assert "train" in window.models_pane.message.text().lower()
