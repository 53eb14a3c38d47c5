"""Read-side services behind the customer table: a view's ordered ids, its rows, counts, choices.

Each call opens its own short connection from the shared engine, so the GUI can run them on its
read lane beside a long write job. Nothing here writes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine

from churndesk.db.queries import customers as q
from churndesk.db.queries.customers import TABLE_COLUMNS, Cursor, CustomerQuery, Page

__all__ = [
    "TABLE_COLUMNS",
    "Cursor",
    "CustomerQuery",
    "FilterChoices",
    "Page",
    "View",
    "customer_page",
    "filter_choices",
    "load_view",
    "rows_by_ids",
]


@dataclass(frozen=True)
class View:
    """The ordered ids of one query: what the table shows, row by row."""

    query: CustomerQuery
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class FilterChoices:
    segments: tuple[str, ...]
    plans: tuple[str, ...]
    owners: tuple[str, ...]


def load_view(
    engine: Engine, query: CustomerQuery, *, cancel: threading.Event | None = None
) -> View:
    """All ids of the view in display order (one streamed query; 8 MB per million rows)."""
    with engine.connect() as connection:
        return View(query, q.ordered_ids(connection, query, cancel))


def rows_by_ids(engine: Engine, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """Rows (plain tuples in TABLE_COLUMNS order) for a page of ids."""
    with engine.connect() as connection:
        return q.rows_by_ids(connection, ids)


def count(engine: Engine, query: CustomerQuery) -> int:
    with engine.connect() as connection:
        return q.count(connection, query)


def customer_page(
    engine: Engine, query: CustomerQuery, *, after: Cursor | None = None, limit: int = 500
) -> Page:
    """One keyset page, for sequential reads such as exports."""
    with engine.connect() as connection:
        return q.customer_page(connection, query, after=after, limit=limit)


def filter_choices(engine: Engine) -> FilterChoices:
    with engine.connect() as connection:
        return FilterChoices(
            tuple(q.filter_choices(connection, "segment")),
            tuple(q.filter_choices(connection, "plan")),
            tuple(q.filter_choices(connection, "owner")),
        )
