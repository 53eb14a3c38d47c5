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
from sqlalchemy import Engine, select

from churndesk.db.engine import session_factory
from churndesk.db.models import CustomerScore
from churndesk.db.queries import customers as q
from churndesk.db.queries.customers import TABLE_COLUMNS, Cursor, CustomerQuery, Page
from churndesk.services.customers import CustomerRecord, get_customer
from churndesk.services.history import history_statement

__all__ = [
    "TABLE_COLUMNS",
    "Cursor",
    "CustomerDetail",
    "CustomerQuery",
    "FilterChoices",
    "HistoryPoint",
    "Page",
    "View",
    "customer_detail",
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
    engine: Engine,
    query: CustomerQuery,
    *,
    cancel: threading.Event | None = None,
    limit: int | None = None,
) -> View:
    """The ids of the view in display order (8 MB per million rows); with ``limit`` the first."""
    with engine.connect() as connection:
        return View(query, q.ordered_ids(connection, query, cancel, limit=limit))


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


@dataclass(frozen=True)
class HistoryPoint:
    """One score in a customer's risk history."""

    scored_at: Any
    score: float
    band: str
    model_version_id: int
    model_label: str
    revenue_at_risk: float | None


@dataclass(frozen=True)
class CustomerDetail:
    record: CustomerRecord
    history: tuple[HistoryPoint, ...]
    # The top drivers of the current score (empty before the first scoring run).
    drivers: tuple[dict[str, Any], ...] = ()


def customer_detail(
    engine: Engine, customer_id: int, *, history_limit: int = 500
) -> CustomerDetail:
    """The customer with its risk history, oldest first. Raises NotFoundError if deleted."""
    maker = session_factory(engine)
    with maker() as session:
        record = get_customer(session, customer_id)
        stmt = history_statement(customer_id, history_limit)
        rows = session.execute(stmt).all()
        drivers = session.scalar(
            select(CustomerScore.drivers).where(CustomerScore.customer_id == customer_id)
        )
    history = tuple(
        HistoryPoint(
            scored_at=row[0],
            score=float(row[1]),
            band=row[2],
            model_version_id=int(row[3]),
            model_label=f"{row[4]} v{row[5]}",
            revenue_at_risk=row[6],
        )
        for row in reversed(rows)
    )
    return CustomerDetail(record, history, tuple(drivers or ()))
