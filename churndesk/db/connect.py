"""Open a database for use: check the connection, translate failures into plain words, upgrade.

Every entry point (the GUI's open dialog, each command-line command, the worker) goes through
:func:`open_database`, so a wrong URL, a server that is down and a wrong password read the same
everywhere, and a database is always at the current schema before a service touches it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError

from churndesk import secrets
from churndesk.db.engine import make_engine, parse_url
from churndesk.db.schema_version import HEAD_REVISION, read_revision
from churndesk.errors import DatabaseUnavailable
from churndesk.progress import ProgressFn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Database:
    """An opened, up-to-date database."""

    engine: Engine
    url: str
    display_name: str
    upgraded_from: str | None
    backup_path: Path | None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def display_name(url: URL) -> str:
    """A URL for people: no password, and a SQLite file shown as its path."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True).replace("postgresql+psycopg", "postgresql")


def open_database(
    url: str,
    *,
    upgrade: bool = True,
    backup: bool = True,
    password: str | None = None,
    progress: ProgressFn | None = None,
) -> Database:
    """Connect, check and (if needed) upgrade the schema of the database at ``url``.

    Raises DatabaseUnavailable for anything that stops the connection and SchemaError when the
    database belongs to a newer churndesk. Commits the upgrade, if any.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_path(parsed)
    elif parsed.password is None:
        password = password or secrets.get_database_password(parsed)
        if password:
            parsed = parsed.set(password=password)
    engine = make_engine(parsed)
    try:
        check_connection(engine)
        upgraded_from = None
        backup_path = None
        if upgrade and read_revision(engine) != HEAD_REVISION:
            from churndesk.db import migrate  # Alembic is imported only when there is work

            upgraded_from, backup_path = migrate.upgrade_if_needed(
                engine, backup=backup, progress=progress
            )
    except BaseException:
        engine.dispose()
        raise
    return Database(engine, url, display_name(parsed), upgraded_from, backup_path)


def _check_sqlite_path(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:":
        return
    path = Path(database)
    if path.is_dir():
        raise DatabaseUnavailable(f"{path} is a folder, not a database file.")
    if not path.parent.exists():
        raise DatabaseUnavailable(
            f"The folder {path.parent} does not exist, so the database {path.name} cannot be "
            "created there."
        )


def check_connection(engine: Engine) -> None:
    """Run a trivial query; raise DatabaseUnavailable with a message a user can act on."""
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except (OperationalError, DBAPIError) as exc:
        raise explain_connection_error(engine.url, exc) from exc


def explain_connection_error(url: URL, exc: BaseException) -> DatabaseUnavailable:
    """Turn a driver's connection error into one line for the user."""
    raw = str(getattr(exc, "orig", None) or exc)
    text = raw.lower()
    where = display_name(url)
    host = url.host or "localhost"
    port = url.port or 5432
    user = url.username or "(default user)"
    if url.get_backend_name() == "sqlite":
        if "not a database" in text:
            message = f"{where} is not a churndesk database (it is not a SQLite file)."
        elif "unable to open" in text or "readonly" in text:
            message = f"Cannot open {where}: check that the file and its folder are writable."
        elif "locked" in text:
            message = f"{where} is locked by another program; try again in a moment."
        else:
            message = f"Cannot open the database {where}."
    elif "password authentication failed" in text or "no password supplied" in text:
        message = f"The server at {host}:{port} refused the password for user {user}."
    elif "role" in text and "does not exist" in text:
        message = f"The server at {host}:{port} has no user named {user}."
    elif "database" in text and "does not exist" in text:
        message = f"The server at {host}:{port} has no database named {url.database}."
    elif "could not translate host name" in text or "name or service not known" in text:
        message = f"The server name {host} could not be found; check the address."
    elif "timeout" in text or "timed out" in text:
        message = f"The database server at {host}:{port} did not answer in time."
    elif "refused" in text or "could not connect" in text or "connection failed" in text:
        message = f"Cannot reach the database server at {host}:{port}; is it running?"
    elif "pg_hba" in text or "permission denied" in text:
        message = f"The server at {host}:{port} does not allow user {user} to connect."
    else:
        message = f"Cannot connect to the database {where}."
    log.info("connection to %s failed: %s", where, raw)
    return DatabaseUnavailable(message, details=raw)
