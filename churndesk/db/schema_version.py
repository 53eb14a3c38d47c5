"""The schema revision this churndesk expects, readable without importing Alembic.

Opening a database at the current revision (the common case) then costs one small query
instead of Alembic's import (about 0.3 s of a 1.5 s start-up budget). A test keeps
HEAD_REVISION equal to the newest migration.
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

HEAD_REVISION = "0011"


def read_revision(engine: Engine) -> str | None:
    """The database's Alembic revision, or None for a database without churndesk's schema."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
