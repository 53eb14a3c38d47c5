"""The PostgreSQL test server: required in CI, skipped with a visible reason elsewhere when down."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("CHURNDESK_TEST_PG_URL", DEFAULT_ADMIN_URL)


def required() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes") or bool(
        os.environ.get("CHURNDESK_REQUIRE_PG")
    )


_available: bool | str | None = None


def ensure_available() -> None:
    """Skip (or, in CI, fail) when the test server cannot be reached."""
    global _available
    if _available is None:
        try:
            with psycopg.connect(admin_url(), connect_timeout=5, autocommit=True) as conn:
                conn.execute("SELECT 1")
            _available = True
        except psycopg.Error as exc:
            _available = f"PostgreSQL test server {admin_url()} unreachable: {exc}".strip()
    if _available is not True:
        if required():
            pytest.fail(f"{_available} (PostgreSQL tests are required in CI)")
        pytest.skip(str(_available))


def sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


def database_dsn(name: str) -> str:
    base = psycopg.conninfo.conninfo_to_dict(admin_url())
    base["dbname"] = name
    user = base.get("user", "")
    host = base.get("host", "127.0.0.1")
    port = base.get("port", 5432)
    password = base.get("password")
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    return f"postgresql://{auth}{host}:{port}/{name}"


@contextmanager
def scratch_database(template: str | None = None) -> Iterator[str]:
    """Create a uniquely named database (optionally from a template), drop it afterwards."""
    ensure_available()
    name = f"churndesk_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        conn.execute(query)
    try:
        yield name
    finally:
        with psycopg.connect(admin_url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def leave_indexes_pending(engine: Engine, names: list[str]) -> dict[str, str]:
    """Drop these customer indexes and list them to be built, as an import killed after its
    commit leaves them; returns every customer index's definition from before."""
    from churndesk.db import pending_indexes

    with engine.begin() as connection:
        definitions = {
            str(n): str(d)
            for n, d in connection.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'customers'"
            ).all()
        }
        for name in names:
            connection.exec_driver_sql(f"DROP INDEX {name}")
        pending_indexes.defer(connection, "customers", [(n, definitions[n]) for n in names])
    return definitions
