"""Benchmark the CSV import: N synthetic customers into an emptied database, against pandas.

    python benchmarks/import_customers.py --customers 1000000 --database URL

Generates the CSV with ``synthetic.write_csv`` (fixed seed) in a temporary folder, empties the
customer table (a SQLite file is recreated), imports it with ``import_customers`` and then, on
the same file, times the naive alternative: ``pandas.read_csv`` + ``DataFrame.to_sql`` into a
scratch table. The last line printed is JSON with the figures.

Phases are split at the import's "Saving" and "Committing" progress messages. On PostgreSQL
chunks are upserted while the next ones are read, so there "read+validate+stage" includes most
of the upsert, and "upsert" is the wait for the last chunk plus any index rebuild.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from churndesk.config import sqlite_url  # noqa: E402
from churndesk.db.connect import open_database  # noqa: E402
from churndesk.services import synthetic  # noqa: E402
from churndesk.services.importing import import_customers  # noqa: E402

PANDAS_TABLE = "bench_pandas_customers"


def _empty(url: str) -> str:
    """Return the URL of an empty, migrated database at ``url``."""
    if "://" not in url:
        url = sqlite_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
    database = open_database(url)
    try:
        with database.engine.begin() as connection:
            if database.dialect == "postgresql":
                connection.exec_driver_sql("TRUNCATE customers CASCADE")
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {PANDAS_TABLE}")
        if database.dialect == "postgresql":
            with database.engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "VACUUM ANALYZE customers"
                )
    finally:
        database.engine.dispose()
    return url


def _pandas_to_sql(url: str, path: Path) -> float:
    database = open_database(url)
    try:
        started = time.perf_counter()
        frame = pd.read_csv(path)
        frame.to_sql(PANDAS_TABLE, database.engine, index=False, chunksize=10_000)
        seconds = time.perf_counter() - started
        with database.engine.begin() as connection:
            connection.execute(text(f"DROP TABLE {PANDAS_TABLE}"))
        return seconds
    finally:
        database.engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--database", required=True, help="SQLite file or PostgreSQL URL")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-pandas", action="store_true", help="skip the to_sql baseline")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="churndesk-bench-") as folder:
        csv_path = Path(folder) / "customers.csv"
        started = time.perf_counter()
        synthetic.write_csv(csv_path, args.customers, args.seed)
        generate_s = time.perf_counter() - started
        size_mb = csv_path.stat().st_size / 1e6
        print(f"generated {args.customers:,} customers ({size_mb:,.0f} MB) in {generate_s:.1f} s")

        url = _empty(args.database)
        database = open_database(url)
        marks: dict[str, float] = {}
        try:

            def progress(fraction: float, message: str) -> None:
                if message.startswith("Saving"):
                    marks["read_and_staged"] = time.perf_counter()
                elif message.startswith("Committing"):
                    marks["upserted"] = time.perf_counter()
                elif "upserted" in marks and "committed" not in marks:
                    # PostgreSQL builds the dropped indexes after the commit.
                    marks["committed"] = time.perf_counter()

            load = os.getloadavg()[0]
            started = time.perf_counter()
            result = import_customers(database.engine, csv_path, progress=progress)
            import_s = time.perf_counter() - started
        finally:
            database.engine.dispose()
        read_s = marks.get("read_and_staged", started) - started
        upsert_s = marks.get("upserted", started) - marks.get("read_and_staged", started)
        after_s = started + import_s - marks["committed"] if "committed" in marks else 0.0
        commit_s = import_s - read_s - upsert_s - after_s
        print(
            f"import: {result.inserted:,} inserted, {result.rejected:,} rejected in "
            f"{import_s:.1f} s ({args.customers / import_s:,.0f} rows/s); read+validate+stage "
            f"{read_s:.1f} s, upsert {upsert_s:.1f} s, commit {commit_s:.1f} s, "
            f"after the commit (index builds, statistics) {after_s:.1f} s"
        )
        pandas_s = None if args.skip_pandas else _pandas_to_sql(url, csv_path)
        if pandas_s is not None:
            print(f"pandas read_csv + to_sql: {pandas_s:.1f} s")

    figures = {
        "benchmark": "import_customers",
        "database": database.dialect,
        "customers": args.customers,
        "csv_mb": round(size_mb, 1),
        "import_s": round(import_s, 2),
        "rows_per_s": round(args.customers / import_s),
        "read_validate_stage_s": round(read_s, 2),
        "upsert_s": round(upsert_s, 2),
        "commit_s": round(commit_s, 2),
        "after_commit_s": round(after_s, 2),
        "pandas_to_sql_s": None if pandas_s is None else round(pandas_s, 2),
        "speedup_vs_pandas": None if pandas_s is None else round(pandas_s / import_s, 2),
        "inserted": result.inserted,
        "rejected": result.rejected,
        "load_average_at_start": round(load, 2),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
