"""Imports that bring mostly new customers rebuild the customer indexes instead of updating them."""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from churndesk.db import bulk_indexes, pending_indexes
from churndesk.db.engine import make_engine
from churndesk.db.queries.customers import CustomerQuery
from churndesk.errors import Cancelled
from churndesk.services import import_writes, importing
from churndesk.services.customer_views import load_view
from churndesk.services.importing import import_customers

#: A login without ownership of the tables (made by .ci/pg-setup.sh).
ANALYST = "churndesk_analyst"
HEADER = ["external_id", "name", "email", "plan", "monthly_revenue"]


@pytest.fixture
def rebuilds(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Small imports count as bulk; each entry says whether an import rebuilt the indexes."""
    monkeypatch.setattr(import_writes, "BULK_LOAD_MIN_ROWS", 100)
    seen: list[bool] = []
    real = import_writes.indexes_rebuilt

    @contextmanager
    def spy(connection: object, table: str, **options: Any) -> Iterator[bool]:
        with real(connection, table, **options) as rebuilt:  # type: ignore[arg-type]
            seen.append(rebuilt)
            yield rebuilt

    monkeypatch.setattr(import_writes, "indexes_rebuilt", spy)
    return seen


def customers_csv(path: Path, ids: range, plan: str = "Basic") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in ids:
            writer.writerow([f"c{i}", f"Name {i}", f"n{i}@example.com", plan, f"{i % 90}.50"])
    return path


def index_definitions(engine: Engine) -> dict[str, tuple[int, str]]:
    """Index name -> (identity, definition); the identity changes when an index is rebuilt.

    On SQLite the triggers that keep the search index current count as indexes too."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = connection.exec_driver_sql(
                "SELECT c.relname, c.oid, pg_get_indexdef(c.oid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = CAST('customers' AS regclass)"
            ).all()
        else:
            rows = connection.exec_driver_sql(
                "SELECT name, rootpage, sql FROM sqlite_master "
                "WHERE type IN ('index', 'trigger') AND tbl_name = 'customers'"
            ).all()
    return {name: (int(identity), str(sql)) for name, identity, sql in rows}


def scalar(engine: Engine, sql: str) -> object:
    with engine.connect() as connection:
        return connection.execute(text(sql)).scalar()


def test_a_first_import_rebuilds_the_indexes_and_keeps_them_identical(
    engine: Engine, tmp_path: Path, rebuilds: list[bool]
) -> None:
    before = index_definitions(engine)
    messages: list[str] = []
    result = import_customers(
        engine,
        customers_csv(tmp_path / "a.csv", range(300)),
        progress=lambda fraction, message: messages.append(message),
    )
    assert result.inserted == 300
    assert result.warnings == ()
    assert rebuilds == [True]
    # The analyst sees the rebuild as its own step, after saving: before committing on SQLite,
    # after it on PostgreSQL (built two at a time once other sessions can see the rows).
    steps = [m.split()[0] for m in messages]
    rebuilt_after_commit = engine.dialect.name == "postgresql"
    assert steps.index("Saving") < steps.index("Rebuilding")
    assert (steps.index("Rebuilding") > steps.index("Committing")) == rebuilt_after_commit
    assert pending_indexes.pending(engine) == []
    after = index_definitions(engine)
    assert {n: d for n, (_, d) in after.items()} == {n: d for n, (_, d) in before.items()}
    if engine.dialect.name == "postgresql":
        # Secondary indexes are new objects; the constraint indexes were never dropped.
        changed = {n for n in after if after[n][0] != before[n][0]}
        assert changed == {n for n in after if n.startswith("ix_customers_")}
        assert len(changed) == 13
    # The rebuilt indexes hold every row: index-served queries find them.
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT count(*) FROM customers WHERE email >= 'n' AND plan = 'Basic'")
        ).scalar()
    assert found == 300


def test_imports_that_bring_few_new_customers_keep_the_indexes(
    engine: Engine, tmp_path: Path, rebuilds: list[bool]
) -> None:
    import_customers(engine, customers_csv(tmp_path / "a.csv", range(300)))
    assert rebuilds == [True]
    # The same file again (a daily export that changed little): nothing new to insert.
    messages: list[str] = []
    again = import_customers(
        engine,
        customers_csv(tmp_path / "b.csv", range(300), "Plus"),
        progress=lambda fraction, message: messages.append(message),
    )
    assert not [m for m in messages if m.startswith("Rebuilding")]
    assert again.updated == 300
    # 200 new customers, fewer than the 300 the table holds.
    more = import_customers(engine, customers_csv(tmp_path / "c.csv", range(100, 500)))
    assert (more.inserted, more.updated) == (200, 200)
    assert rebuilds == [True]  # neither import went the bulk way
    # Under the minimum nothing is even counted.
    small = import_customers(engine, customers_csv(tmp_path / "d.csv", range(1000, 1050)))
    assert small.inserted == 50
    assert rebuilds == [True]
    assert scalar(engine, "SELECT count(*) FROM customers WHERE plan = 'Plus'") == 100


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgres_a_busy_table_is_loaded_with_the_indexes_in_place(
    engine: Engine, tmp_path: Path, rebuilds: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another desktop reading in a long transaction: waiting for it would stop every other
    desktop's reads behind the import's lock request, so the import gives up after a moment."""
    monkeypatch.setattr(import_writes, "BULK_LOCK_WAIT_MS", 200)
    before = index_definitions(engine)
    outcome: list[object] = []
    with engine.connect() as reader, reader.begin():
        assert reader.execute(text("SELECT count(*) FROM customers")).scalar() == 0
        worker = threading.Thread(
            target=lambda: outcome.append(
                import_customers(engine, customers_csv(tmp_path / "a.csv", range(300)))
            )
        )
        worker.start()
        worker.join(timeout=120)  # an import waiting for this reader would never finish
        finished = not worker.is_alive()
    worker.join()
    assert finished, "the import waited for the reader instead of writing in place"
    assert rebuilds == [False]
    assert index_definitions(engine) == before  # the very same index objects
    assert scalar(engine, "SELECT count(*) FROM customers") == 300


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgres_a_login_that_does_not_own_the_table_keeps_the_indexes(
    engine: Engine, tmp_path: Path, rebuilds: list[bool]
) -> None:
    """Analysts' logins may write customers but not drop the table's indexes."""
    role = ANALYST
    with engine.begin() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}
        ).scalar()
        if not exists:
            # .ci/pg-setup.sh creates it; a superuser test login can too.
            connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        connection.exec_driver_sql(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        connection.exec_driver_sql(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    analyst_url = make_url(engine.url).set(username=role, password=None)
    analyst = make_engine(analyst_url.render_as_string(hide_password=False))
    try:
        before = index_definitions(engine)
        result = import_customers(analyst, customers_csv(tmp_path / "a.csv", range(300)))
        assert result.inserted == 300
        assert rebuilds == [False]
        assert index_definitions(engine) == before
    finally:
        analyst.dispose()


def test_a_failure_after_the_rebuild_leaves_rows_and_indexes_as_they_were(
    engine: Engine, tmp_path: Path, rebuilds: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    import_customers(engine, customers_csv(tmp_path / "a.csv", range(100)))
    before = index_definitions(engine)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk filled up")

    monkeypatch.setattr(importing.audit, "record", broken)  # after the upsert, before COMMIT
    with pytest.raises(RuntimeError, match="disk filled"):
        import_customers(engine, customers_csv(tmp_path / "b.csv", range(100, 400)))
    assert rebuilds == [True, True]
    assert index_definitions(engine) == before
    assert scalar(engine, "SELECT count(*) FROM customers") == 100


def test_a_bulk_load_leaves_room_on_the_bar_for_writing_and_moves_it_while_rebuilding(
    engine: Engine, tmp_path: Path, rebuilds: list[bool]
) -> None:
    """At 1M rows writing and rebuilding take longer than reading: the bar must not sit at
    90 % for most of the import. It only ever moves forward."""
    seen: list[tuple[float, str]] = []
    import_customers(
        engine,
        customers_csv(tmp_path / "a.csv", range(3000)),
        chunk_size=500,
        progress=lambda fraction, message: seen.append((fraction, message)),
    )
    assert rebuilds == [True]
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions)
    read = [f for f, m in seen if m.startswith("Read")]
    assert max(read) <= 0.5  # at least half the bar is left for writing
    rebuilding = [f for f, m in seen if m.startswith("Rebuilding")]
    assert len(set(rebuilding)) >= 5  # one step per index or so, not one message
    assert max(rebuilding) - min(rebuilding) >= 0.2
    committing = [f for f, m in seen if m.startswith("Committing")]
    if engine.dialect.name == "sqlite":
        # The commit checkpoints everything the load wrote: a tenth of the time at 1M.
        assert committing == [pytest.approx(0.9)]
    else:
        # The indexes are built after the commit: 43 % of the time at 1M.
        assert committing == [pytest.approx(0.56)]
        assert min(rebuilding) >= 0.56


def test_a_daily_import_spends_most_of_the_bar_reading(
    engine: Engine, tmp_path: Path, rebuilds: list[bool]
) -> None:
    path = customers_csv(tmp_path / "a.csv", range(3000))
    import_customers(engine, path, chunk_size=500)
    seen: list[tuple[float, str]] = []
    import_customers(engine, path, chunk_size=500, progress=lambda f, m: seen.append((f, m)))
    assert rebuilds == [True]  # the second import was not a bulk load
    assert max(f for f, m in seen if m.startswith("Read")) >= 0.6
    assert [f for f, m in seen if m.startswith("Committing")] == [pytest.approx(0.99)]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cancel_while_the_indexes_are_rebuilt_leaves_everything_as_it_was(
    engine: Engine, tmp_path: Path, rebuilds: list[bool]
) -> None:
    """SQLite rebuilds before the commit (PostgreSQL after it: see test_pending_indexes)."""
    import_customers(engine, customers_csv(tmp_path / "seed.csv", range(5)))
    before_indexes = index_definitions(engine)
    cancel = threading.Event()
    rebuilding: list[float] = []

    def progress(fraction: float, message: str) -> None:
        if message.startswith("Rebuilding"):
            rebuilding.append(fraction)
            if len(rebuilding) == 3:
                cancel.set()  # some indexes rebuilt, others not yet

    with pytest.raises(Cancelled):
        import_customers(
            engine,
            customers_csv(tmp_path / "a.csv", range(100, 1100)),
            progress=progress,
            cancel=cancel,
        )
    assert len(rebuilding) == 3  # stopped at the next index, not after all of them
    assert scalar(engine, "SELECT count(*) FROM customers") == 5
    after = index_definitions(engine)
    assert {n: d for n, (_, d) in after.items()} == {n: d for n, (_, d) in before_indexes.items()}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_writes_in_batches_that_report_progress_and_can_be_cancelled(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_writes, "SQLITE_UPSERT_BATCH", 100)
    path = customers_csv(tmp_path / "a.csv", range(350))
    cancel = threading.Event()
    saved: list[str] = []

    def progress(fraction: float, message: str) -> None:
        if message.startswith("Saving customers:"):
            saved.append(message)
            if len(saved) == 2:
                cancel.set()

    with pytest.raises(Cancelled):
        import_customers(engine, path, progress=progress, cancel=cancel)
    assert saved == ["Saving customers: 100 of 350", "Saving customers: 200 of 350"]
    assert scalar(engine, "SELECT count(*) FROM customers") == 0
    saved.clear()
    result = import_customers(engine, path, progress=lambda f, m: saved.append(m))
    assert result.inserted == 350
    assert [m for m in saved if m.startswith("Saving customers:")][-1] == (
        "Saving customers: 350 of 350"
    )
    assert scalar(engine, "SELECT count(*) FROM customers WHERE plan = 'Basic'") == 350


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_rebuilds_the_search_index_after_a_bulk_load(
    engine: Engine, tmp_path: Path, rebuilds: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its triggers feed FTS5 one row at a time (53 s per million rows): a bulk load goes
    without them and rebuilds the search index from the table once, new and changed names
    included."""
    statements: list[str] = []
    real = bulk_indexes._recreate

    def spy(connection: Any, steps: list[tuple[str, float]], progress: Any) -> None:
        statements.extend(statement for statement, _ in steps)
        real(connection, steps, progress)

    monkeypatch.setattr(bulk_indexes, "_recreate", spy)
    monkeypatch.setattr(bulk_indexes, "SEARCH_FILL_BATCH", 100)
    import_customers(engine, customers_csv(tmp_path / "a.csv", range(100)))
    triggers = {n: d for n, (_, d) in index_definitions(engine).items() if "search" in n}
    assert len(triggers) == 3
    path = tmp_path / "b.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(300):
            name = f"Renamed Quokka {i}" if i < 50 else f"Name {i}"
            writer.writerow([f"c{i}", name, f"n{i}@example.com", "Basic", "1.50"])
    assert import_customers(engine, path).inserted == 200
    assert rebuilds == [True, True]
    # Emptied, then filled 100 customers at a time (300 after the second import): the bar
    # moves and a cancel is seen between batches.
    fills = [s for s in statements if s.startswith('INSERT INTO "customer_search" (rowid')]
    assert len(fills) == 1 + 3
    assert fills[-1].endswith('WHERE "id" BETWEEN 201 AND 300')
    assert (
        statements.count(
            'INSERT INTO "customer_search" ("customer_search") VALUES (\'delete-all\')'
        )
        == 2
    )
    # The search finds the renamed and the new customers, and no longer the old names.
    assert len(load_view(engine, CustomerQuery(search="quokka"))) == 50
    assert len(load_view(engine, CustomerQuery(search="Name 25"))) == 10  # 250-259
    assert len(load_view(engine, CustomerQuery(search="Name 3"))) == 0  # 3, 30-39 renamed
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO customer_search (customer_search, rank) VALUES ('integrity-check', 1)"
        )
    # The triggers are back as they were and keep the index current again.
    assert {n: d for n, (_, d) in index_definitions(engine).items() if "search" in n} == triggers
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE customers SET name = 'Wombat' WHERE external_id = 'c7'")
    assert len(load_view(engine, CustomerQuery(search="wombat"))) == 1


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_search_index_of_keys_far_apart_is_rebuilt_in_one_pass(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO customers (id, external_id, name, status, attributes, version) "
            "VALUES (1, 'a', 'Ada', 'active', '{}', 1), "
            "(1000000000000, 'b', 'Bob', 'active', '{}', 1)"
        )
        steps = bulk_indexes._search_fill_steps(
            connection,
            "customers",
            "customer_search",
            "CREATE VIRTUAL TABLE customer_search USING fts5(name, email, external_id, "
            "content='customers', content_rowid='id', tokenize='trigram')",
        )
    assert [s for s, _ in steps] == [
        'INSERT INTO "customer_search" ("customer_search") VALUES (\'rebuild\')'
    ]
