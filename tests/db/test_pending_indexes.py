"""PostgreSQL bulk loads build the customer indexes after their commit, and nothing is lost if
that is interrupted: every index is either built or listed in pending_indexes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from churndesk.db import pending_indexes
from churndesk.db.engine import make_engine
from churndesk.errors import ChurndeskError
from churndesk.services import import_writes
from churndesk.services.importing import import_customers
from churndesk.services.indexes import finish_indexes
from tests import pg
from tests.db.test_import_bulk import ANALYST, customers_csv, index_definitions, scalar
from tests.db.test_import_killed import kill_child_at

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("backend", ["postgresql"])]

# The child imports; once two indexes are built after the commit it says so on stdout and
# waits to be killed.
CHILD = """
import functools, sys, threading
from churndesk.db import pending_indexes
from churndesk.db.engine import make_engine
from churndesk.services import import_writes
from churndesk.services.importing import import_customers

import_writes.BULK_LOAD_MIN_ROWS = 1
# One builder session, which stops before claiming its third index (two are committed).
pending_indexes.build_pending = functools.partial(pending_indexes.build_pending, sessions=1)
real = pending_indexes._claim
claims = []

def claim(connection, tables):
    claims.append(1)
    if len(claims) == 3:
        print("BUILDING", flush=True)
        threading.Event().wait()  # blocks until the parent kills us
    return real(connection, tables)

pending_indexes._claim = claim
engine = make_engine(sys.argv[1])
import_customers(engine, sys.argv[2], chunk_size=500)
print("FINISHED", flush=True)
"""


@pytest.fixture
def bulk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_writes, "BULK_LOAD_MIN_ROWS", 100)


def pending_names(engine: Engine) -> set[str]:
    return {p.name for p in pending_indexes.pending(engine)}


def drop_and_list(engine: Engine, names: list[str]) -> None:
    pg.leave_indexes_pending(engine, names)


def definitions_only(engine: Engine) -> dict[str, str]:
    return {name: sql for name, (_, sql) in index_definitions(engine).items()}


def test_a_cancel_after_the_commit_does_not_undo_the_import(
    engine: Engine, tmp_path: Path, bulk: None
) -> None:
    before = definitions_only(engine)
    cancel = threading.Event()

    def progress(fraction: float, message: str) -> None:
        if message.startswith("Rebuilding"):
            cancel.set()

    result = import_customers(
        engine, customers_csv(tmp_path / "a.csv", range(300)), progress=progress, cancel=cancel
    )
    assert cancel.is_set()
    assert result.committed and result.inserted == 300
    assert definitions_only(engine) == before
    assert pending_names(engine) == set()


def test_an_index_that_cannot_be_built_stays_listed_and_is_built_next_time(
    engine: Engine, tmp_path: Path, bulk: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = definitions_only(engine)
    real = pending_indexes._build

    def build(connection: Connection, index: pending_indexes.PendingIndex) -> None:
        if index.name == "ix_customers_name_trgm":  # as the server would refuse it
            broken = index.definition.replace("(name gin_trgm_ops)", "(no_such_column)")
            index = pending_indexes.PendingIndex(index.name, index.table, broken)
        real(connection, index)

    monkeypatch.setattr(pending_indexes, "_build", build)
    result = import_customers(engine, customers_csv(tmp_path / "a.csv", range(300)))
    # The import is saved; the analyst is told what is missing and that it will be rebuilt.
    assert result.committed and result.inserted == 300
    assert scalar(engine, "SELECT count(*) FROM customers") == 300
    assert len(result.warnings) == 1
    assert "ix_customers_name_trgm" in result.warnings[0]
    assert "tried again the next time" in result.warnings[0]
    missing = set(before) - set(definitions_only(engine))
    assert missing <= pending_names(engine)
    assert "ix_customers_name_trgm" in missing

    monkeypatch.setattr(pending_indexes, "_build", real)
    assert finish_indexes(engine) == ()
    assert definitions_only(engine) == before
    assert pending_names(engine) == set()


def test_a_build_error_names_the_index_in_words(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop_and_list(engine, ["ix_customers_plan_id"])
    with engine.begin() as connection:  # a definition the server refuses
        connection.exec_driver_sql(
            "UPDATE pending_indexes SET definition = 'CREATE INDEX ix_customers_plan_id "
            "ON public.customers USING btree (no_such_column)'"
        )
    with pytest.raises(ChurndeskError, match=r"ix_customers_plan_id.*next time"):
        pending_indexes.build_pending(engine)
    assert pending_names(engine) == {"ix_customers_plan_id"}


def test_builders_in_two_processes_share_the_work(engine: Engine) -> None:
    before = definitions_only(engine)
    names = sorted(n for n in before if n.startswith("ix_customers_"))
    drop_and_list(engine, names)
    other = make_engine(engine.url.render_as_string(hide_password=False))
    built: list[int] = []
    errors: list[BaseException] = []

    def run(target: Engine) -> None:
        try:
            built.append(pending_indexes.build_pending(target))
        except BaseException as exc:  # an index built twice would fail with "already exists"
            errors.append(exc)

    try:
        threads = [threading.Thread(target=run, args=(e,)) for e in (engine, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other.dispose()
    assert errors == []
    assert sum(built) == len(names) == 13
    assert definitions_only(engine) == before
    assert pending_names(engine) == set()


def test_progress_counts_the_big_indexes_more(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pending_indexes, "PROGRESS_POLL_SECONDS", 60.0)  # completions only
    drop_and_list(engine, ["ix_customers_email_trgm", "ix_customers_plan_id"])
    seen: list[float] = []
    assert pending_indexes.build_pending(engine, sessions=1, progress=lambda f, m: seen.append(f))
    # The GIN index (weight 4) is built first: 4/5 of the work, then the B-tree.
    assert seen == [0.0, pytest.approx(0.8), pytest.approx(1.0)]


def test_only_the_owner_builds(engine: Engine) -> None:
    drop_and_list(engine, ["ix_customers_plan_id"])
    with engine.begin() as connection:
        if not connection.execute(
            text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": ANALYST}
        ).scalar():
            connection.exec_driver_sql(f"CREATE ROLE {ANALYST} LOGIN")
        connection.exec_driver_sql(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {ANALYST}")
    url = make_url(engine.url).set(username=ANALYST, password=None)
    analyst = make_engine(url.render_as_string(hide_password=False))
    try:
        assert pending_indexes.build_pending(analyst) == 0
    finally:
        analyst.dispose()
    assert pending_names(engine) == {"ix_customers_plan_id"}
    assert pending_indexes.build_pending(engine) == 1
    assert pending_names(engine) == set()


def test_a_process_killed_while_building_leaves_the_rest_listed(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    before = definitions_only(engine)
    path = customers_csv(tmp_path / "a.csv", range(3000))
    kill_child_at(CHILD, "BUILDING", db_url, path)
    # The import was committed before the builds: every row is there.
    assert scalar(engine, "SELECT count(*) FROM customers") == 3000
    assert scalar(engine, "SELECT count(*) FROM audit_log WHERE action = 'import'") == 1
    # Two indexes were built; each of the other eleven is listed, none lost.
    now = definitions_only(engine)
    missing = set(before) - set(now)
    assert len(missing) == 11
    assert pending_names(engine) == missing
    assert all(now[name] == before[name] for name in now)
    # The next builder (the next import or the desktop at start) finishes the job.
    assert finish_indexes(engine) == ()
    assert definitions_only(engine) == before
    assert pending_names(engine) == set()


def test_the_bar_moves_during_a_build_by_the_servers_progress(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trigram index of a million e-mail addresses takes 10 s: the bar follows the server's
    pg_stat_progress_create_index meanwhile, and only ever moves forward."""
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO customers (external_id, name, email, status, attributes, version) "
            "SELECT 'c' || i, 'Customer ' || md5(i::text), md5(i::text) || '@example.com', "
            "'active', '{}', 1 FROM generate_series(1, 50000) AS i"
        )
    drop_and_list(engine, sorted(n for n in definitions_only(engine) if "_trgm" in n))
    monkeypatch.setattr(pending_indexes, "PROGRESS_POLL_SECONDS", 0.002)
    shares: list[float] = []
    real = pending_indexes.build_share

    def spy(*args: Any) -> float:
        shares.append(real(*args))
        return shares[-1]

    monkeypatch.setattr(pending_indexes, "build_share", spy)
    seen: list[float] = []
    assert pending_indexes.build_pending(engine, progress=lambda f, m: seen.append(f)) == 3
    assert shares, "the server's progress was never read"
    assert all(0.0 <= share < 1.0 for share in shares)
    assert seen == sorted(seen)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert all(f < 1.0 for f in seen[:-1])


def test_the_next_import_finishes_what_an_earlier_one_left(engine: Engine, tmp_path: Path) -> None:
    """A daily import, no bulk load of its own, builds the leftovers; its bar never goes back."""
    import_customers(engine, customers_csv(tmp_path / "seed.csv", range(50)))
    before = definitions_only(engine)
    drop_and_list(engine, ["ix_customers_name_trgm", "ix_customers_plan_id"])
    seen: list[tuple[float, str]] = []
    result = import_customers(
        engine,
        customers_csv(tmp_path / "daily.csv", range(60)),
        progress=lambda f, m: seen.append((f, m)),
    )
    assert (result.inserted, result.warnings) == (10, ())
    assert definitions_only(engine) == before
    assert pending_names(engine) == set()
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions)
    assert any(m.startswith("Rebuilding") for _, m in seen)
