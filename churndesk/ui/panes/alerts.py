"""The Alerts page: open alerts newest first, acknowledge, take, resolve; and the popup notifier.

The notifier runs the outbox dispatch on a timer (in-app messages are delivered like e-mail),
then shows the user's unread notifications as system-tray messages, or, where there is no tray
(offscreen, a bare X server), as a banner inside the window.
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSystemTrayIcon,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from churndesk.progress import ProgressFn
from churndesk.ui import formatting
from churndesk.ui.errors import user_message
from churndesk.ui.jobs import JobRunner

if TYPE_CHECKING:
    from churndesk.services.alerts import AlertView
    from churndesk.services.notify import NotificationView

HEADERS = ("Raised", "Severity", "Status", "Customer", "Alert", "Score", "Assigned to")
ModelIndex = QModelIndex | QPersistentModelIndex
UNRESOLVED = ("open", "acknowledged", "assigned", "snoozed")
DISPATCH_INTERVAL_MS = 30_000
LIST_LIMIT = 500  # the newest; `churndesk alerts list --limit N` reaches the rest


def _values(alert: AlertView) -> tuple[str, ...]:
    raised = alert.created_at.strftime("%Y-%m-%d %H:%M") if alert.created_at else ""
    customer = alert.customer_name or alert.external_id or "—"
    score = "" if alert.score is None else f"{alert.score:.0f}"
    return (
        raised,
        alert.severity,
        alert.status,
        customer,
        alert.title,
        score,
        alert.assigned_to or "",
    )


class AlertTableModel(QAbstractTableModel):
    """The loaded alerts as rows, rendered on demand.

    A QTableWidget built 3,500 items per load, and refilling it with its columns sized to
    contents froze the GUI thread for about 30 s at 500 alerts; a model reset costs nothing and
    only the rows on screen are ever rendered.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, ...]] = []

    def set_alerts(self, alerts: list[AlertView]) -> None:
        self.beginResetModel()
        self._rows = [_values(alert) for alert in alerts]
        self.endResetModel()

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(HEADERS)
        ):
            return HEADERS[section]
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role not in (
            Qt.ItemDataRole.DisplayRole,
            Qt.ItemDataRole.ToolTipRole,
        ):
            return None
        row, column = index.row(), index.column()
        if not (0 <= row < len(self._rows) and 0 <= column < len(HEADERS)):
            return None
        text = self._rows[row][column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return formatting.plain_tooltip(text) if text else None
        return text


class AlertsPane(QWidget):
    def __init__(self, engine: Any, jobs: JobRunner, actor: str, parent: QWidget | None = None):
        super().__init__(parent)
        self._engine = engine
        self._jobs = jobs
        self._actor = actor
        self._alerts: list[AlertView] = []
        self.scope = QComboBox()
        self.scope.addItem("Unresolved alerts", "unresolved")
        self.scope.addItem("All alerts", "all")
        self.scope.currentIndexChanged.connect(self.refresh)
        self.ack_button = QPushButton("Acknowledge")
        self.take_button = QPushButton("Assign to me")
        self.resolve_button = QPushButton("Resolve")
        self.ack_button.clicked.connect(self._on_ack_clicked)
        self.take_button.clicked.connect(self._on_take_clicked)
        self.resolve_button.clicked.connect(self._on_resolve_clicked)
        self.model = AlertTableModel(self)
        self.table = QTableView()
        self.table.setObjectName("alerts_table")
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        # Fixed widths sized once per load from the first rows, not re-measured for every
        # cell as ResizeToContents does.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setResizeContentsPrecision(50)
        header.setSectionResizeMode(HEADERS.index("Alert"), QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(False)
        self._sized = False
        self.message = QLabel(
            "No alerts. Alerts appear here after a scoring run finds customers at risk."
        )
        self.message.setObjectName("alerts_message")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        actions = QHBoxLayout()
        for widget in (self.scope, self.ack_button, self.take_button, self.resolve_button):
            actions.addWidget(widget)
        actions.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(actions)
        layout.addWidget(self.message)
        layout.addWidget(self.table, 1)

    @Slot()
    def refresh(self) -> None:
        engine = self._engine
        statuses = UNRESOLVED if self.scope.currentData() == "unresolved" else None

        def load(progress: ProgressFn, cancel: threading.Event) -> list[AlertView]:
            from churndesk.services.alerts import alert_history

            return alert_history(engine, statuses=statuses, limit=LIST_LIMIT)

        worker = self._jobs.start("_alerts", load, lane="read")
        worker.succeeded.connect(self._on_loaded)
        worker.failed.connect(self._on_failed)

    @Slot(object)
    def _on_loaded(self, alerts: list[AlertView]) -> None:
        self._alerts = alerts
        self.model.set_alerts(alerts)
        if alerts and not self._sized:
            self._sized = True
            for column in range(len(HEADERS)):
                if column != HEADERS.index("Alert"):
                    self.table.resizeColumnToContents(column)
        if len(alerts) >= LIST_LIMIT:
            self.message.setText(
                f"Showing the newest {LIST_LIMIT:,} alerts. For more, run "
                f"“churndesk alerts list --limit N” from a terminal."
            )
        elif alerts:
            self.message.setText(f"{formatting.count(len(alerts), 'alert')}.")
        else:
            self.message.setText(
                "No alerts. Alerts appear here after a scoring run finds customers at risk."
            )

    def _selected(self) -> AlertView | None:
        rows = self.table.selectionModel().selectedRows()
        return self._alerts[rows[0].row()] if rows else None

    def _act(self, verb: str, title: str) -> None:
        alert = self._selected()
        if alert is None:
            self.message.setText("Select an alert first.")
            return
        engine, actor, alert_id = self._engine, self._actor, alert.id

        def run(progress: ProgressFn, cancel: threading.Event) -> AlertView:
            from churndesk.services import alerts

            if verb == "assign":
                return alerts.assign_alert(engine, alert_id, actor, actor=actor)
            action = getattr(alerts, f"{verb}_alert")
            return action(engine, alert_id, actor=actor)

        worker = self._jobs.start(title, run)
        worker.succeeded.connect(self._on_changed)
        worker.failed.connect(self._on_failed)

    @Slot()
    def _on_ack_clicked(self) -> None:
        self._act("acknowledge", "Acknowledging the alert")

    @Slot()
    def _on_take_clicked(self) -> None:
        self._act("assign", "Assigning the alert")

    @Slot()
    def _on_resolve_clicked(self) -> None:
        self._act("resolve", "Resolving the alert")

    @Slot(object)
    def _on_changed(self, alert: AlertView) -> None:
        self.refresh()

    @Slot(object)
    def _on_failed(self, exc: object) -> None:
        self.message.setText(user_message(exc) if isinstance(exc, BaseException) else str(exc))


class NotificationBanner(QFrame):
    """The in-window fallback for tray popups: the newest unread alerts, one click to dismiss."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notification_banner")
        self.setStyleSheet(
            "#notification_banner { background: #fff3e0; border: 1px solid #ef6c00; }"
        )
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.text.setWordWrap(True)
        self.show_button = QPushButton("Show alerts")
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.clicked.connect(self.dismissed)
        layout = QHBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.show_button)
        layout.addWidget(self.dismiss_button)
        self.setVisible(False)

    def show_notifications(self, notes: list[NotificationView]) -> None:
        lines = [n.title for n in notes[:3]]
        more = f" and {len(notes) - 3} more" if len(notes) > 3 else ""
        heading = formatting.count(len(notes), "new alert")
        self.text.setText(f"{heading}: " + "; ".join(lines) + more)
        self.setVisible(True)


class AlertNotifier(QObject):
    """Dispatches the outbox every DISPATCH_INTERVAL_MS and pops up the user's new alerts."""

    shown = Signal(int)

    def __init__(
        self,
        engine: Any,
        jobs: JobRunner,
        username: str,
        banner: NotificationBanner,
        tray: QSystemTrayIcon | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine = engine
        self._jobs = jobs
        self._username = username
        self._banner = banner
        self._tray: QSystemTrayIcon | None = None
        if tray is not None:
            self.set_tray(tray)
        self._seen: set[int] = set()
        self._unread: list[int] = []
        self._busy = False
        self.timer = QTimer(self)
        self.timer.setInterval(DISPATCH_INTERVAL_MS)
        self.timer.timeout.connect(self.poll)
        banner.dismissed.connect(self._on_banner_dismissed)

    @property
    def uses_tray(self) -> bool:
        return self._tray is not None

    def set_tray(self, tray: QSystemTrayIcon | None) -> None:
        """Pop new alerts up from ``tray`` instead of the in-window banner (None: the banner)."""
        self._tray = tray

    def start(self) -> None:
        self.timer.start()
        QTimer.singleShot(0, self.poll)

    @Slot()
    def poll(self) -> None:
        """Deliver due messages, then fetch this user's unread notifications."""
        if self._busy:
            return
        self._busy = True
        engine, username = self._engine, self._username
        worker_id = f"desktop:{socket.gethostname()}"

        def run(progress: ProgressFn, cancel: threading.Event) -> list[NotificationView]:
            from churndesk.services.notify import dispatch_pending, unread_notifications

            dispatch_pending(engine, worker_id=worker_id, cancel=cancel, max_batches=5)
            return unread_notifications(engine, username)

        worker = self._jobs.start("_dispatch", run)
        worker.succeeded.connect(self._on_polled)
        worker.failed.connect(self._on_poll_failed)

    @Slot(object)
    def _on_polled(self, notes: list[NotificationView]) -> None:
        self._busy = False
        self._unread = [n.id for n in notes]
        fresh = [n for n in notes if n.id not in self._seen]
        if not fresh:
            return
        self._seen.update(n.id for n in fresh)
        if self._tray is not None:
            body = "\n".join(n.title for n in fresh[:5])
            self._tray.showMessage(formatting.count(len(fresh), "new churn alert"), body)
        else:
            self._banner.show_notifications(notes)
        self.shown.emit(len(fresh))

    @Slot(object)
    def _on_poll_failed(self, exc: object) -> None:
        self._busy = False  # the next tick retries; the outbox keeps every message

    @Slot()
    def _on_banner_dismissed(self) -> None:
        self._banner.setVisible(False)
        self.mark_all_read()

    def mark_all_read(self) -> None:
        """The user has seen the popped-up alerts: mark them read (on the write lane)."""
        engine, username, ids = self._engine, self._username, list(self._unread)
        self._unread = []
        if not ids:
            return

        def run(progress: ProgressFn, cancel: threading.Event) -> int:
            from churndesk.services.notify import mark_read

            return mark_read(engine, username, ids)

        self._jobs.start("_mark_read", run)
