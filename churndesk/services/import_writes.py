"""Writing an import: the staging table, the upsert into customers, bulk loads.

Valid rows go to a TEMP staging table (COPY on PostgreSQL, executemany on SQLite); one
``INSERT ... SELECT ... ON CONFLICT (external_id) DO UPDATE`` per batch moves them into
``customers``, building the attributes JSON in SQL from the extra columns' inferred types and
leaving unchanged rows alone. On PostgreSQL :class:`ChunkSaver` does that chunk by chunk on a
worker thread while the next chunk is read; a first import drops the customer indexes and
rebuilds them before the commit (SQLite) or lists them to be built after it (PostgreSQL,
``_maybe_bulk``). Callers own the transaction.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any

from sqlalchemy import Connection, text

from churndesk.db.bulk_indexes import indexes_rebuilt
from churndesk.db.engine import take_write_lock
from churndesk.progress import ProgressFn, check_cancel, no_progress, stage
from churndesk.services.import_plan import ImportPlan
from churndesk.services.write_behind import WriteBehind

log = logging.getLogger(__name__)

#: From this many new customers (and at least as many as the table holds) an import drops the
#: customer indexes and rebuilds them by sorting.
BULK_LOAD_MIN_ROWS = 10_000
#: PostgreSQL: how long that waits for other desktops to let go of the table before writing
#: with the indexes in place instead.
BULK_LOCK_WAIT_MS = 3000
#: SQLite moves staged rows into customers this many at a time (progress and cancel between).
SQLITE_UPSERT_BATCH = 50_000
#: Share of a bulk load's writing spent before the index rebuild (SQLite at 1M: moving the
#: staged rows 7-8 s, then rebuilding the B-trees and the search index 27-29 s).
UPSERT_SHARE_OF_BULK = 0.25


_STAGING = "import_staging"
_PG_TYPES = {
    "row_no": "bigint",  # a row key: parallel reads number rows by block (import_parallel)
    "signup_date": "date",
    "monthly_revenue": "numeric(12, 2)",
    "churned_at": "timestamptz",
}
_SQLITE_TYPES = {"row_no": "INTEGER", "monthly_revenue": "REAL"}


def create_staging(connection: Connection, plan: ImportPlan) -> None:
    dialect = connection.dialect.name
    columns = plan.staging_columns()
    if dialect == "postgresql":
        body = ", ".join(f"{c} {_PG_TYPES.get(c, 'text')}" for c in columns)
        connection.exec_driver_sql(f"CREATE TEMP TABLE {_STAGING} ({body}) ON COMMIT DROP")
    else:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_STAGING}")
        body = ", ".join(f"{c} {_SQLITE_TYPES.get(c, 'TEXT')}" for c in columns)
        connection.exec_driver_sql(f"CREATE TEMP TABLE {_STAGING} ({body})")


def write_staging(connection: Connection, columns: Sequence[str], rows: Iterable[Any]) -> None:
    """Append prepared rows to the staging table.

    PostgreSQL gets COPY in CSV format written by the csv module (C speed; the server parses it
    on its own core); SQLite gets one executemany. Only ``name`` may be the empty string, and the
    upsert turns a NULL name back into '', so CSV's empty-field-is-NULL rule loses nothing.
    """
    if connection.dialect.name == "postgresql":
        _copy_csv(connection, columns, csv_text(rows))
        return
    raw = connection.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        placeholders = ", ".join("?" for _ in columns)
        cursor.executemany(
            f"INSERT INTO {_STAGING} ({', '.join(columns)}) VALUES ({placeholders})", rows
        )
    finally:
        cursor.close()


def write_staging_text(connection: Connection, columns: Sequence[str], data: str) -> None:
    """PostgreSQL: append rows already written as CSV text (by ``csv_text``) to the staging
    table."""
    _copy_csv(connection, columns, data)


def csv_text(rows: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _copy_csv(connection: Connection, columns: Sequence[str], data: str) -> None:
    raw = connection.connection.dbapi_connection
    assert raw is not None
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {_STAGING} ({', '.join(columns)}) FROM STDIN (FORMAT csv)") as copy,
    ):
        copy.write(data)


def _copy_customers(connection: Connection, plan: ImportPlan, rows: Iterable[Sequence[Any]]) -> int:
    """COPY rows (staged fields, empty optional text already None, then the attributes JSON)
    into customers; returns the row count.

    psycopg formats each row in C: for a million customers 1.7 s of Python instead of 11 s to
    escape and join the text ourselves (per distinct value, then per row) on this machine.
    """
    raw = connection.connection.dbapi_connection
    assert raw is not None
    columns = ", ".join([*plan.staged_fields, "attributes"])
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY customers ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return int(cursor.rowcount)


#: Customer fields whose empty text is stored as NULL (NULLIF in the upsert's SELECT).
EMPTY_IS_NULL = frozenset({"segment", "plan", "country", "owner"})


# How a typed attribute's staged text becomes a JSON value. On SQLite json() keeps a number's
# text as written (the regex checked it) and json_object quotes text itself: twice as fast as
# concatenating quoted pieces.
_ATTRIBUTE_VALUES = {
    "postgresql": {
        "integer": "CAST({} AS numeric)",
        "number": "CAST({} AS numeric)",
        "boolean": "CAST(lower({}) AS boolean)",
    },
    "sqlite": {"integer": "json({})", "number": "json({})", "boolean": "json(lower({}))"},
}


def _attributes_sql(plan: ImportPlan, dialect: str, params: dict[str, Any]) -> str | None:
    """SQL that builds each staged row's attributes JSON from its typed text columns."""
    if not plan.attributes:
        return None
    values = _ATTRIBUTE_VALUES[dialect]
    pairs: list[str] = []
    for k, attribute in enumerate(plan.attributes):
        params[f"k{k}"] = attribute.key
        value = values.get(attribute.type, "{}").format(f"s.{attribute.staged}")
        key = f"CAST(:k{k} AS text)" if dialect == "postgresql" else f":k{k}"
        pairs.append(f"{key}, {value}")
    if dialect == "postgresql":
        # jsonb_build_object takes at most 100 arguments: build groups of 50 pairs and merge.
        groups = [
            "jsonb_build_object(" + ", ".join(pairs[i : i + 50]) + ")"
            for i in range(0, len(pairs), 50)
        ]
        return " || ".join(groups)
    # SQLite caps a function at 127 arguments: objects of 60 pairs, joined as text.
    groups = ["json_object(" + ", ".join(pairs[i : i + 60]) + ")" for i in range(0, len(pairs), 60)]
    if len(groups) == 1:
        return groups[0]
    inner = " || ',' || ".join(f"substr({g}, 2, length({g}) - 2)" for g in groups)
    return f"'{{' || {inner} || '}}'"


def _changed_sql(fields: list[str], dialect: str, attributes: bool) -> str:
    """The ON CONFLICT ... WHERE that skips rows whose values did not change."""
    tests: list[str] = []
    updated = [f for f in fields if f != "external_id"]
    if dialect == "postgresql":
        if updated:
            left = ", ".join(f"customers.{f}" for f in updated)
            right = ", ".join(f"EXCLUDED.{f}" for f in updated)
            tests.append(f"ROW({left}) IS DISTINCT FROM ROW({right})")
        if attributes:
            # The file's attributes are scalars, so the merge changes nothing exactly when the
            # stored document already contains them; cheaper than merging and comparing.
            tests.append("NOT (customers.attributes @> EXCLUDED.attributes)")
    else:
        tests.extend(f"customers.{f} IS NOT excluded.{f}" for f in updated)
        if attributes:
            # Equal text is the common case (a re-import of unchanged rows builds the same
            # json_object text); only other rows pay for the merge in Python.
            tests.append(
                "(customers.attributes IS NOT excluded.attributes "
                "AND churndesk_json_differs(customers.attributes, excluded.attributes))"
            )
    return " OR ".join(tests) if tests else "false"


def _upsert_sql(
    plan: ImportPlan,
    dialect: str,
    params: dict[str, Any],
    where: str = "true",
    *,
    mostly_new: bool = False,
) -> str:
    """The INSERT ... SELECT ... ON CONFLICT that moves staged rows (``where``) into customers.

    ``mostly_new`` (a first import) leaves out the PostgreSQL anti-join that skips unchanged
    rows: it would look up every new customer once more for nothing.
    """
    fields = plan.staged_fields
    attributes = _attributes_sql(plan, dialect, params)
    targets = list(fields)
    selects = [f"s.{f}" for f in fields]
    if "name" in fields:
        selects[fields.index("name")] = "COALESCE(s.name, '')"
    if "status" in fields:
        selects[fields.index("status")] = "COALESCE(s.status, 'active')"
    for optional in EMPTY_IS_NULL & set(fields):
        selects[fields.index(optional)] = f"NULLIF(s.{optional}, '')"
    targets.append("attributes")
    if attributes is None:
        selects.append("CAST('{}' AS jsonb)" if dialect == "postgresql" else "'{}'")
    else:
        selects.append(attributes)
    excluded = "EXCLUDED" if dialect == "postgresql" else "excluded"
    sets = [f"{f} = {excluded}.{f}" for f in fields if f != "external_id"]
    if "status" in fields and "churned_at" not in fields:
        # An imported status of active ends a churn: its old churn date no longer applies.
        sets.append(
            f"churned_at = CASE WHEN {excluded}.status = 'active' THEN NULL "
            "ELSE customers.churned_at END"
        )
    if attributes is not None:
        merge = (
            "customers.attributes || EXCLUDED.attributes"
            if dialect == "postgresql"
            else "churndesk_json_merge(customers.attributes, excluded.attributes)"
        )
        sets.append(f"attributes = {merge}")
    sets.append("version = customers.version + 1")
    sets.append("updated_at = CURRENT_TIMESTAMP")
    changed = _changed_sql(fields, dialect, attributes is not None)
    source = f"SELECT {', '.join(selects)} FROM {_STAGING} AS s WHERE {where}"
    if dialect == "postgresql" and not mostly_new:
        source = _without_unchanged(targets, selects, where)
    return (
        f"INSERT INTO customers ({', '.join(targets)}) {source} "
        f"ON CONFLICT (external_id) DO UPDATE SET {', '.join(sets)} WHERE {changed}"
    )


def _without_unchanged(targets: list[str], selects: list[str], where: str) -> str:
    """PostgreSQL: the staged rows minus those ``customers`` already holds exactly.

    ON CONFLICT locks every conflicting row before its WHERE can skip it, writing each heap page
    a re-import touches: an anti-join that drops the unchanged rows first took a re-import of a
    million unchanged customers from 14.6 s to 9.3 s of server time. The ON CONFLICT ... WHERE
    stays as the guard for rows another session changes meanwhile.
    """
    named = ", ".join(
        f"{value} AS {target}" for value, target in zip(selects, targets, strict=True)
    )
    compared = [t for t in targets if t not in ("external_id", "attributes")]
    same = ["c.attributes @> n.attributes"]
    if compared:
        stored = ", ".join(f"c.{t}" for t in compared)
        staged = ", ".join(f"n.{t}" for t in compared)
        same.insert(0, f"ROW({stored}) IS NOT DISTINCT FROM ROW({staged})")
    return (
        f"SELECT * FROM (SELECT {named} FROM {_STAGING} AS s WHERE {where}) AS n "
        "WHERE NOT EXISTS (SELECT 1 FROM customers AS c "
        f"WHERE c.external_id = n.external_id AND {' AND '.join(same)})"
    )


def _upsert_counted(connection: Connection, sql: str, params: dict[str, Any]) -> tuple[int, int]:
    """PostgreSQL: run an upsert; returns (inserted, updated)."""
    row = connection.execute(
        text(
            f"WITH up AS ({sql} RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up"
        ),
        params,
    ).one()
    return int(row[0]), int(row[1])


def upsert(
    connection: Connection,
    plan: ImportPlan,
    staged: int,
    report: ProgressFn,
    cancel: threading.Event | None = None,
) -> tuple[int, int]:
    """Move the staged rows into customers; returns (inserted, updated).

    ``report`` gets the progress from 0 to 1, the index rebuild of a bulk load included;
    ``cancel`` is checked between batches and indexes (the caller's transaction then rolls
    everything back).
    """
    dialect = connection.dialect.name
    params: dict[str, Any] = {}
    new_rows = partial(_new_rows, connection)
    rebuild = stage(report, UPSERT_SHARE_OF_BULK, 1.0)
    if dialect == "postgresql":
        with _maybe_bulk(connection, rebuild, cancel, staged=staged, new_rows=new_rows) as load:
            sql = _upsert_sql(plan, dialect, params, mostly_new=bool(load))
            return _upsert_counted(connection, sql, params)
    _register_sqlite_functions(connection)
    # Only now, not for the whole import: staging goes to a temporary table, and edits made
    # meanwhile should not wait behind a file being read.
    take_write_lock(connection)
    before = _count(connection)
    last = int(connection.exec_driver_sql(f"SELECT max(rowid) FROM {_STAGING}").scalar() or 0)
    sql = _upsert_sql(plan, dialect, params, "s.rowid BETWEEN :lo AND :hi")
    written = 0
    with _maybe_bulk(
        connection, rebuild, cancel, staged=staged, new_rows=new_rows, before=before
    ) as load:
        # In batches of staged rows (in file order: the staging table is only appended to),
        # so that a million rows move the progress bar and can be cancelled on the way.
        saving = stage(report, 0.0, UPSERT_SHARE_OF_BULK if load else 1.0)
        for lo in range(1, last + 1, SQLITE_UPSERT_BATCH):
            hi = min(lo + SQLITE_UPSERT_BATCH - 1, last)
            written += int(connection.execute(text(sql), {**params, "lo": lo, "hi": hi}).rowcount)
            saving(hi / last, f"Saving customers: {hi:,} of {last:,}")
            check_cancel(cancel)
    after = _count(connection)
    connection.exec_driver_sql(f"DROP TABLE temp.{_STAGING}")
    inserted = after - before
    return inserted, written - inserted


def _count(connection: Connection, upto: int | None = None) -> int:
    """How many customers there are, or ``upto`` when there are at least that many."""
    if upto is None:
        return int(connection.exec_driver_sql("SELECT count(*) FROM customers").scalar_one())
    return int(
        connection.execute(
            text("SELECT count(*) FROM (SELECT 1 FROM customers LIMIT :upto) AS q"),
            {"upto": upto},
        ).scalar_one()
    )


class BulkLoad(enum.IntEnum):
    """How an import writes, decided by ``_maybe_bulk``; false for an ordinary import."""

    NONE = 0
    #: Mostly new customers, written with the indexes in place (another desktop was reading).
    SHARED = 1
    #: Mostly new customers into a table locked for this import alone, indexes rebuilt after.
    EXCLUSIVE = 2


@contextmanager
def _maybe_bulk(
    connection: Connection,
    report: ProgressFn,
    cancel: threading.Event | None,
    *,
    staged: int,
    new_rows: Callable[[], int],
    before: int | None = None,
) -> Iterator[BulkLoad]:
    """Write with the customer indexes dropped and rebuilt when the import is mostly new rows.

    Only when it brings at least ``BULK_LOAD_MIN_ROWS`` new customers and at least as many as
    the table holds (a first import): rebuilding every index of a big table for a few thousand
    rows, or for a daily file that changes little, would cost more than it saves. On PostgreSQL
    other desktops' reads of ``customers`` wait for the commit meanwhile (see
    :mod:`churndesk.db.bulk_indexes`). Yields what kind of load it is (false: none). ``report``
    gets the rebuild's progress from 0 to 1; ``cancel`` is checked before each index.
    """
    if staged < BULK_LOAD_MIN_ROWS or not _worth_a_bulk_load(connection, new_rows(), before):
        yield BulkLoad.NONE
        return

    def rebuilding(done: float) -> None:
        report(done, "Rebuilding the customer indexes")
        check_cancel(cancel)

    # PostgreSQL builds them after the commit, two at a time (churndesk.db.pending_indexes).
    with indexes_rebuilt(
        connection, "customers", wait_ms=BULK_LOCK_WAIT_MS, progress=rebuilding
    ) as rebuilt:
        log.info("import: customer indexes %s", "rebuilt" if rebuilt else "kept (table busy)")
        yield BulkLoad.EXCLUSIVE if rebuilt else BulkLoad.SHARED


def _worth_a_bulk_load(connection: Connection, new: int, before: int | None) -> bool:
    """The rule of ``_maybe_bulk``: ``new`` customers, at least the minimum and at least as
    many as the table holds (``before``, counted here when None)."""
    if new < BULK_LOAD_MIN_ROWS:
        return False
    if before is None:
        # Counting a million rows takes seconds on PostgreSQL; whether the table holds more
        # than ``new`` only needs that many.
        before = _count(connection, upto=new + 1)
    return new >= before


def bulk_expected(connection: Connection, estimate: int) -> bool:
    """Whether a file of about ``estimate`` rows, of which the rows staged so far are a sample,
    will be written as a bulk load (for laying out progress; the write decides for itself)."""
    return estimate >= BULK_LOAD_MIN_ROWS and _worth_a_bulk_load(
        connection, _estimated_new(connection, estimate), None
    )


def _estimated_new(connection: Connection, estimate: int) -> int:
    """New customers in a file of about ``estimate`` rows, from the share in those staged."""
    staged = int(connection.exec_driver_sql(f"SELECT count(*) FROM {_STAGING}").scalar() or 0)
    return _new_rows(connection) * estimate // max(staged, 1)


def _new_rows(connection: Connection) -> int:
    """How many staged rows bring an external id that ``customers`` does not hold yet."""
    return int(
        connection.exec_driver_sql(
            f"SELECT count(*) FROM {_STAGING} AS s WHERE NOT EXISTS "
            "(SELECT 1 FROM customers AS c WHERE c.external_id = s.external_id)"
        ).scalar_one()
    )


# How an attribute's SQL reads its staged text, by inferred type. Chunks saved while a column
# looked numeric hold JSON numbers: if a later chunk shows it holds text, they are wrong.
_VALUE_CLASS: dict[str, str | None] = {
    "empty": None,  # only blanks so far: NULL, whatever the type turns out to be
    "integer": "number",
    "number": "number",
    "boolean": "boolean",
    "text": "text",
}


class TypesChanged(Exception):
    """An extra column turned out to hold text after chunks were saved with another type."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class ChunkSaver:
    """PostgreSQL: stage and upsert each chunk on a worker thread while the next one is read.

    Reading and validating is Python's work, staging and upserting the server's: one after the
    other they took 16 s + 15-20 s for a million new customers; overlapped, the longer of the
    two. Everything stays in the import's one transaction. The bulk-load decision (see
    ``_maybe_bulk``) is taken at the first chunk, from the share of new customers in it and the
    size of the file; that chunk is saved before the next is read, so the caller knows it. A
    first import into an empty table read in one process skips staging altogether
    (:meth:`begin`; the caller does not call it for a file read by worker processes, whose
    rows come as staging text, :meth:`save_text`). If an extra
    column turns out to hold text after chunks were saved with numbers or booleans in
    it, :class:`TypesChanged` asks the caller to import again, reading the whole file before
    saving.
    """

    def __init__(
        self,
        connection: Connection,
        plan: ImportPlan,
        columns: Sequence[str],
        pipeline: WriteBehind[tuple[int, int]],
        bulk: ExitStack,
        cancel: threading.Event | None = None,
    ) -> None:
        self.connection = connection
        self.plan = plan
        self.columns = columns
        self.report: ProgressFn = no_progress  # the rebuild's, set by finish()
        self.cancel = cancel
        self.pipeline = pipeline
        self.bulk = bulk
        self.classes: dict[str, str] = {}
        #: The bulk-load decision (see ``_maybe_bulk``); made by :meth:`begin` or the first
        #: saved chunk, known once the first save() returns.
        self.load = BulkLoad.NONE
        self.decided = False
        #: COPY straight into ``customers``: a first import into an empty table that this
        #: import alone may write; rows then hold the staged fields and the attributes JSON.
        self.direct = False
        connection.exec_driver_sql(f"CREATE INDEX ON {_STAGING} (row_no)")

    @property
    def mostly_new(self) -> bool:
        return bool(self.load)

    def begin(self, estimate: int) -> None:
        """Before the first chunk is prepared: an empty table takes the file as a bulk load,
        copied straight into ``customers`` when no other desktop can write meanwhile.

        Staging, then INSERT ... SELECT ... ON CONFLICT cost the server 20 s per million new
        customers, COPY straight in 15-17 s. Rows cannot conflict: the table is empty, locked
        for this import (``BulkLoad.EXCLUSIVE``), and duplicates in the file are rejected.
        """
        if self.decided or estimate < BULK_LOAD_MIN_ROWS or _count(self.connection, upto=1):
            return
        self.load = self.bulk.enter_context(
            _maybe_bulk(
                self.connection,
                lambda done, text: self.report(done, text),
                self.cancel,
                staged=estimate,
                new_rows=lambda: estimate,
                before=0,
            )
        )
        self.decided = True
        self.direct = self.load is BulkLoad.EXCLUSIVE

    def save(self, rows: Iterable[Any], first_row: int, last_row: int, estimate: int) -> None:
        """Queue a chunk's valid rows (file rows ``first_row``..``last_row``); ``estimate`` is
        the number of rows the file is expected to hold."""
        if self.direct:
            self._check_types()
            self.pipeline.submit(lambda: (_copy_customers(self.connection, self.plan, rows), 0))
            return
        self.save_text(csv_text(rows), first_row, last_row, estimate)

    def save_text(self, data: str, first_row: int, last_row: int, estimate: int) -> None:
        """Queue rows already written as CSV text, with row keys ``first_row``..``last_row``
        (staged path only)."""
        assert not self.direct
        self._check_types()
        params: dict[str, Any] = {"lo": first_row, "hi": last_row}
        undecided = not self.decided
        self.pipeline.submit(lambda: self._step(data, params, estimate))
        if undecided:
            # Wait for the bulk-load decision: the caller lays out its progress bar by it.
            self.pipeline.finish()

    def _step(self, data: str, params: dict[str, Any], estimate: int) -> tuple[int, int]:
        connection = self.connection
        _copy_csv(connection, self.columns, data)
        if not self.decided:
            new = _estimated_new(connection, estimate)
            self.load = self.bulk.enter_context(
                _maybe_bulk(
                    connection,
                    lambda done, text: self.report(done, text),
                    self.cancel,
                    staged=estimate,
                    new_rows=lambda: new,
                )
            )
            self.decided = True
        where = "s.row_no BETWEEN :lo AND :hi"
        sql = _upsert_sql(self.plan, "postgresql", params, where, mostly_new=self.mostly_new)
        return _upsert_counted(connection, sql, params)

    def _check_types(self) -> None:
        """Raise TypesChanged if a column's type now differs from the one chunks were saved
        with (the types so far cover every row read, rejected rows included)."""
        for attribute in self.plan.attributes:
            kind = _VALUE_CLASS[attribute.type]
            if kind is None:
                continue
            if self.classes.setdefault(attribute.key, kind) != kind:
                raise TypesChanged(attribute.key)

    def finish(self, report: ProgressFn = no_progress) -> tuple[int, int]:
        """Wait for every chunk and rebuild indexes the load dropped; (inserted, updated).

        ``report`` gets the rebuild's progress from 0 to 1.
        """
        self._check_types()  # the last chunks may have had no valid row to save
        results = self.pipeline.finish()
        self.report = report
        self.bulk.close()
        return sum(r[0] for r in results), sum(r[1] for r in results)


def _register_sqlite_functions(connection: Connection) -> None:
    """PostgreSQL's ``jsonb || jsonb`` for SQLite (json_patch would delete keys set to null)."""
    raw = connection.connection.dbapi_connection
    assert raw is not None
    last: list[Any] = [None, None, None]

    def merged(old: str | None, new: str | None) -> str:
        if last[0] == old and last[1] == new and last[2] is not None:
            return str(last[2])
        base = json.loads(old) if old else {}
        update = json.loads(new) if new else {}
        result = {**base, **update} if isinstance(base, dict) else update
        encoded = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
        last[:] = [old, new, encoded]
        return encoded

    def differs(old: str | None, new: str | None) -> int:
        base = json.loads(old) if old else {}
        return int(json.loads(merged(old, new)) != base)

    raw.create_function("churndesk_json_merge", 2, merged, deterministic=True)
    raw.create_function("churndesk_json_differs", 2, differs, deterministic=True)
