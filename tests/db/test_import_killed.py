"""A killed import process leaves the database exactly as it was (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from churndesk.db.engine import make_engine
from churndesk.db.models import AuditEntry, Customer
from churndesk.services.importing import import_customers
from tests.conftest import REPO

# The child stops inside the import's transaction, after every row was written to customers and
# just before COMMIT, tells the parent through its stdout, and waits to be killed.
CHILD = """
import sys
from churndesk.db.engine import make_engine
from churndesk.services import import_writes
from churndesk.services.importing import import_customers

import_writes.BULK_LOAD_MIN_ROWS = 1  # die after dropping and rebuilding the indexes

def progress(fraction, message):
    if message.startswith("Committing"):
        print("IN-TRANSACTION", flush=True)
        sys.stdin.read()  # blocks until the parent kills us

engine = make_engine(sys.argv[1])
import_customers(engine, sys.argv[2], chunk_size=500, progress=progress)
print("COMMITTED", flush=True)
"""


def state(url: str) -> tuple[list[tuple[object, ...]], int]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Customer.__table__).order_by(Customer.id)).all()
            audits = connection.scalar(select(func.count()).select_from(AuditEntry))
        return [tuple(r) for r in rows], int(audits or 0)
    finally:
        engine.dispose()


def customers_csv(path: Path, count: int, name: str, plan: str) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "name", "plan"])
        writer.writerows([f"c{i}", f"{name} {i}", plan] for i in range(count))
    return path


def kill_inside_the_transaction(db_url: str, path: Path) -> None:
    """Run the CHILD import of ``path`` and SIGKILL it just before its COMMIT."""
    kill_child_at(CHILD, "IN-TRANSACTION", db_url, path)


def kill_child_at(code: str, marker: str, db_url: str, path: Path) -> None:
    """Run ``code`` with arguments ``db_url`` and ``path``; SIGKILL it once it prints ``marker``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, "-c", code, db_url, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    ) as child:
        try:
            assert child.stdout is not None and child.stderr is not None
            line = child.stdout.readline()
            if line.strip() != marker:
                child.wait(timeout=60)
                raise AssertionError(line + child.stderr.read())
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert child.returncode == -signal.SIGKILL


def test_sigkilled_import_leaves_database_unchanged(db_url: str, tmp_path: Path) -> None:
    seed = tmp_path / "seed.csv"
    customers_csv(seed, 100, "Before", "Basic")
    engine = make_engine(db_url)
    try:
        import_customers(engine, seed)
    finally:
        engine.dispose()
    before = state(db_url)

    update = customers_csv(tmp_path / "update.csv", 3000, "After", "Premium")

    kill_inside_the_transaction(db_url, update)
    assert state(db_url) == before

    # The database is not left locked or half-written: the same import now goes through.
    engine = make_engine(db_url)
    try:
        result = import_customers(engine, update)
        assert (result.inserted, result.updated) == (2900, 100)
    finally:
        engine.dispose()


def test_sigkilled_first_import_leaves_the_table_empty(db_url: str, tmp_path: Path) -> None:
    """A first import into an empty table (on PostgreSQL copied straight into customers)."""
    before = state(db_url)
    path = customers_csv(tmp_path / "first.csv", 3000, "Name", "Basic")
    kill_inside_the_transaction(db_url, path)
    assert state(db_url) == before == ([], 0)
    engine = make_engine(db_url)
    try:
        assert import_customers(engine, path).inserted == 3000
    finally:
        engine.dispose()
