"""Alembic environment: runs migrations on the connection churndesk hands it."""

from __future__ import annotations

from typing import Any

from alembic import context

from churndesk.db.models import Base

# Indexes that exist only on PostgreSQL (pg_trgm); autogenerate must not try to drop them.
POSTGRES_ONLY_INDEX_SUFFIX = "_trgm"


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    return not (type_ == "index" and name and name.endswith(POSTGRES_ONLY_INDEX_SUFFIX))


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("churndesk runs migrations through churndesk.db.migrate only")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=include_object,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
