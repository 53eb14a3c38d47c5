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

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from churndesk.errors import DatabaseUnavailable

SQLITE_BUSY_TIMEOUT_MS = 30_000


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
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

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
