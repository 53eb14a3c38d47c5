"""Engine and session factories, and the unit of work services run in; nothing connects at import.

SQLite gets WAL (readers never wait for the writer), foreign keys and a busy timeout.
PostgreSQL goes through psycopg 3 with ``pool_pre_ping`` so a dropped connection is replaced
instead of surfacing as an error on the next query.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from churndesk.errors import DatabaseUnavailable

SQLITE_BUSY_TIMEOUT_MS = 30_000

#: Execution option for a transaction that will write. SQLite then starts it with BEGIN
#: IMMEDIATE: the write lock is taken (or waited for, up to the busy timeout) before anything is
#: read. A deferred transaction that reads first and writes later gets "database is locked" at
#: once, without waiting, when another connection writes in between; and preparing any statement
#: on ``customers`` reads the FTS5 search table behind its triggers, so even a transaction whose
#: first statement writes there counts as one that read first. PostgreSQL ignores the option.
WRITE = {"churndesk_write": True}


def parse_url(url: str) -> URL:
    """Parse and normalise a database URL (a bare file path means SQLite), or explain why not."""
    if "://" not in url and url.strip():
        from pathlib import Path

        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(
            f"'{url}' is not a database URL. Use a file path, sqlite:///PATH or "
            "postgresql://USER@HOST/DATABASE.",
            details=str(exc),
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        # psycopg 3 is the one driver we ship; "postgresql://" alone would ask for psycopg2.
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    raise DatabaseUnavailable(
        f"churndesk works with SQLite and PostgreSQL, not '{backend}'.",
        details=str(url),
    )


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """Create an engine with churndesk's connection settings; does not connect."""
    parsed = parse_url(str(url) if isinstance(url, str) else url.render_as_string(False))
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **kwargs)
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5}
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("connect_timeout", 10)
    connect_args.setdefault("application_name", "churndesk")
    # JIT compiling a query costs 5-50 ms before it runs; it pays off for analytical queries of
    # many seconds, while every query here is either interactive or a bulk statement bound by
    # writes. A session can still turn it on (SET jit = on).
    if "options" not in connect_args:
        given = parsed.query.get("options")
        given = given if isinstance(given, str) else " ".join(given or ())
        connect_args["options"] = f"{given} -c jit=off".strip()
    options.update(kwargs)
    return create_engine(parsed, connect_args=connect_args, **options)


def _sqlite_engine(url: URL, **kwargs: Any) -> Engine:
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    # Services hand sessions to worker threads; each session still uses one connection at a time.
    connect_args.setdefault("check_same_thread", False)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy issue BEGIN itself so transactions are real (pysqlite's legacy
        # implicit-transaction mode would defer BEGIN and break SAVEPOINT and locking).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if url.database and url.database != ":memory:":
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get("churndesk_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: services return plain data after commit, never lazy loads.
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction commits when the block ends, and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


BUSY_MESSAGE = (
    "The database is busy with another change (an import or a scoring run, here or on another "
    "desktop) that has taken more than {seconds:g} seconds. Nothing was saved; try again when "
    "it has finished."
)


@contextmanager
def busy_explained() -> Iterator[None]:
    """Turn SQLite's "database is locked" (the busy timeout ran out) into a message for humans.

    The transaction has been rolled back by then, so nothing was half-written.
    """
    try:
        yield
    except OperationalError as exc:
        if isinstance(exc.orig, sqlite3.OperationalError) and "locked" in str(exc.orig):
            message = BUSY_MESSAGE.format(seconds=SQLITE_BUSY_TIMEOUT_MS / 1000)
            raise DatabaseUnavailable(message, details=str(exc)) from exc
        raise


@contextmanager
def write_unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """``unit_of_work`` for a transaction that writes: SQLite takes its write lock at the start."""
    with busy_explained(), factory() as session, session.begin():
        session.connection(execution_options=WRITE)
        yield session


@contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """``engine.begin()`` for a transaction that writes: SQLite takes its write lock at the start.

    Use it for every service transaction that writes unless it must not hold the lock while it
    works (an import staging a million rows); those call ``take_write_lock`` before their first
    read of the main database instead. A lock that stays busy past the busy timeout raises
    DatabaseUnavailable with ``BUSY_MESSAGE``.
    """
    with busy_explained(), engine.execution_options(**WRITE).begin() as connection:
        yield connection


def take_write_lock(connection: Connection) -> None:
    """On SQLite, take the write lock now, waiting for another writer up to the busy timeout.

    Only in a transaction that has not read the main database yet (temporary tables are fine):
    after a read, SQLite refuses to wait. The statement writes nothing, and its table has no
    virtual-table triggers, whose preparation would count as a read (see ``WRITE``).
    """
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("DELETE FROM alembic_version WHERE 0")
