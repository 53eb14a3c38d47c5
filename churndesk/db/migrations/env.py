"""Alembic environment: runs migrations on the connection churndesk hands it."""

from __future__ import annotations

from alembic import context

from churndesk.db.migrate import include_object
from churndesk.db.models import Base


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
