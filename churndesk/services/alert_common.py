"""Helpers shared by the alert and notification services: UTC time, upserts, shared settings."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import Connection, Table, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from churndesk.db.models import Setting


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """An aware UTC datetime; SQLite hands timestamps back naive (they are stored as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def const(value: str) -> ColumnElement[Any]:
    """A SQL string literal for one of our own constants (never user input).

    Inlined rather than bound so PostgreSQL can match partial-index predicates such as
    ``status <> 'resolved'`` at plan time.
    """
    assert "'" not in value
    return literal_column(f"'{value}'")


def upsert(connection: Connection, table: Table) -> Any:
    """An INSERT with ``on_conflict_do_*`` for the connection's dialect."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def short_hash(text: str, length: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def read_setting(connection: Connection, key: str, default: Any = None) -> Any:
    value = connection.scalar(select(Setting.value).where(Setting.key == key))
    return default if value is None else value


def write_setting(connection: Connection, key: str, value: Any, *, actor: str | None) -> None:
    """Insert or replace one shared setting; does not commit."""
    table = Setting.__table__
    statement = upsert(connection, table).values(key=key, value=value, updated_by=actor)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={"value": statement.excluded.value, "updated_by": actor, "updated_at": utcnow()},
    )
    connection.execute(statement)
