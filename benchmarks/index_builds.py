"""Benchmark building the customer indexes after a bulk load: one session against several.

Runs on a PostgreSQL database that already holds customers (import them first, e.g. with
benchmarks/import_customers.py). For each session count it drops the secondary indexes of
``customers`` and lists them in ``pending_indexes``, as a first import does, then times
``pending_indexes.build_pending``. The indexes are all back afterwards. Last line: JSON.

    python benchmarks/index_builds.py \\
        --database postgresql://churndesk_test@127.0.0.1:5432/churndesk_bench --sessions 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from sqlalchemy import Engine, text

from churndesk.db import pending_indexes
from churndesk.db.connect import open_database

SECONDARY = (
    "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
    "JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE i.indrelid = CAST('customers' AS regclass) "
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
)


def drop_and_list(engine: Engine) -> int:
    with engine.begin() as connection:
        indexes = [(str(n), str(d)) for n, d in connection.execute(text(SECONDARY)).all()]
        for name, _ in indexes:
            connection.exec_driver_sql(f'DROP INDEX "{name}"')
        pending_indexes.defer(connection, "customers", indexes)
    return len(indexes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="PostgreSQL URL")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    database = open_database(args.database)
    engine = database.engine
    if engine.dialect.name != "postgresql":
        parser.error("this benchmark needs PostgreSQL (SQLite rebuilds inside the load)")
    try:
        with engine.connect() as connection:
            customers = int(
                connection.exec_driver_sql("SELECT count(*) FROM customers").scalar_one()
            )
        pending_indexes.build_pending(engine)  # anything left from an earlier run
        seconds: dict[int, list[float]] = {}
        for sessions in args.sessions:
            count = drop_and_list(engine)
            started = time.perf_counter()
            built = pending_indexes.build_pending(engine, sessions=sessions)
            took = time.perf_counter() - started
            seconds.setdefault(sessions, []).append(took)
            assert built == count, (built, count)
            print(
                f"{count} indexes of {customers:,} customers, {sessions} session(s): {took:.1f} s"
            )
    finally:
        engine.dispose()
    # Repeated session counts (--sessions 1 2 1 2) alternate runs; each counts by its best.
    best = {k: min(v) for k, v in seconds.items()}
    baseline = best.get(1)
    figures = {
        "benchmark": "index_builds",
        "customers": customers,
        "indexes": count,
        "seconds_by_sessions": {str(k): [round(x, 2) for x in v] for k, v in seconds.items()},
        "speedup_vs_one_session": {
            str(k): round(baseline / v, 2) for k, v in best.items() if baseline
        },
        "cpus": os.cpu_count(),
        "load_average_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
