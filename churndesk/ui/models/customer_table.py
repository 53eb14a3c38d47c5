"""The customer table model: a million rows by id array, pages fetched on demand into an LRU cache.

Anki's browser shape: the ordered ids of the current sort and filter live in an int64 array
(8 MB per million), ``rowCount`` is its length so the scroll bar is true and can be dragged
anywhere, and rows are fetched by id a page at a time. Sorting re-queries the database (a
QSortFilterProxyModel over a million rows took minutes here). Loading the ids runs on the read
lane, and so do page fetches, showing placeholders until the page arrives (a few milliseconds):
the GUI thread never waits for the database. A synchronous fetch on SQLite took 7 ms alone but
up to 93 ms while the id loader held the GIL, which broke the 100 ms responsiveness budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
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
from PySide6.QtGui import QColor

from churndesk.progress import ProgressFn
from churndesk.services import customer_views
from churndesk.services.customer_views import TABLE_COLUMNS, CustomerQuery, View
from churndesk.ui import formatting
from churndesk.ui.jobs import JobRunner

ModelIndex = QModelIndex | QPersistentModelIndex
RowFetcher = Callable[[Sequence[int]], dict[int, tuple[Any, ...]]]

PLACEHOLDER = "…"
CUSTOMER_ID_ROLE = Qt.ItemDataRole.UserRole + 1
BAND_ROLE = Qt.ItemDataRole.UserRole + 2
_FIELD = {name: i for i, name in enumerate(TABLE_COLUMNS)}


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    sort_key: str | None
    numeric: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", "name"),
    Column("risk_score", "Risk", "risk_score", numeric=True),
    Column("risk_band", "Band", "risk_band"),
    Column("trend", "Trend", None, numeric=True),
    Column("revenue_at_risk", "Revenue at risk", "revenue_at_risk", numeric=True),
    Column("monthly_revenue", "Monthly revenue", "monthly_revenue", numeric=True),
    Column("external_id", "Customer ID", "external_id"),
    Column("segment", "Segment", "segment"),
    Column("plan", "Plan", "plan"),
    Column("status", "Status", "status"),
    Column("owner", "Owner", "owner"),
)


def display_value(column: Column, row: tuple[Any, ...]) -> str:
    if column.key == "trend":
        return formatting.trend(row[_FIELD["risk_score"]], row[_FIELD["risk_score_prev"]])
    value = row[_FIELD[column.key]]
    if column.key in ("monthly_revenue", "revenue_at_risk"):
        return formatting.money(value)
    if column.key == "risk_score":
        return formatting.score(value)
    return "" if value is None else str(value)


class CustomerTableModel(QAbstractTableModel):
    """Rows of one CustomerQuery; call :meth:`set_query` to change sort or filters."""

    view_loaded = Signal(int)
    first_rows_shown = Signal()
    loading_changed = Signal(bool)
    load_failed = Signal(object)

    def __init__(
        self,
        engine: Any,
        jobs: JobRunner,
        *,
        page_size: int = 200,
        cache_pages: int = 64,
        fetch_async: bool | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine = engine
        self._jobs = jobs
        self._page_size = page_size
        self._cache_pages = cache_pages
        self._fetch_async = True if fetch_async is None else fetch_async
        self._query = CustomerQuery()
        self._ids = np.empty(0, dtype=np.int64)
        self._pages: OrderedDict[int, dict[int, tuple[Any, ...]]] = OrderedDict()
        self._wanted: OrderedDict[int, None] = OrderedDict()
        self._page_job_running = False
        self._generation = 0
        self._loading = False
        self._keep_rows = False
        self._partial = False
        self._view_cancel: threading.Event | None = None

    # -- the view ----------------------------------------------------------------------------

    @property
    def query(self) -> CustomerQuery:
        return self._query

    def is_loading(self) -> bool:
        return self._loading

    def set_query(self, query: CustomerQuery) -> None:
        """Load the ids of ``query`` in the background; the table changes when they arrive."""
        self._query = query
        self._reload(keep_rows=False)

    def refresh(self) -> None:
        """Re-read the current view, keeping the selection and scroll position (live updates)."""
        self._reload(keep_rows=True)

    def _reload(self, *, keep_rows: bool) -> None:
        if self._view_cancel is not None:
            self._view_cancel.set()  # a newer view supersedes the one still loading
        self._generation += 1
        self._keep_rows = keep_rows
        self._set_loading(True)
        engine, query, generation = self._engine, self._query, self._generation
        self._partial = False
        if not keep_rows:
            # The first screenful comes from a LIMIT query in milliseconds; the full id list
            # (a second or so for a million rows) follows and extends it.
            first = self._page_size * 2

            def load_first(progress: ProgressFn, cancel: threading.Event) -> tuple[int, View]:
                return generation, customer_views.load_view(engine, query, limit=first)

            quick = self._jobs.start("_customers_first", load_first, lane="read")
            quick.succeeded.connect(self._on_first_rows_succeeded)

        def load(progress: ProgressFn, cancel: threading.Event) -> tuple[int, View]:
            return generation, customer_views.load_view(engine, query, cancel=cancel)

        worker = self._jobs.start("_customers", load, lane="read")
        self._view_cancel = worker.cancel_event
        worker.succeeded.connect(self._on_view_succeeded)
        worker.failed.connect(self._on_view_failed)

    @Slot(object)
    def _on_first_rows_succeeded(self, result: tuple[int, View]) -> None:
        generation, view = result
        if generation != self._generation or not self._loading:
            return  # superseded, or the full view is already here
        self.beginResetModel()
        self._ids = view.ids
        self._drop_cache()
        self.endResetModel()
        self._partial = True
        self.first_rows_shown.emit()

    @Slot(object)
    def _on_view_succeeded(self, result: tuple[int, View]) -> None:
        generation, view = result
        if generation != self._generation:
            return  # superseded by a newer sort or filter
        self._view_cancel = None
        shown = len(self._ids)
        if self._partial and np.array_equal(view.ids[:shown], self._ids):
            # Extend the first screenful in place: the rows on screen and their cache stay.
            if len(view.ids) > shown:
                self.beginInsertRows(QModelIndex(), shown, len(view.ids) - 1)
                self._ids = view.ids
                self.endInsertRows()
        elif self._keep_rows and len(self._ids):
            self._replace_keeping_rows(view.ids)
        else:
            self.beginResetModel()
            self._ids = view.ids
            self._drop_cache()
            self.endResetModel()
        self._partial = False
        self._set_loading(False)
        self.view_loaded.emit(len(self._ids))

    @Slot(object)
    def _on_view_failed(self, exc: object) -> None:
        self._set_loading(False)
        self.load_failed.emit(exc)

    def _replace_keeping_rows(self, new_ids: np.ndarray) -> None:
        """Swap in new ids as a layout change, moving persistent indexes (selection) by id."""
        self.layoutAboutToBeChanged.emit()
        old_indexes = self.persistentIndexList()
        old_ids = self._ids
        self._ids = new_ids
        self._drop_cache()
        new_indexes = []
        for index in old_indexes:
            row = index.row()
            new_row = -1
            if 0 <= row < len(old_ids):
                hits = np.flatnonzero(new_ids == old_ids[row])
                new_row = int(hits[0]) if len(hits) else -1
            new_indexes.append(
                self.index(new_row, index.column()) if new_row >= 0 else QModelIndex()
            )
        self.changePersistentIndexList(old_indexes, new_indexes)
        self.layoutChanged.emit()

    def _set_loading(self, loading: bool) -> None:
        if loading != self._loading:
            self._loading = loading
            self.loading_changed.emit(loading)

    def _drop_cache(self) -> None:
        self._pages.clear()
        self._wanted.clear()

    # -- lookups -----------------------------------------------------------------------------

    def customer_id(self, row: int) -> int | None:
        return int(self._ids[row]) if 0 <= row < len(self._ids) else None

    def row_of(self, customer_id: int) -> int | None:
        hits = np.flatnonzero(self._ids == customer_id)
        return int(hits[0]) if len(hits) else None

    def row_values(self, row: int) -> tuple[Any, ...] | None:
        """The loaded row tuple (TABLE_COLUMNS order), or None while its page is loading."""
        page = self._pages.get(row // self._page_size)
        if page is None:
            return None
        return page.get(int(self._ids[row]))

    # -- Qt model interface ------------------------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        column = COLUMNS[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.title
        if role == Qt.ItemDataRole.TextAlignmentRole and column.numeric:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row_number, column_number = index.row(), index.column()
        if not (0 <= row_number < len(self._ids) and 0 <= column_number < len(COLUMNS)):
            return None
        column = COLUMNS[column_number]
        if role == CUSTOMER_ID_ROLE:
            return int(self._ids[row_number])
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if column.numeric:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return None
        if role not in (
            Qt.ItemDataRole.DisplayRole,
            Qt.ItemDataRole.ToolTipRole,
            Qt.ItemDataRole.ForegroundRole,
            BAND_ROLE,
        ):
            return None
        row = self._row(row_number)
        if row is None:
            return PLACEHOLDER if role == Qt.ItemDataRole.DisplayRole else None
        if role == BAND_ROLE:
            return row[_FIELD["risk_band"]]
        if role == Qt.ItemDataRole.ForegroundRole:
            if column.key == "trend":
                text = display_value(column, row)
                if text.startswith("▲"):
                    return QColor("#c62828")
                if text.startswith("▼"):
                    return QColor("#2e7d32")
            return None
        text = display_value(column, row)
        if role == Qt.ItemDataRole.ToolTipRole:
            return formatting.plain_tooltip(text) if text else None
        return text

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(COLUMNS):
            return
        key = COLUMNS[column].sort_key
        if key is None:
            return
        descending = order == Qt.SortOrder.DescendingOrder
        query = self._query.sorted_by(key, descending)
        if query == self._query and self._generation:
            return
        if not self._generation:
            # Views call sort() while being set up; load nothing until the pane asks.
            self._query = query
            return
        self.set_query(query)

    # -- pages -------------------------------------------------------------------------------

    def _row(self, row_number: int) -> tuple[Any, ...] | None:
        page_number = row_number // self._page_size
        page = self._pages.get(page_number)
        if page is None:
            if not self._fetch_async:
                page = self._load_page_now(page_number)
            else:
                self._want(page_number)
                return None
        else:
            self._pages.move_to_end(page_number)
        return page.get(int(self._ids[row_number]))

    def _page_ids(self, page_number: int) -> list[int]:
        start = page_number * self._page_size
        return self._ids[start : start + self._page_size].tolist()

    def _store(self, page_number: int, rows: dict[int, tuple[Any, ...]]) -> None:
        self._pages[page_number] = rows
        self._pages.move_to_end(page_number)
        while len(self._pages) > self._cache_pages:
            self._pages.popitem(last=False)

    def _load_page_now(self, page_number: int) -> dict[int, tuple[Any, ...]]:
        rows = customer_views.rows_by_ids(self._engine, self._page_ids(page_number))
        self._store(page_number, rows)
        return rows

    def _want(self, page_number: int) -> None:
        self._wanted[page_number] = None
        self._wanted.move_to_end(page_number)
        if not self._page_job_running:
            self._page_job_running = True
            QTimer.singleShot(0, self._fetch_wanted)

    @Slot()
    def _fetch_wanted(self) -> None:
        # Newest requests first: those are the rows on screen now, not the ones scrolled past.
        pages = list(reversed(self._wanted))[:4]
        if not pages:
            self._page_job_running = False
            return
        for page_number in pages:
            self._wanted.pop(page_number, None)
        wanted = {p: self._page_ids(p) for p in pages}
        engine, generation = self._engine, self._generation

        def fetch(progress: ProgressFn, cancel: threading.Event) -> tuple[int, dict[int, Any]]:
            all_ids = [i for ids in wanted.values() for i in ids]
            rows = customer_views.rows_by_ids(engine, all_ids)
            return generation, {
                p: {i: rows[i] for i in ids if i in rows} for p, ids in wanted.items()
            }

        worker = self._jobs.start("_page", fetch, lane="read")
        worker.succeeded.connect(self._on_pages_succeeded)
        worker.failed.connect(self._on_pages_failed)

    @Slot(object)
    def _on_pages_succeeded(
        self, result: tuple[int, dict[int, dict[int, tuple[Any, ...]]]]
    ) -> None:
        generation, pages = result
        if generation == self._generation:
            for page_number, rows in pages.items():
                self._store(page_number, rows)
                first = page_number * self._page_size
                last = min(first + self._page_size, len(self._ids)) - 1
                if last >= first:
                    self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))
        self._fetch_wanted()

    @Slot(object)
    def _on_pages_failed(self, exc: object) -> None:
        self._page_job_running = False
        self._wanted.clear()
        self.load_failed.emit(exc)
