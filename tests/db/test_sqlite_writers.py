"""SQLite writers wait for one another instead of failing with "database is locked".

A deferred SQLite transaction that has read anything gets SQLITE_BUSY at once, without waiting,
when it then wants to write while another connection holds the write lock. Preparing a write to
``customers`` reads the FTS5 search table behind its triggers, so before the fix a customer edit
or an import racing any other writer failed about one time in six (and every time when the other
writer already held the lock). Here another connection holds the lock while the service call
starts; the call must wait for it and then succeed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from churndesk.db.engine import begin_write, make_engine
from churndesk.db.models import Customer, Setting
from churndesk.services.customers import create_customer, delete_customer, update_customer
from churndesk.services.importing import import_customers

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

#: How long a call that fails at once is given to do so. A correct call is not timed at all: it
#: waits for the lock until the holder commits, whatever this is.
FAIL_FAST_WINDOW_S = 0.5


@pytest.fixture
def holder(engine: Engine) -> Iterator[sqlite3.Connection]:
    """A second connection to the same file, as another desktop or job would have."""
    database = engine.url.database
    assert database
    connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    try:
        yield connection
    finally:
        connection.close()


def call_while_locked(
    engine: Engine,
    holder: sqlite3.Connection,
    call: Callable[[], Any],
    blocks_on: Callable[[str], bool],
    *,
    table: str | None = "settings",
) -> Any:
    """Run ``call`` on a thread while ``holder`` has the write lock; release it once the call
    reached the statement ``blocks_on`` picks (and failed at once, or is waiting)."""
    engine.dispose()  # fresh connections, as two desktops or a new job have
    reached = threading.Event()
    outcome: dict[str, Any] = {}
    caller: threading.Thread

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread() is caller and blocks_on(statement):
            reached.set()

    def run() -> None:
        try:
            outcome["result"] = call()
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    event.listen(engine, "before_cursor_execute", on_statement)
    holder.execute("BEGIN IMMEDIATE")
    if table:  # a write of its own, as another desktop's would be
        holder.execute(f"INSERT OR REPLACE INTO {table} (key, value) VALUES ('holder', '1')")
    caller = threading.Thread(target=run)
    try:
        caller.start()
        assert reached.wait(30), "the call never reached the statement that needs the lock"
        caller.join(FAIL_FAST_WINDOW_S)
    finally:
        holder.execute("COMMIT")
        caller.join()
        event.remove(engine, "before_cursor_execute", on_statement)
    assert "error" not in outcome, f"the call failed instead of waiting: {outcome['error']!r}"
    return outcome["result"]


def begins(statement: str) -> bool:
    return statement.startswith("BEGIN IMMEDIATE")


def new_customer(engine: Engine) -> Any:
    return create_customer(engine, {"external_id": "c-1", "name": "Ada"})


def test_editing_a_customer_waits_for_another_writer(
    engine: Engine, holder: sqlite3.Connection
) -> None:
    record = new_customer(engine)
    saved = call_while_locked(
        engine,
        holder,
        lambda: update_customer(engine, record.id, {"plan": "Gold"}, expected_version=1),
        begins,
    )
    assert saved.plan == "Gold" and saved.version == 2


def test_creating_and_deleting_wait_for_another_writer(
    engine: Engine, holder: sqlite3.Connection
) -> None:
    created = call_while_locked(
        engine,
        holder,
        lambda: create_customer(engine, {"external_id": "c-9", "name": "Grace"}),
        begins,
    )
    call_while_locked(
        engine, holder, lambda: delete_customer(engine, created.id, expected_version=1), begins
    )
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Customer)) == 0


def test_an_import_waits_for_another_writer_only_when_it_saves(
    engine: Engine, holder: sqlite3.Connection, tmp_path: Path
) -> None:
    source = tmp_path / "customers.csv"
    source.write_text("customerID,MonthlyCharges\nx-1,10\nx-2,20\n", encoding="utf-8")
    result = call_while_locked(
        engine,
        holder,
        lambda: import_customers(engine, source),
        # Staging goes to a temporary table and takes no lock; only saving does.
        lambda statement: "alembic_version" in statement,
    )
    assert (result.inserted, result.rejected) == (2, 0)


def test_a_write_transaction_that_reads_first_still_waits(
    engine: Engine, holder: sqlite3.Connection
) -> None:
    def read_then_write() -> int:
        with begin_write(engine) as connection:
            count = int(connection.scalar(select(func.count()).select_from(Setting)) or 0)
            connection.execute(Setting.__table__.insert().values(key="mine", value=count))
        return count

    # It read after the holder committed: its transaction began only once the lock was free.
    assert call_while_locked(engine, holder, read_then_write, begins) == 1
    with engine.connect() as connection:
        keys = set(connection.scalars(select(Setting.key)))
    assert keys == {"holder", "mine"}


def test_opening_a_new_file_waits_for_a_desktop_that_is_upgrading_it(empty_db_url: str) -> None:
    """Two desktops opening one new file: the second upgrade waits, then finds nothing to do."""
    from churndesk.db import migrate
    from churndesk.db.schema_version import HEAD_REVISION

    engine = make_engine(empty_db_url)
    database = engine.url.database
    assert database
    other = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    other.execute("PRAGMA journal_mode = WAL")  # as the other desktop's connection set it
    try:
        call_while_locked(
            engine,
            other,
            lambda: migrate.upgrade(engine),
            lambda statement: statement.startswith("BEGIN"),
            table=None,
        )
        assert migrate.current_revision(engine) == HEAD_REVISION
    finally:
        other.close()
        engine.dispose()


def test_a_writer_kept_waiting_too_long_gets_a_message_and_saves_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from churndesk.db import engine as engine_module
    from churndesk.errors import DatabaseUnavailable

    monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_MS", 200)
    engine = make_engine(db_url)
    record = new_customer(engine)
    database = engine.url.database
    assert database
    other = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")  # a long import on another desktop, say
        with pytest.raises(DatabaseUnavailable, match="busy with another change") as info:
            update_customer(engine, record.id, {"plan": "Gold"}, expected_version=1)
        assert "Nothing was saved" in info.value.user_message
        other.execute("ROLLBACK")
        with engine.connect() as connection:
            plan, version = connection.execute(
                select(Customer.plan, Customer.version).where(Customer.id == record.id)
            ).one()
        assert (plan, version) == (None, 1)
    finally:
        other.close()
        engine.dispose()
