"""The customer detail pane: who the customer is, an edit form, the risk history and its drivers.

Edits go through the customer service on the write lane with the version the form was loaded
at; if someone else saved first the service refuses (StaleEditError) and the pane keeps the
user's values, shows both versions, and lets them re-apply on top of the newer one.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QStackedLayout,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from churndesk.errors import ChurndeskError, NotFoundError, StaleEditError, ValidationError
from churndesk.progress import ProgressFn
from churndesk.services.customer_views import CustomerDetail, customer_detail
from churndesk.services.customers import CustomerRecord, update_customer
from churndesk.ui import formatting
from churndesk.ui.jobs import JobRunner
from churndesk.ui.panes.placeholder import MessagePage

if TYPE_CHECKING:
    from churndesk.ui.charts.risk_history import RiskHistoryChart

# (field, label) of the form, in order.
FORM_FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "Name"),
    ("external_id", "Customer ID"),
    ("email", "E-mail"),
    ("segment", "Segment"),
    ("plan", "Plan"),
    ("country", "Country"),
    ("owner", "Owner"),
    ("monthly_revenue", "Monthly revenue"),
    ("signup_date", "Signup date"),
    ("status", "Status"),
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dt.date | dt.datetime):
        return formatting.date(value)
    return str(value)


def _plain_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


class CustomerDetailPane(QWidget):
    """Shows one customer; ``saved`` is emitted with the new record after a successful edit."""

    saved = Signal(object)

    def __init__(self, engine: Any, jobs: JobRunner, actor: str, parent: QWidget | None = None):
        super().__init__(parent)
        self._engine = engine
        self._jobs = jobs
        self._actor = actor
        self._detail: CustomerDetail | None = None
        self._customer_id: int | None = None
        self._request = 0
        self._conflict_current: CustomerRecord | None = None

        self.none = MessagePage("No customer selected", "Select a customer to see the details.")
        self.header = _plain_label()
        font = self.header.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.header.setFont(font)
        self.header.setWordWrap(True)
        self.summary = _plain_label()
        self.summary.setWordWrap(True)

        # Edit form with an inline message under every field.
        self.inputs: dict[str, QLineEdit | QComboBox] = {}
        self.field_messages: dict[str, QLabel] = {}
        form = QFormLayout()
        for name, label in FORM_FIELDS:
            widget: QLineEdit | QComboBox
            if name == "status":
                widget = QComboBox()
                widget.addItems(["active", "churned"])
            else:
                widget = QLineEdit()
                if name == "signup_date":
                    widget.setPlaceholderText("YYYY-MM-DD")
            widget.setObjectName(f"edit_{name}")
            message = _plain_label()
            message.setStyleSheet("color: #b71c1c;")
            message.setVisible(False)
            cell = QVBoxLayout()
            cell.setSpacing(0)
            cell.addWidget(widget)
            cell.addWidget(message)
            form.addRow(label, cell)
            self.inputs[name] = widget
            self.field_messages[name] = message
        self.message_bar = _plain_label()
        self.message_bar.setWordWrap(True)
        self.message_bar.setVisible(False)
        self.conflict_table = QTableWidget(0, 3)
        self.conflict_table.setHorizontalHeaderLabels(
            ["Field", "Your value", "Saved by someone else"]
        )
        self.conflict_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.conflict_table.verticalHeader().setVisible(False)
        self.conflict_table.setVisible(False)
        self.save_button = QPushButton("Save")
        self.save_button.setToolTip("Save changes (Ctrl+S)")
        self.save_button.clicked.connect(self.save)
        self.revert_button = QPushButton("Revert")
        self.revert_button.clicked.connect(self._on_revert_clicked)
        self.reapply_button = QPushButton("Re-apply my changes")
        self.reapply_button.setToolTip("Take the newer version and put your edits on top of it")
        self.reapply_button.clicked.connect(self._on_reapply_clicked)
        self.reapply_button.setVisible(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.reapply_button)
        buttons.addStretch(1)
        edit_tab = QWidget()
        edit_layout = QVBoxLayout(edit_tab)
        edit_layout.addWidget(self.message_bar)
        edit_layout.addWidget(self.conflict_table)
        edit_layout.addLayout(form)
        edit_layout.addLayout(buttons)
        edit_layout.addStretch(1)

        self.attributes = QTableWidget(0, 2)
        self.attributes.setObjectName("customer_attributes")
        self.attributes.setHorizontalHeaderLabels(["Attribute", "Value"])
        self.attributes.horizontalHeader().setStretchLastSection(True)
        self.attributes.verticalHeader().setVisible(False)
        self.attributes.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)

        # pyqtgraph costs 0.25 s to import: the chart is built when the first customer opens.
        self._chart: RiskHistoryChart | None = None
        self.drivers = QListWidget()
        self.drivers.setObjectName("customer_drivers")
        self.drivers.setMaximumHeight(110)
        risk_tab = QWidget()
        risk_layout = QVBoxLayout(risk_tab)
        self._risk_layout = risk_layout
        risk_layout.addWidget(_plain_label("Top drivers of the latest score"))
        risk_layout.addWidget(self.drivers)

        self.tabs = QTabWidget()
        self.tabs.addTab(risk_tab, "Risk")
        self.tabs.addTab(edit_tab, "Details")
        self.tabs.addTab(self.attributes, "Attributes")

        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.addWidget(self.header)
        content_layout.addWidget(self.summary)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        content_layout.addWidget(line)
        content_layout.addWidget(self.tabs, 1)
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self.none)
        self._stack.addWidget(content)
        self._content = content
        QShortcut(QKeySequence.StandardKey.Save, self, self.save)

    # -- loading -----------------------------------------------------------------------------

    @property
    def chart(self) -> RiskHistoryChart:
        if self._chart is None:
            from churndesk.ui.charts.risk_history import RiskHistoryChart

            self._chart = RiskHistoryChart()
            self._risk_layout.insertWidget(0, self._chart, 1)
        return self._chart

    @property
    def record(self) -> CustomerRecord | None:
        return self._detail.record if self._detail else None

    def record_id(self) -> int | None:
        return self._customer_id

    def show_customer(self, customer_id: int | None) -> None:
        self._customer_id = customer_id
        if customer_id is None:
            self._detail = None
            self._stack.setCurrentWidget(self.none)
            return
        self._request += 1
        engine, request = self._engine, self._request

        def load(progress: ProgressFn, cancel: threading.Event) -> tuple[int, CustomerDetail]:
            return request, customer_detail(engine, customer_id)

        worker = self._jobs.start("_customer", load, lane="read")
        worker.succeeded.connect(self._on_load_succeeded)
        worker.failed.connect(self._on_load_failed)

    @Slot(object)
    def _on_load_succeeded(self, result: tuple[int, CustomerDetail]) -> None:
        request, detail = result
        if request != self._request:
            return  # the user has moved on to another customer
        self._detail = detail
        self._fill(detail, keep_edits=False)
        self._stack.setCurrentWidget(self._content)

    @Slot(object)
    def _on_load_failed(self, exc: object) -> None:
        if isinstance(exc, NotFoundError):
            self.none.set_message("Customer deleted", exc.user_message)
        else:
            self.none.set_message("Cannot show this customer", str(exc))
        self._stack.setCurrentWidget(self.none)

    def _fill(self, detail: CustomerDetail, *, keep_edits: bool) -> None:
        record = detail.record
        self.header.setText(f"{record.name or record.external_id}")
        band = record.risk_band or "not scored"
        parts = [f"ID {record.external_id}", f"status {record.status}", f"band {band}"]
        if record.risk_score is not None:
            parts.append(f"risk {formatting.score(record.risk_score)}/100")
        if record.revenue_at_risk is not None:
            parts.append(f"revenue at risk {formatting.money(record.revenue_at_risk)}")
        self.summary.setText(" · ".join(parts))
        if not keep_edits:
            self._set_form(record)
            self._clear_messages()
        items = sorted(record.attributes.items())
        self.attributes.setRowCount(len(items))
        for row, (key, value) in enumerate(items):
            self.attributes.setItem(row, 0, QTableWidgetItem(str(key)))
            self.attributes.setItem(row, 1, QTableWidgetItem(_text(value)))
        self.chart.set_history(detail.history)
        self.drivers.clear()
        for driver in detail.drivers:
            self.drivers.addItem(self._driver_text(driver))
        if not detail.drivers:
            self.drivers.addItem("No scores yet: train a model and run scoring.")

    @staticmethod
    def _driver_text(driver: dict[str, Any]) -> str:
        arrow = "▲ raises risk" if driver.get("direction", "+") == "+" else "▼ lowers risk"
        value = driver.get("value")
        shown = "" if value is None else f" = {value}"
        return f"{driver.get('feature', '?')}{shown}  ({arrow})"

    def _set_form(self, record: CustomerRecord) -> None:
        for name, widget in self.inputs.items():
            value = getattr(record, name)
            if isinstance(widget, QComboBox):
                widget.setCurrentText(str(value))
            else:
                widget.setText(_text(value))

    def form_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, widget in self.inputs.items():
            text = widget.currentText() if isinstance(widget, QComboBox) else widget.text()
            values[name] = text.strip() if name != "name" else text
        return values

    def _changes(self, record: CustomerRecord) -> dict[str, Any]:
        """Only the fields the user changed, as text; the service parses and validates them."""
        return {
            name: value
            for name, value in self.form_values().items()
            if value != _text(getattr(record, name))
        }

    # -- saving ------------------------------------------------------------------------------

    @Slot()
    def save(self) -> None:
        if self._detail is None:
            return
        record = self._detail.record
        changes = self._changes(record)
        if not changes:
            self._show_message("Nothing to save: no field was changed.", error=False)
            return
        engine, actor, version, customer_id = self._engine, self._actor, record.version, record.id

        def run(progress: ProgressFn, cancel: threading.Event) -> CustomerRecord:
            return update_customer(
                engine, customer_id, changes, expected_version=version, actor=actor
            )

        try:
            worker = self._jobs.start("Saving customer", run)
        except ChurndeskError as exc:
            self._show_message(exc.user_message)
            return
        self.save_button.setEnabled(False)
        worker.succeeded.connect(self._on_save_succeeded)
        worker.failed.connect(self._on_save_failed)

    @Slot(object)
    def _on_save_succeeded(self, record: CustomerRecord) -> None:
        self.save_button.setEnabled(True)
        self._clear_messages()
        self._show_message("Saved.", error=False)
        if self._detail is not None:
            self._detail = CustomerDetail(record, self._detail.history)
            self._fill(self._detail, keep_edits=False)
        self.saved.emit(record)

    @Slot(object)
    def _on_save_failed(self, exc: object) -> None:
        self.save_button.setEnabled(True)
        self._clear_messages()
        if isinstance(exc, ValidationError):
            for name, reason in exc.field_errors.items():
                if name in self.field_messages:
                    self.field_messages[name].setText(reason)
                    self.field_messages[name].setVisible(True)
            self._show_message(exc.user_message)
        elif isinstance(exc, StaleEditError):
            self._show_conflict(exc)
        elif isinstance(exc, ChurndeskError):
            self._show_message(exc.user_message)
        else:
            self._show_message("The customer could not be saved. The details are in the log.")

    def _show_conflict(self, exc: StaleEditError) -> None:
        current = exc.current if isinstance(exc.current, CustomerRecord) else None
        self._show_message(
            exc.user_message + " Your changes are still in the form: compare them below, then "
            "re-apply them on top of the newer version or revert."
        )
        self._conflict_current = current
        mine = self.form_values()
        rows = []
        for name, label in FORM_FIELDS:
            theirs = _text(getattr(current, name)) if current else ""
            if mine[name] != theirs:
                rows.append((label, mine[name], theirs))
        self.conflict_table.setRowCount(len(rows))
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                self.conflict_table.setItem(r, c, QTableWidgetItem(value))
        self.conflict_table.setVisible(True)
        self.reapply_button.setVisible(current is not None)

    @Slot()
    def _on_reapply_clicked(self) -> None:
        """Adopt the newer version as the base, keeping the user's edits in the form."""
        current = self._conflict_current
        if current is None or self._detail is None:
            return
        mine = self._changes(self._detail.record)
        self._detail = CustomerDetail(current, self._detail.history)
        self._fill(self._detail, keep_edits=False)
        for name, value in mine.items():
            widget = self.inputs[name]
            if isinstance(widget, QComboBox):
                widget.setCurrentText(value)
            else:
                widget.setText(value)
        self._clear_messages()
        self._show_message(
            "Your changes are on top of the newer version. Save to keep them.", error=False
        )

    @Slot()
    def _on_revert_clicked(self) -> None:
        if self._detail is not None:
            self._set_form(self._detail.record)
        self._clear_messages()

    def _clear_messages(self) -> None:
        for message in self.field_messages.values():
            message.clear()
            message.setVisible(False)
        self.message_bar.setVisible(False)
        self.conflict_table.setVisible(False)
        self.reapply_button.setVisible(False)

    def _show_message(self, text: str, *, error: bool = True) -> None:
        colour = "#b71c1c" if error else "#1b5e20"
        background = "#ffebee" if error else "#e8f5e9"
        self.message_bar.setStyleSheet(f"color: {colour}; background: {background}; padding: 6px;")
        self.message_bar.setText(text)
        self.message_bar.setVisible(True)
