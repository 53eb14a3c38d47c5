"""PostgreSQL table locks that give way: who may take them, and taking one within a time limit.

A request for a strong lock queues every later reader of the table behind it, so the bulk
paths (a first import dropping indexes, a scoring run swapping in a new current-scores table)
wait only briefly for readers already there and otherwise write in place.
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

#: SQLSTATE of a lock request that ran out of ``lock_timeout``.
LOCK_NOT_AVAILABLE = "55P03"


def owns_table(connection: Connection, table: str) -> bool:
    """Whether this login may drop the table or its indexes: it owns it or is in the owner role."""
    return bool(
        connection.execute(
            text(
                "SELECT pg_has_role(relowner, 'USAGE') FROM pg_class "
                "WHERE oid = CAST(:table AS regclass)"
            ),
            {"table": table},
        ).scalar()
    )


def lock_table(connection: Connection, table: str, mode: str, wait_ms: int) -> None:
    """``LOCK TABLE table IN mode MODE``, waiting at most ``wait_ms`` for other sessions.

    Raises OperationalError (see :func:`timed_out`) when the wait runs out; the transaction is
    then aborted, so call it inside a savepoint to go on. ``table`` and ``mode`` are trusted.
    """
    set_timeout = text("SELECT set_config('lock_timeout', :v, true)")
    before = connection.execute(text("SELECT current_setting('lock_timeout')")).scalar_one()
    connection.execute(set_timeout, {"v": f"{int(wait_ms)}ms"})
    connection.exec_driver_sql(f"LOCK TABLE {table} IN {mode} MODE")
    connection.execute(set_timeout, {"v": before})


def timed_out(exc: OperationalError) -> bool:
    """Whether ``exc`` is a lock request that gave up after its time limit."""
    return getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE
