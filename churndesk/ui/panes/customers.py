"""The Customers page: filter bar, the million-row customer table, and its empty states."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QStackedLayout,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from churndesk.services.customer_views import CustomerQuery, FilterChoices
from churndesk.services.overview import Overview
from churndesk.ui.delegates import BandBadgeDelegate
from churndesk.ui.jobs import JobRunner
from churndesk.ui.models.customer_table import COLUMNS, CUSTOMER_ID_ROLE, CustomerTableModel
from churndesk.ui.panes.customer_detail import CustomerDetailPane
from churndesk.ui.panes.placeholder import MessagePage

SEARCH_DELAY_MS = 250
BANDS = ("low", "medium", "high", "critical")
STATUSES = ("active", "churned")
# Analysts open churndesk to see who may leave: customers who already left are one click away.
DEFAULT_QUERY = CustomerQuery(status="active")


class FilterBar(QWidget):
    """Search box and filter drop-downs; emits the resulting query when anything changes."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        rows = QVBoxLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        layout = QHBoxLayout()
        rows.addLayout(top)
        rows.addLayout(layout)
        self.search = QLineEdit()
        self.search.setObjectName("customer_search")
        self.search.setPlaceholderText("Search name, e-mail or customer ID  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(120)
        self.segment = self._combo("segment", "segments")
        self.plan = self._combo("plan", "plans")
        self.band = self._combo("band", "bands", BANDS)
        self.status = self._combo("status", "statuses", STATUSES)
        self.owner = self._combo("owner", "owners")
        self.risk_min = self._spin("risk_min", 0.0, "Risk ≥ ")
        self.risk_max = self._spin("risk_max", 100.0, "Risk ≤ ")
        self.clear_button = QPushButton("Clear filters")
        self.clear_button.setToolTip("Back to every active customer")
        top.addWidget(self.search, 1)
        top.addWidget(self.risk_min)
        top.addWidget(self.risk_max)
        top.addWidget(self.clear_button)
        for widget in (
            self.segment,
            self.plan,
            self.band,
            self.status,
            self.owner,
        ):
            layout.addWidget(widget)
        layout.addStretch(1)
        # Typing restarts a short timer so a query runs once the user pauses, not per key.
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.changed)
        self.search.textChanged.connect(self._search_timer.start)
        self.search.returnPressed.connect(self._on_search_return_pressed)
        self.clear_button.clicked.connect(self.clear)
        self.status.blockSignals(True)
        self.status.setCurrentIndex(self.status.findData(DEFAULT_QUERY.status))
        self.status.blockSignals(False)

    def _combo(self, name: str, label: str, values: tuple[str, ...] = ()) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName(f"filter_{name}")
        combo.setToolTip(f"Show only these {label}")
        combo.addItem(f"All {label}", None)
        # Long values (plan names) must not force a wide window; the popup shows them whole.
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(len(f"All {label}"))
        for value in values:
            combo.addItem(value, value)
        combo.currentIndexChanged.connect(self.changed)
        return combo

    def _spin(self, name: str, value: float, prefix: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setObjectName(f"filter_{name}")
        spin.setRange(0.0, 100.0)
        spin.setDecimals(0)
        spin.setPrefix(prefix)
        spin.setMinimumWidth(spin.sizeHint().width())
        spin.setToolTip("Risk score range (0–100)")
        spin.setValue(value)
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(self.changed)
        return spin

    def set_choices(self, choices: FilterChoices) -> None:
        for combo, values in (
            (self.segment, choices.segments),
            (self.plan, choices.plans),
            (self.owner, choices.owners),
        ):
            current = combo.currentData()
            combo.blockSignals(True)
            while combo.count() > 1:
                combo.removeItem(1)
            for value in values:
                combo.addItem(value, value)
            index = combo.findData(current) if current is not None else 0
            combo.setCurrentIndex(max(index, 0))
            combo.blockSignals(False)

    def query(self, base: CustomerQuery) -> CustomerQuery:
        risk_min = self.risk_min.value()
        risk_max = self.risk_max.value()
        return CustomerQuery(
            search=self.search.text().strip(),
            segment=self.segment.currentData(),
            plan=self.plan.currentData(),
            band=self.band.currentData(),
            status=self.status.currentData(),
            owner=self.owner.currentData(),
            risk_min=risk_min if risk_min > 0 else None,
            risk_max=risk_max if risk_max < 100 else None,
            sort=base.sort,
            descending=base.descending,
        )

    def is_filtered(self) -> bool:
        """True when the view differs from the default (active customers)."""
        return self.query(CustomerQuery()) != DEFAULT_QUERY

    @Slot()
    def clear(self) -> None:
        widgets: list[Any] = [self.segment, self.plan, self.band, self.status, self.owner]
        for widget in (*widgets, self.risk_min, self.risk_max, self.search):
            widget.blockSignals(True)
        self.search.clear()
        for combo in widgets:
            combo.setCurrentIndex(0)
        self.status.setCurrentIndex(self.status.findData(DEFAULT_QUERY.status))
        self.risk_min.setValue(0.0)
        self.risk_max.setValue(100.0)
        for widget in (*widgets, self.risk_min, self.risk_max, self.search):
            widget.blockSignals(False)
        self.changed.emit()

    @Slot()
    def _on_search_return_pressed(self) -> None:
        self._search_timer.stop()
        self.changed.emit()


class CustomersPane(QWidget):
    """Filter bar over the customer table, with empty states for a new database."""

    customer_activated = Signal(int)
    import_requested = Signal()

    def __init__(
        self, engine: Any, jobs: JobRunner, actor: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.model = CustomerTableModel(engine, jobs, parent=self)
        self.detail = CustomerDetailPane(engine, jobs, actor)
        self.filters = FilterBar()
        self.count_label = QLabel("")
        self.count_label.setObjectName("customer_count")
        self.table = QTableView()
        self.table.setObjectName("customer_table")
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        # Fixed row heights: with a million rows Qt must not measure each row.
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setObjectName("customer_table_header")
        header.setSectionsMovable(True)
        header.setStretchLastSection(True)
        header.setSortIndicator(
            [c.key for c in COLUMNS].index("risk_score"), Qt.SortOrder.DescendingOrder
        )
        metrics = header.fontMetrics()
        for index, column in enumerate(COLUMNS):
            header.resizeSection(index, max(70, metrics.horizontalAdvance(column.title) + 28))
        header.resizeSection(0, 220)
        self.band_delegate = BandBadgeDelegate(self.table)
        self.table.setItemDelegateForColumn(
            [c.key for c in COLUMNS].index("risk_band"), self.band_delegate
        )

        self.table_page = QWidget()
        table_layout = QVBoxLayout(self.table_page)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addWidget(self.filters)
        table_layout.addWidget(self.count_label)
        self._table_stack = QStackedLayout()
        self.no_match = MessagePage(
            "No customers match",
            "Nothing matches the search and filters. Clear the filters to see every customer.",
            action="Clear filters",
        )
        self.no_match.action_triggered.connect(self.filters.clear)
        self._table_stack.addWidget(self.table)
        self._table_stack.addWidget(self.no_match)
        table_area = QWidget()
        table_area.setLayout(self._table_stack)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("customers_splitter")
        self.splitter.addWidget(table_area)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setCollapsible(0, False)
        self.splitter.setSizes([880, 360])
        table_layout.addWidget(self.splitter, 1)

        self.empty = MessagePage(
            "No customers yet",
            "Import a CSV export from your CRM or billing system (File ▸ Import customers, or "
            "`churndesk import customers FILE`), or create a demo database with "
            "`churndesk demo`.",
            action="Import customers…",
        )
        self.empty.action_triggered.connect(self.import_requested)
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self.table_page)
        self._stack.addWidget(self.empty)

        self.filters.changed.connect(self._on_filters_changed)
        self.model.view_loaded.connect(self._on_model_view_loaded)
        self.model.loading_changed.connect(self._on_model_loading_changed)
        self.table.activated.connect(self._on_table_activated)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row_changed)
        QShortcut(QKeySequence.StandardKey.Find, self, self._focus_search)
        self._has_customers = True

    # -- state -------------------------------------------------------------------------------

    def show_overview(self, overview: Overview) -> None:
        self._has_customers = overview.customers > 0
        self._stack.setCurrentWidget(self.table_page if self._has_customers else self.empty)

    def set_filter_choices(self, choices: FilterChoices) -> None:
        self.filters.set_choices(choices)

    def load(self) -> None:
        self.model.set_query(self.filters.query(self.model.query))

    def refresh(self) -> None:
        """Re-read after a change elsewhere, keeping selection and scroll position."""
        self.model.refresh()

    def selected_customer_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.customer_id(rows[0].row()) if rows else None

    # -- slots -------------------------------------------------------------------------------

    @Slot()
    def _on_filters_changed(self) -> None:
        self.model.set_query(self.filters.query(self.model.query))

    @Slot(int)
    def _on_model_view_loaded(self, rows: int) -> None:
        filtered = self.filters.is_filtered()
        noun = "customer" if rows == 1 else "customers"
        if filtered:
            text = f"{rows:,} {noun} match"
        else:
            text = f"{rows:,} active {noun} (customers who left: choose Status ▸ churned)"
        self.count_label.setText(text)
        self._table_stack.setCurrentWidget(self.table if rows or not filtered else self.no_match)

    @Slot(bool)
    def _on_model_loading_changed(self, loading: bool) -> None:
        if loading:
            self.count_label.setText("Loading customers…")

    @Slot(QModelIndex)
    def _on_table_activated(self, index: QModelIndex) -> None:
        customer_id = index.data(CUSTOMER_ID_ROLE)
        if customer_id is not None:
            self.customer_activated.emit(int(customer_id))

    @Slot(QModelIndex, QModelIndex)
    def _on_current_row_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        customer_id = current.data(CUSTOMER_ID_ROLE) if current.isValid() else None
        if customer_id != self.detail.record_id():
            self.detail.show_customer(None if customer_id is None else int(customer_id))

    @Slot()
    def _focus_search(self) -> None:
        self.filters.search.setFocus()
        self.filters.search.selectAll()
