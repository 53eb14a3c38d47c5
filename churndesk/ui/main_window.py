"""The main window: navigation between the pages, menus with shortcuts, and the status bar."""

from __future__ import annotations

import gc
import threading
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from churndesk import __version__
from churndesk.db.connect import Database
from churndesk.errors import ChurndeskError
from churndesk.progress import ProgressFn
from churndesk.services.changes import Changes
from churndesk.services.customer_views import FilterChoices, filter_choices
from churndesk.services.indexes import BUILD_TEXT, finish_indexes, indexes_to_build
from churndesk.services.overview import Overview, database_overview
from churndesk.ui.errors import show_error
from churndesk.ui.job_status import JobStatusWidget
from churndesk.ui.jobs import JobRunner
from churndesk.ui.live import LiveUpdates
from churndesk.ui.panes.alerts import AlertNotifier, AlertsPane, NotificationBanner
from churndesk.ui.panes.customers import CustomersPane
from churndesk.ui.panes.models import ModelsPane
from churndesk.ui.panes.placeholder import coming_page
from churndesk.ui.state import restore_layout, save_layout

LAYOUT_KEY = "main_window"

PAGES = (
    ("customers", "Customers"),
    ("models", "Models"),
    ("alerts", "Alerts"),
    ("dashboard", "Dashboard"),
    ("reports", "Reports"),
    ("settings", "Settings"),
)


class MainWindow(QMainWindow):
    #: How long closing the window waits for running jobs to notice their cancel.
    SHUTDOWN_WAIT_MS = 5000
    #: False after closing if a job was still running (see ui.app.leave).
    jobs_stopped = True

    def __init__(self, database: Database, username: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.database = database
        self.username = username
        self.jobs = JobRunner(self)
        self.live = LiveUpdates(database.engine, self)
        self._table_loaded = False
        self.setWindowTitle(f"churndesk — {database.display_name}")
        self.resize(1200, 760)

        self.navigation = QListWidget()
        self.navigation.setObjectName("navigation")
        self.navigation.setMaximumWidth(220)
        self.navigation.setStyleSheet("QListWidget#navigation::item { padding: 6px 10px; }")
        self.pages = QStackedWidget()
        self.customers_pane = CustomersPane(database.engine, self.jobs, username)
        self.customers_pane.import_requested.connect(self.open_import_wizard)
        self.models_pane = ModelsPane(database.engine, self.jobs, username)
        self.alerts_pane = AlertsPane(database.engine, self.jobs, username)
        self.banner = NotificationBanner()
        self.banner.show_button.clicked.connect(self._on_banner_show_clicked)
        self.notifier = AlertNotifier(
            database.engine, self.jobs, username, self.banner, parent=self
        )
        self.tray: QSystemTrayIcon | None = None
        tray = self._tray_icon()
        if tray is not None:
            self.attach_tray(tray)
        self._page_widgets: dict[str, QWidget] = {
            "customers": self.customers_pane,
            "models": self.models_pane,
            "alerts": self.alerts_pane,
            "dashboard": coming_page(
                "Dashboard", "Portfolio risk, revenue at risk and what changed since yesterday."
            ),
            "reports": coming_page("Reports", "PDF reports and CSV exports for your managers."),
            "settings": coming_page(
                "Settings", "Band cut-offs, scoring horizon, e-mail and webhook channels, users."
            ),
        }
        for key, label in PAGES:
            self.navigation.addItem(label)
            self.pages.addWidget(self._page_widgets[key])
        self.navigation.currentRowChanged.connect(self.pages.setCurrentIndex)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setObjectName("main_splitter")
        splitter.addWidget(self.navigation)
        splitter.addWidget(self.pages)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([160, 1040])
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.addWidget(self.banner)
        central_layout.addWidget(splitter, 1)
        self.splitter = splitter
        self.setCentralWidget(central)

        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self.navigation.setCurrentRow(0)
        restore_layout(self, LAYOUT_KEY)
        self.live.data_changed.connect(self._on_live_data_changed)
        self.refresh_overview()
        self.models_pane.refresh()
        self.alerts_pane.refresh()
        self.notifier.start()
        self.finish_indexes()
        # Everything imported and built so far lives as long as the window. Frozen, the garbage
        # collector stops re-walking it on every full collection: those walks held the GIL
        # (and with it the GUI thread) for 60-70 ms while views of a million rows loaded.
        gc.freeze()

    # -- construction -----------------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.import_action = QAction("&Import customers…", self)
        self.import_action.setShortcut(QKeySequence("Ctrl+I"))
        self.import_action.triggered.connect(self.open_import_wizard)
        file_menu.addAction(self.import_action)
        self.score_action = QAction("&Score all customers", self)
        self.score_action.setShortcut(QKeySequence("F9"))
        self.score_action.setToolTip("Score every customer with the active model (F9)")
        self.score_action.triggered.connect(self._on_score_triggered)
        file_menu.addAction(self.score_action)
        open_action = QAction("&Open database…", self)
        open_action.setShortcut(QKeySequence.StandardKey.Open)
        open_action.triggered.connect(self.open_other_database)
        file_menu.addAction(open_action)
        self.open_action = open_action
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        view_menu = self.menuBar().addMenu("&View")
        self.page_actions: list[QAction] = []
        for index, (key, label) in enumerate(PAGES):
            action = QAction(label, self)
            action.setShortcut(QKeySequence(f"Ctrl+{index + 1}"))
            action.setData(index)
            action.setObjectName(f"show_{key}")
            action.triggered.connect(self._on_page_action_triggered)
            view_menu.addAction(action)
            self.page_actions.append(action)
        view_menu.addSeparator()
        refresh = QAction("&Refresh", self)
        refresh.setShortcut(QKeySequence.StandardKey.Refresh)
        refresh.triggered.connect(self.refresh_overview)
        view_menu.addAction(refresh)
        self.refresh_action = refresh
        self.view_menu = view_menu

        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About churndesk", self)
        about.triggered.connect(self._on_about_triggered)
        help_menu.addAction(about)

    def _build_toolbar(self) -> None:
        """The actions used most, one click away; the same QActions as the menus."""
        toolbar = self.addToolBar("Main toolbar")
        toolbar.setObjectName("main_toolbar")  # saveState() remembers it by this name
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for action in (self.import_action, self.score_action, self.refresh_action):
            toolbar.addAction(action)
        toolbar.addSeparator()
        toolbar.addAction(self.open_action)
        self.toolbar = toolbar
        self.view_menu.addAction(toolbar.toggleViewAction())

    @Slot()
    def _on_score_triggered(self) -> None:
        # The Models page shows how the run went (and why not, with no model yet).
        self.show_page("models")
        self.models_pane.score()

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.database_label = QLabel(f"Database: {self.database.display_name}")
        self.database_label.setTextFormat(Qt.TextFormat.PlainText)
        self.user_label = QLabel(f"User: {self.username}")
        self.user_label.setTextFormat(Qt.TextFormat.PlainText)
        self.job_status = JobStatusWidget(self.jobs)
        status.addWidget(self.database_label)
        status.addWidget(self.user_label)
        status.addPermanentWidget(self.job_status)

    # -- behaviour --------------------------------------------------------------------------

    def show_page(self, key: str) -> None:
        index = [k for k, _ in PAGES].index(key)
        self.navigation.setCurrentRow(index)

    def current_page(self) -> str:
        return PAGES[self.pages.currentIndex()][0]

    @Slot()
    def refresh_overview(self) -> None:
        engine = self.database.engine

        def count(progress: ProgressFn, cancel: threading.Event) -> Overview:
            return database_overview(engine)

        worker = self.jobs.start("_overview", count, lane="read")
        worker.succeeded.connect(self._on_overview_succeeded)
        worker.failed.connect(self._on_job_failed)

    def finish_indexes(self) -> None:
        """Build, in the background, the customer indexes an interrupted import left behind."""
        engine = self.database.engine

        def count(progress: ProgressFn, cancel: threading.Event) -> int:
            return indexes_to_build(engine)

        worker = self.jobs.start("_indexes_to_build", count, lane="read")
        worker.succeeded.connect(self._on_indexes_counted)
        worker.failed.connect(self._on_job_failed)

    @Slot(object)
    def _on_indexes_counted(self, count: int) -> None:
        if not count:
            return
        engine = self.database.engine

        def build(progress: ProgressFn, cancel: threading.Event) -> tuple[str, ...]:
            return finish_indexes(engine, progress, cancel)

        worker = self.jobs.start(BUILD_TEXT, build)
        worker.succeeded.connect(self._on_indexes_finished)
        worker.failed.connect(self._on_job_failed)

    @Slot(object)
    def _on_indexes_finished(self, problems: tuple[str, ...]) -> None:
        for problem in problems:
            show_error(self, ChurndeskError(problem))

    def _tray_icon(self) -> QSystemTrayIcon | None:
        """A tray icon where the desktop has a tray; elsewhere alerts use the in-window banner."""
        if not QSystemTrayIcon.isSystemTrayAvailable():
            return None
        tray = QSystemTrayIcon(self.windowIcon(), self)
        tray.setToolTip("churndesk")
        tray.show()
        return tray

    def attach_tray(self, tray: QSystemTrayIcon) -> None:
        """Announce new alerts through ``tray``; clicking its popup or icon opens the alerts."""
        self.tray = tray
        self.notifier.set_tray(tray)
        tray.messageClicked.connect(self._on_tray_message_clicked)
        tray.activated.connect(self._on_tray_activated)

    @Slot()
    def _on_tray_message_clicked(self) -> None:
        self.bring_to_front()
        self.show_page("alerts")
        self.notifier.mark_all_read()

    @Slot(QSystemTrayIcon.ActivationReason)
    def _on_tray_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.bring_to_front()

    def bring_to_front(self) -> None:
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()

    @Slot()
    def _on_banner_show_clicked(self) -> None:
        self.show_page("alerts")

    @Slot()
    def open_other_database(self) -> None:
        """Switch to another database in a new window, closing this one."""
        from churndesk.ui.app import remember
        from churndesk.ui.panes.open_database import OpenDatabaseDialog

        dialog = OpenDatabaseDialog(parent=self)
        if dialog.exec() != OpenDatabaseDialog.DialogCode.Accepted or dialog.database is None:
            return
        remember(dialog.database.url)
        window = MainWindow(dialog.database, self.username)
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        window.show()
        self.close()

    @Slot()
    def open_import_wizard(self) -> QWidget:
        from churndesk.ui.panes.import_wizard import ImportWizard

        wizard = ImportWizard(self.database.engine, self.jobs, self.username, self)
        wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        wizard.show()
        return wizard

    @Slot(object)
    def _on_overview_succeeded(self, overview: Overview) -> None:
        self.customers_pane.show_overview(overview)
        if overview.customers and not self._table_loaded:
            self._table_loaded = True
            self.customers_pane.load()
            engine = self.database.engine

            def choices(progress: ProgressFn, cancel: threading.Event) -> FilterChoices:
                return filter_choices(engine)

            worker = self.jobs.start("_filter_choices", choices, lane="read")
            worker.succeeded.connect(self._on_filter_choices_succeeded)
            worker.failed.connect(self._on_job_failed)
        self.database_label.setText(
            f"Database: {self.database.display_name} · {overview.customers_text()}"
        )

    @Slot(object)
    def _on_live_data_changed(self, changes: Changes) -> None:
        if changes.models:
            self.models_pane.refresh()
        if changes.alerts or changes.scores:
            self.alerts_pane.refresh()
            self.notifier.poll()
        if changes.customers or changes.scores:
            if self._table_loaded:
                self.customers_pane.refresh()
            self.refresh_overview()

    @Slot(object)
    def _on_filter_choices_succeeded(self, choices: FilterChoices) -> None:
        self.customers_pane.set_filter_choices(choices)

    @Slot(object)
    def _on_job_failed(self, exc: Any) -> None:
        show_error(self, exc)

    @Slot()
    def _on_page_action_triggered(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self.navigation.setCurrentRow(int(action.data()))

    @Slot()
    def _on_about_triggered(self) -> None:
        QMessageBox.about(
            self,
            "About churndesk",
            f"churndesk {__version__}\n\nCustomer churn prediction and risk monitoring.",
        )

    def closeEvent(self, event: QCloseEvent) -> None:
        save_layout(self, LAYOUT_KEY)
        self.live.stop()
        self.jobs_stopped = self.jobs.shutdown(timeout_ms=self.SHUTDOWN_WAIT_MS)
        self.database.engine.dispose()
        super().closeEvent(event)
