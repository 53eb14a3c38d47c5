"""Schema migrations through Alembic, driven from code: upgrade on open, backup first on SQLite."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from churndesk.db.engine import WRITE, busy_explained, is_sqlite
from churndesk.errors import SchemaError
from churndesk.progress import ProgressFn, no_progress

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Indexes that exist only on PostgreSQL (pg_trgm); autogenerate must not try to drop them.
POSTGRES_ONLY_INDEX_SUFFIX = "_trgm"
# SQLite's full-text search table (and the shadow tables FTS5 keeps for it), made by
# migration 0002 and maintained by triggers rather than by the models.
SQLITE_SEARCH_TABLE = "customer_search"


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic filter: leave out what the models do not describe (trigram indexes, FTS tables)
    and SQLite's rendering of an index with INCLUDE columns (see :func:`_sqlite_include`)."""
    if type_ == "index" and name and name.endswith(POSTGRES_ONLY_INDEX_SUFFIX):
        return False
    if type_ == "index" and not reflected and compare_to is not None:
        return not _sqlite_include(obj, compare_to)
    return not (type_ == "table" and name and name.startswith(SQLITE_SEARCH_TABLE))


def _sqlite_include(model: Any, stored: Any) -> bool:
    """Whether ``stored`` is how SQLite holds the model's index with ``postgresql_include``:
    SQLite has no INCLUDE, so the included columns follow the key as trailing key columns
    (migration 0010)."""
    included = list(model.dialect_options["postgresql"]["include"] or [])
    if not included:
        return False
    key = [column.name for column in model.columns]
    return [column.name for column in stored.columns] == key + included


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the package ships at least one migration"
    return head


def known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """One write transaction for a migration (PostgreSQL and SQLite DDL are transactional).

    On SQLite the transaction holds the write lock from its start, so a second desktop opening
    the same file meanwhile waits and then finds the schema already upgraded. Foreign keys are
    not enforced during it (SQLite's documented way to rebuild a table: dropping the old one
    would otherwise cascade into every table referencing it) and are checked before COMMIT.
    """
    with busy_explained(), engine.connect() as connection:
        raw = connection.connection.dbapi_connection if is_sqlite(engine) else None
        if raw is not None:
            # Only outside a transaction does this pragma take effect.
            raw.execute("PRAGMA foreign_keys = OFF")
        try:
            with connection.execution_options(**WRITE).begin():
                yield connection
                if raw is not None:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise SchemaError(
                            "The database upgrade would leave references to missing rows; it "
                            "was not applied.",
                            details=repr(broken[:10]),
                        )
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys = ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade to ``revision`` in one transaction (see ``_migrating``)."""
    with _migrating(engine) as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    with _migrating(engine) as connection:
        command.downgrade(alembic_config(connection), revision)


def upgrade_if_needed(
    engine: Engine, *, backup: bool = True, progress: ProgressFn | None = None
) -> tuple[str | None, Path | None]:
    """Bring the database to the head revision; touch nothing if it is already there.

    Returns the revision it was upgraded from (None if nothing was done, "" for an empty
    database) and the path of the SQLite backup taken first, if any. Raises SchemaError if the
    database was made by a newer churndesk.
    """
    report = progress or no_progress
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return None, None
    if current is not None and current not in known_revisions():
        raise SchemaError(
            "This database was created by a newer version of churndesk. Update churndesk to "
            "open it.",
            details=f"database revision {current}, newest known {head}",
        )
    backup_path = None
    if backup and current is not None and engine.dialect.name == "sqlite":
        report(0.1, "Backing up the database before upgrading it")
        backup_path = backup_sqlite(engine, current)
    report(0.3, "Upgrading the database schema")
    log.info("upgrading %s from %s to %s", engine.url, current or "empty", head)
    try:
        upgrade(engine)
    except Exception as exc:
        raise SchemaError(
            "The database could not be upgraded; it was left as it was."
            + (f" A backup is at {backup_path}." if backup_path else ""),
            details=repr(exc),
        ) from exc
    report(1.0, "Database is up to date")
    return current or "", backup_path


def backup_sqlite(engine: Engine, revision: str) -> Path | None:
    """Copy a SQLite database with the online backup API (consistent even in WAL mode)."""
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    source = Path(database)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = source.with_name(f"{source.name}.backup-{revision}-{stamp}")
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    log.info("backed up %s to %s before upgrading", source, target)
    return target
