"""CSV export of customers in exactly the layout the import reads back with no mapping."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select, true

from churndesk.db.models import Customer
from churndesk.db.queries.customers import (
    CustomerQuery,
    count,
    customer_page,
    filters,
    view_from,
)
from churndesk.errors import ValidationError
from churndesk.progress import ProgressFn, Throttled, check_cancel
from churndesk.services.customer_fields import FIELDS, as_utc

__all__ = ["EXPORT_PAGE_SIZE", "ExportResult", "export_customers", "format_value"]

#: Rows per keyset page: big enough to amortise the round trip, small enough to stay lean.
EXPORT_PAGE_SIZE = 2_000
_T = Customer.__table__


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    columns: tuple[str, ...]
    seconds: float


def format_value(value: Any) -> str:
    """A stored value as CSV text that the import turns back into the same value."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        stamp = as_utc(value).replace(tzinfo=None)
        return stamp.isoformat(timespec="microseconds" if stamp.microsecond else "seconds") + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return json.dumps(value, ensure_ascii=False)


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def attribute_keys(connection: Connection, query: CustomerQuery) -> list[str]:
    """Every attribute key used by the customers of the view, sorted."""
    where = filters(query, connection.dialect.name)
    if connection.dialect.name == "postgresql":
        keys = (
            select(func.jsonb_object_keys(_T.c.attributes).label("key"))
            .select_from(view_from(query))
            .where(where)
        )
        stmt = select(keys.subquery().c.key).distinct()
    else:
        each = func.json_each(_T.c.attributes).table_valued("key")
        stmt = (
            select(each.c.key)
            .select_from(view_from(query))
            .join(each, onclause=true())
            .where(where)
        )
        stmt = stmt.distinct()
    return sorted(str(k) for k in connection.scalars(stmt))


def _header(keys: Sequence[str]) -> list[str]:
    # An attribute named like a field (possible after an explicit mapping) would be read back
    # as that field; give its column a distinct name.
    taken = set(FIELDS)
    columns = list(FIELDS)
    for key in keys:
        name = key
        while name in taken:
            name = f"{name} (attribute)"
        taken.add(name)
        columns.append(name)
    return columns


def _rows(page: Iterable[tuple[Any, ...]], keys: Sequence[str]) -> Iterable[list[str]]:
    revenue = FIELDS.index("monthly_revenue")
    for row in page:
        values = [format_value(v) for v in row[: len(FIELDS)]]
        values[revenue] = _money(row[revenue])
        attributes = row[len(FIELDS)] or {}
        if isinstance(attributes, str):  # SQLite hands JSON back as text in raw selects
            attributes = json.loads(attributes)
        values.extend(format_value(attributes.get(k)) for k in keys)
        yield values


def export_customers(
    engine: Engine,
    path: str | os.PathLike[str],
    *,
    query: CustomerQuery | None = None,
    excel_bom: bool = False,
    page_size: int = EXPORT_PAGE_SIZE,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ExportResult:
    """Write the customers of ``query`` (default: all, by id) to ``path`` as CSV.

    The columns are the customer fields, then one per attribute key. Rows are read in keyset
    pages inside one read transaction (a consistent snapshot), never with OFFSET. The file
    appears only when complete. ``excel_bom`` writes a UTF-8 BOM so Excel shows accents right.
    Reads only; raises ValidationError when the file cannot be written, Cancelled on cancel.
    """
    started = time.perf_counter()
    view = query or CustomerQuery(sort="id", descending=False)
    target = Path(path)
    partial = target.with_name(target.name + ".part")
    report = Throttled(progress)
    columns = (*FIELDS, "attributes")
    written = 0
    try:
        handle = partial.open("w", encoding="utf-8-sig" if excel_bom else "utf-8", newline="")
    except OSError as exc:
        raise ValidationError(f"Cannot write {target}: {exc.strerror}.") from exc
    try:
        with handle, _snapshot(engine) as connection:
            keys = attribute_keys(connection, view)
            header = _header(keys)
            total = count(connection, view)
            writer = csv.writer(handle)
            writer.writerow(header)
            cursor = None
            while True:
                check_cancel(cancel)
                page = customer_page(
                    connection, view, after=cursor, limit=page_size, columns=columns
                )
                writer.writerows(_rows(page.rows, keys))
                written += len(page.rows)
                report(written / max(total, 1), f"Exported {written:,} of {total:,} customers")
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return ExportResult(target, written, tuple(header), time.perf_counter() - started)


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A read transaction that sees one consistent state of the database."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection
