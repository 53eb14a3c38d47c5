"""Bulk loads: drop a table's secondary indexes, write, and rebuild them by sorting, atomically.

Inserting a row into every index one key at a time, scattered through indexes larger than the
cache, costs several times more than building the indexes afterwards by sorting. Measured here
for 1,000,000 new customers: PostgreSQL 69.5 s for the upsert into the 13 secondary indexes
(three of them trigram GIN) against 19.7 s without them plus 18.9 s to rebuild them; SQLite
5.6 s per 100k rows against 0.65 s + 0.93 s.

On SQLite the customer search (an external-content FTS5 table kept current by triggers) is an
index too: its triggers are dropped for the body and the search index rebuilt from the table
after, in batches of keys so that progress moves and a cancel is seen. Fed row by row, FTS5
flushes its pending terms at every statement: 53 s for 1,000,000 rows inserted by executemany
against 8.6 s without the trigger plus 11-15 s for the rebuild.

Both databases have transactional DDL, so a rollback, a cancel or a killed process brings the
indexes back together with the rows. Where they differ is what other connections see meanwhile:

* SQLite: readers keep the snapshot they had, indexes included, until the commit.
* PostgreSQL: ``DROP INDEX`` holds an ACCESS EXCLUSIVE lock until the commit, so every other
  desktop's reads of the table wait for the load to finish. Callers only ask for this when the
  load brings more rows than the table holds (a first import), and it is taken only if other
  sessions let go of the table within ``wait_ms``, and only by a login allowed to drop the
  indexes (the table's owner); otherwise the rows are written with the indexes in place.
  The indexes are not rebuilt in the transaction but listed in ``pending_indexes`` for
  :func:`churndesk.db.pending_indexes.build_pending` to build after the commit, two at a time,
  while other desktops read again.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from churndesk.db import pending_indexes
from churndesk.db.locks import lock_table, owns_table, timed_out
from churndesk.db.pending_indexes import index_method

log = logging.getLogger(__name__)

#: SQLite's search index over three columns of a million customers: 11-15 s.
_SEARCH_REBUILD_WEIGHT = 10.0

Progress = Callable[[float], None]


@contextmanager
def indexes_rebuilt(
    connection: Connection,
    table: str,
    *,
    wait_ms: int,
    progress: Progress | None = None,
) -> Iterator[bool]:
    """Drop ``table``'s secondary indexes for the body, then recreate them; yields whether it did.

    Indexes backing a constraint (primary key, unique) stay: the body's ON CONFLICT needs them.
    Runs in the caller's transaction and commits nothing. ``table`` is a trusted identifier.
    SQLite rebuilds after the body: ``progress`` gets the share of the rebuild done before each
    step and 1.0 at the end; it may raise (a cancel) to abandon the rebuild along with the
    caller's transaction. PostgreSQL lists the indexes in ``pending_indexes`` instead; the
    caller runs ``pending_indexes.build_pending`` after its commit.
    """
    if connection.dialect.name == "postgresql":
        with _postgres(connection, table, wait_ms) as dropped:
            yield dropped
    else:
        with _sqlite(connection, table, progress or _ignore):
            yield True


def _ignore(done: float) -> None:
    pass


def _recreate(connection: Connection, steps: list[tuple[str, float]], progress: Progress) -> None:
    """Run each (statement, weight); ``progress`` gets the share of the weight done before it."""
    total = sum(weight for _, weight in steps) or 1.0
    done = 0.0
    for statement, weight in steps:
        progress(done / total)
        connection.exec_driver_sql(statement)
        done += weight
    progress(1.0)


def _index_steps(definitions: list[str]) -> list[tuple[str, float]]:
    return [(d, pending_indexes.BUILD_WEIGHTS.get(index_method(d), 1.0)) for d in definitions]


#: ``content='customers'`` in an FTS5 table's CREATE VIRTUAL TABLE statement.
_CONTENT = re.compile(r"""\bcontent\s*=\s*['"]?(\w+)""", re.IGNORECASE)


#: ``content_rowid='id'``: the content table's key column (its rowid when not given).
_CONTENT_ROWID = re.compile(r"""\bcontent_rowid\s*=\s*['"]?(\w+)""", re.IGNORECASE)
#: Rows of the loaded table put into a search index per statement after a bulk load: progress
#: and cancel between batches. As quick as one 'rebuild' (1M customers: 16.8-21.0 s in
#: batches of 50,000-100,000 against 17.6-21.8 s).
SEARCH_FILL_BATCH = 100_000
#: Beyond this many batches (keys spread far apart) one 'rebuild' does it instead.
_MAX_FILL_STATEMENTS = 1000


def _sqlite_search_indexes(connection: Connection, table: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the external-content FTS5 tables that index ``table``."""
    virtual = connection.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
        "AND sql LIKE 'CREATE VIRTUAL TABLE%' AND lower(sql) LIKE '%using fts5%'"
    ).all()
    found = []
    for name, sql in virtual:
        content = _CONTENT.search(sql)
        if content is not None and content.group(1) == table:
            found.append((str(name), str(sql)))
    return found


def _search_fill_steps(
    connection: Connection, table: str, search: str, definition: str
) -> list[tuple[str, float]]:
    """Statements that index every row of ``table`` in the FTS5 table ``search`` afresh: empty
    it, then fill it a range of keys at a time; their weights add up to one rebuild's."""
    key_match = _CONTENT_ROWID.search(definition)
    key = key_match.group(1) if key_match else "rowid"
    columns = ", ".join(
        f'"{row[1]}"' for row in connection.exec_driver_sql(f'PRAGMA table_info("{search}")')
    )
    low, high = connection.exec_driver_sql(
        f'SELECT min("{key}"), max("{key}") FROM "{table}"'
    ).one()
    steps = [(f'INSERT INTO "{search}" ("{search}") VALUES (\'delete-all\')', 0.0)]
    if low is None:
        return steps
    starts = range(int(low), int(high) + 1, SEARCH_FILL_BATCH)
    if len(starts) > _MAX_FILL_STATEMENTS:  # keys far apart: one pass, without progress
        return [
            (f'INSERT INTO "{search}" ("{search}") VALUES (\'rebuild\')', _SEARCH_REBUILD_WEIGHT)
        ]
    weight = _SEARCH_REBUILD_WEIGHT / len(starts)
    for start in starts:
        steps.append(
            (
                f'INSERT INTO "{search}" (rowid, {columns}) SELECT "{key}", {columns} '
                f'FROM "{table}" WHERE "{key}" BETWEEN {start} AND {start + SEARCH_FILL_BATCH - 1}',
                weight,
            )
        )
    return steps


@contextmanager
def _sqlite(connection: Connection, table: str, progress: Progress) -> Iterator[None]:
    indexes = connection.execute(
        text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :table "
            "AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'"
        ),
        {"table": table},
    ).all()
    searches = _sqlite_search_indexes(connection, table)
    triggers = [
        (name, sql)
        for name, sql in connection.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
            {"t": table},
        ).all()
        if any(re.search(rf"\b{re.escape(search)}\b", sql) for search, _ in searches)
    ]
    for name, _ in indexes:
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    for name, _ in triggers:
        connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
    # Let SQLite sort for CREATE INDEX on more than one core.
    connection.exec_driver_sql(f"PRAGMA threads = {min(os.cpu_count() or 1, 4)}")
    try:
        yield
        steps = _index_steps([sql for _, sql in indexes])
        for search, definition in searches:
            steps += _search_fill_steps(connection, table, search, definition)
        steps += [(sql, 0.0) for _, sql in triggers]
        _recreate(connection, steps, progress)
    finally:
        connection.exec_driver_sql("PRAGMA threads = 0")


@contextmanager
def _postgres(connection: Connection, table: str, wait_ms: int) -> Iterator[bool]:
    if not owns_table(connection, table) or not _lock_exclusively(connection, table, wait_ms):
        yield False
        return
    indexes = connection.execute(
        text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = CAST(:table AS regclass) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) "
            "ORDER BY c.relname"
        ),
        {"table": table},
    ).all()
    quote = connection.dialect.identifier_preparer.quote
    for name, _ in indexes:
        connection.exec_driver_sql(f"DROP INDEX {quote(name)}")
    yield True
    pending_indexes.defer(connection, table, [(name, sql) for name, sql in indexes])


def _lock_exclusively(connection: Connection, table: str, wait_ms: int) -> bool:
    """Take ACCESS EXCLUSIVE on ``table`` unless other sessions hold it past ``wait_ms``."""
    savepoint = connection.begin_nested()
    try:
        lock_table(connection, table, "ACCESS EXCLUSIVE", wait_ms)
    except OperationalError as exc:
        if not timed_out(exc):
            raise
        savepoint.rollback()
        log.info("bulk load with the indexes in place: %s is busy (%s)", table, exc.orig)
        return False
    savepoint.commit()  # a released savepoint keeps its locks
    return True
