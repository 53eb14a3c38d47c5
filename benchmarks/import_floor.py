"""Benchmark the floor under a first import: the database's own work, with no CSV to read at all.

A first import of N customers must, whatever reads the file, have the database store N rows
(with the keys that ``ON CONFLICT`` and the foreign keys need), build the secondary indexes that
serve the table's sorts, filters and search, and commit. This times exactly that, fed from rows
already in memory or already in the database's own COPY format, on scratch copies of a
``customers`` table that is already loaded (import first, e.g. with
benchmarks/import_customers.py). The sum is the fastest any first import can be on this machine
and this schema, even if reading and validating the CSV took no time.

PostgreSQL: COPY (text format, from a file written by ``COPY ... TO STDOUT``) into a bare table
with ``attributes`` as text, into one with ``attributes`` as jsonb, and into one that also has
the primary key and the unique external id; then the 13 secondary indexes built in two sessions
at once (as ``churndesk.db.pending_indexes`` does) and ``VACUUM ANALYZE``. SQLite: one
``executemany`` of the rows into a fresh file with the same table, the secondary indexes, the
trigram search index, and the commit with its checkpoint. The scratch tables and file are
removed afterwards. Last line: JSON.

    python benchmarks/import_floor.py --database /tmp/bench.sqlite3
    python benchmarks/import_floor.py \\
        --database postgresql://churndesk_test@127.0.0.1:5432/churndesk_bench
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from churndesk.config import sqlite_url
from churndesk.db.connect import open_database
from churndesk.db.pending_indexes import BUILD_WEIGHTS, PG_BUILD_MEMORY, index_method

#: What a first import writes; id, version and the timestamps come from the defaults.
COLUMNS = (
    "external_id, name, email, segment, plan, country, signup_date, monthly_revenue, status, "
    "churned_at, owner, attributes"
)
SECONDARY = (
    "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
    "JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE i.indrelid = CAST('customers' AS regclass) "
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
)
SCRATCH = ("floor_bare", "floor_typed", "floor_keyed")
#: Targets of issue 3 for a first import of 1,000,000 customers.
TARGETS = {"postgresql": 20.0, "sqlite": 10.0}


def timed(step: Callable[[], Any]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


# --- PostgreSQL ------------------------------------------------------------------------------


def _raw(engine: Engine) -> Any:
    connection = engine.raw_connection()
    connection.driver_connection.autocommit = True  # type: ignore[union-attr]
    return connection


def _copy_in(engine: Engine, table: str, path: Path) -> float:
    """COPY the file into ``table`` in one transaction, as an import does; seconds."""
    connection = engine.raw_connection()
    try:
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,  # type: ignore[attr-defined]
            cursor.copy(f"COPY {table} ({COLUMNS}) FROM STDIN") as copy,
            path.open("rb") as source,
        ):
            while block := source.read(1 << 20):
                copy.write(block)
        connection.commit()
        return time.perf_counter() - started
    finally:
        connection.close()


def _build_all(engine: Engine, definitions: list[str], sessions: int) -> float:
    """Build the indexes, ``sessions`` at a time, biggest kind first; wall seconds."""
    queue = sorted(definitions, key=lambda d: -BUILD_WEIGHTS.get(index_method(d), 1.0))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def builder() -> None:
        connection = _raw(engine)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SET maintenance_work_mem = '{PG_BUILD_MEMORY}'")
                while True:
                    with lock:
                        if not queue:
                            return
                        definition = queue.pop(0)
                    cursor.execute(definition)
        except BaseException as exc:  # reported by the caller
            failures.append(exc)
        finally:
            connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=builder) for _ in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return time.perf_counter() - started


def postgres_floor(engine: Engine, folder: Path) -> dict[str, float]:
    dump = folder / "customers.copy"
    admin = _raw(engine)
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM customers")
            customers = int(cursor.fetchone()[0])
            with cursor.copy(f"COPY customers ({COLUMNS}) TO STDOUT") as copy, dump.open("wb") as f:
                for block in copy:
                    f.write(block)
            cursor.execute(SECONDARY)
            definitions = [str(d) for _, d in cursor.fetchall()]
            cursor.execute("DROP SEQUENCE IF EXISTS floor_ids CASCADE")
            cursor.execute("CREATE SEQUENCE floor_ids")
            for table in SCRATCH:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
                constraints = " INCLUDING CONSTRAINTS" if table == "floor_keyed" else ""
                cursor.execute(
                    f"CREATE TABLE {table} (LIKE customers INCLUDING DEFAULTS{constraints})"
                )
                cursor.execute(f"ALTER TABLE {table} ALTER id SET DEFAULT nextval('floor_ids')")
            cursor.execute("ALTER TABLE floor_bare ALTER attributes TYPE text")
            cursor.execute("ALTER TABLE floor_keyed ADD PRIMARY KEY (id)")
            cursor.execute("ALTER TABLE floor_keyed ADD UNIQUE (external_id)")
        figures: dict[str, float] = {"customers": customers}
        figures["copy_text_s"] = _copy_in(engine, "floor_bare", dump)
        figures["copy_jsonb_s"] = _copy_in(engine, "floor_typed", dump)
        figures["copy_keyed_s"] = _copy_in(engine, "floor_keyed", dump)
        renamed = [
            d.replace(" ON public.customers ", " ON public.floor_keyed ").replace(
                "INDEX ix_customers_", "INDEX floor_ix_", 1
            )
            for d in definitions
        ]
        figures["indexes"] = len(renamed)
        figures["builds_1_session_s"] = _build_all(engine, renamed, 1)
        with admin.cursor() as cursor:
            for definition in renamed:
                cursor.execute(f"DROP INDEX {definition.split()[2]}")
        figures["builds_2_sessions_s"] = _build_all(engine, renamed, 2)
        with admin.cursor() as cursor:
            figures["vacuum_analyze_s"] = timed(
                lambda: cursor.execute("VACUUM ANALYZE floor_keyed")
            )
        figures["floor_s"] = (
            figures["copy_keyed_s"] + figures["builds_2_sessions_s"] + figures["vacuum_analyze_s"]
        )
        return figures
    finally:
        with admin.cursor() as cursor:
            for table in SCRATCH:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute("DROP SEQUENCE IF EXISTS floor_ids")
        admin.close()


# --- SQLite ----------------------------------------------------------------------------------


def sqlite_floor(path: str, folder: Path) -> dict[str, float]:
    source = sqlite3.connect(path)
    try:
        table_sql, *_ = source.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'customers'"
        ).fetchone()
        indexes = [
            str(sql)
            for (sql,) in source.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'customers' "
                "AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'"
            )
        ]
        (search_sql,) = source.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'customer_search'"
        ).fetchone()
        rows = source.execute("SELECT * FROM customers").fetchall()
    finally:
        source.close()
    scratch = folder / "floor.sqlite3"
    target = sqlite3.connect(scratch, isolation_level=None)
    try:
        # As churndesk's engine and the import set it up.
        target.execute("PRAGMA journal_mode = WAL")
        target.execute("PRAGMA synchronous = NORMAL")
        target.execute("PRAGMA foreign_keys = ON")
        target.execute("PRAGMA cache_size = -262144")
        target.execute(table_sql)
        target.execute(search_sql)
        figures: dict[str, float] = {"customers": len(rows)}
        target.execute("BEGIN")
        marks = ", ".join("?" * len(rows[0]))
        figures["insert_s"] = timed(
            lambda: target.executemany(f"INSERT INTO customers VALUES ({marks})", rows)
        )
        target.execute(f"PRAGMA threads = {min(os.cpu_count() or 1, 4)}")
        figures["indexes"] = len(indexes)
        figures["btrees_s"] = sum(timed(lambda sql=sql: target.execute(sql)) for sql in indexes)
        rebuild = "INSERT INTO customer_search (customer_search) VALUES ('rebuild')"
        figures["search_index_s"] = timed(lambda: target.execute(rebuild))
        figures["commit_s"] = timed(lambda: target.execute("COMMIT"))
        figures["floor_s"] = (
            figures["insert_s"]
            + figures["btrees_s"]
            + figures["search_index_s"]
            + figures["commit_s"]
        )
        return figures
    finally:
        target.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="SQLite file or PostgreSQL URL")
    args = parser.parse_args()
    url = args.database if "://" in args.database else sqlite_url(args.database)
    dialect = make_url(url).get_backend_name()
    with tempfile.TemporaryDirectory(prefix="churndesk-floor-") as folder:
        if dialect == "postgresql":
            database = open_database(url)
            try:
                figures = postgres_floor(database.engine, Path(folder))
            finally:
                database.engine.dispose()
        else:
            figures = sqlite_floor(str(make_url(url).database), Path(folder))
    for key, value in figures.items():
        print(f"{key}: {value:,.2f}" if isinstance(value, float) else f"{key}: {value:,}")
    target = TARGETS[dialect] * figures["customers"] / 1_000_000
    print(
        f"floor {figures['floor_s']:.1f} s for {figures['customers']:,} customers "
        f"against a target of {target:.1f} s: {figures['floor_s'] / target:.2f}x the target"
    )
    print(
        json.dumps(
            {
                "benchmark": "import_floor",
                "database": dialect,
                **{k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()},
                "target_s": round(target, 2),
                "floor_over_target": round(figures["floor_s"] / target, 2),
                "cpus": os.cpu_count(),
                "load_average_at_end": round(os.getloadavg()[0], 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
