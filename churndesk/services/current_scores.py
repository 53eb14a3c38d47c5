"""PostgreSQL: publish a run that rewrites most current scores as a new ``customer_scores`` table.

Rewriting a million rows in place cost PostgreSQL a heap tuple and four index entries each,
scattered through indexes bigger than its buffers (36.6 s for a first run at a million here).
Writing the merged scores into a fresh table in customer order and building its indexes by
sorting costs a fraction of that. Inside the run's publishing transaction:

1. lock ``customers`` against writes (SHARE ROW EXCLUSIVE: the foreign key added in step 4
   needs it; taken first, as a customer edit takes ``customers`` and then ``customer_scores``,
   so the two cannot deadlock) and ``customer_scores`` against writes (EXCLUSIVE): readers go on
   reading the old table throughout;
2. create the new table like the old one (columns, defaults, CHECK constraints) and fill it with
   every current score, the changed ones replaced exactly as the in-place UPDATE would;
3. build the old table's indexes on it under temporary names;
4. add the foreign key to ``customers`` (checked by one join, not a trigger per row);
5. drop the old table (readers wait from here to the commit, a moment) and give the new one,
   its indexes and its primary key the old names. A reader still in the old table after
   ``SWAP_WAIT_MS`` (an export reads it in one long snapshot) makes the run roll back to before
   step 1 and write in place instead.

A rollback or a killed process leaves the old table as it was: PostgreSQL DDL is transactional.
The new table gets the old one's owner and grants; a login that could not drop the old table
(``can_replace``) rewrites in place instead.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from churndesk.db.locks import lock_table, owns_table, timed_out

log = logging.getLogger(__name__)

TABLE = "customer_scores"
# How long the swap waits for readers still in the old table before writing in place instead.
SWAP_WAIT_MS = 3000
NEXT = "customer_scores_next"
COLUMNS = (
    "customer_id",
    "risk_score",
    "risk_score_prev",
    "risk_band",
    "revenue_at_risk",
    "drivers",
    "scored_at",
)


def _merged_select() -> str:
    """Every current score after the run: the staged one for customers in ``score_changes``
    (new or changed, see ``scoring._find_changes``), the current one for everyone else."""

    def pick(new: str, old: str) -> str:
        return f"CASE WHEN c.customer_id IS NOT NULL THEN {new} ELSE {old} END"

    return (
        "SELECT COALESCE(s.customer_id, cs.customer_id), "
        f"{pick('s.score', 'cs.risk_score')}, "
        f"{pick('cs.risk_score', 'cs.risk_score_prev')}, "
        f"{pick('s.band', 'cs.risk_band')}, "
        f"{pick('s.revenue_at_risk', 'cs.revenue_at_risk')}, "
        f"{pick('CAST(s.drivers AS JSON)', 'cs.drivers')}, "
        f"{pick('CAST(:now AS TIMESTAMPTZ)', 'cs.scored_at')} "
        # Customers deleted while the run computed are left out by the join, as in place.
        "FROM (SELECT s.* FROM score_stage s JOIN customers cu ON cu.id = s.customer_id) s "
        "FULL JOIN customer_scores cs ON cs.customer_id = s.customer_id "
        "LEFT JOIN score_changes c ON c.customer_id = s.customer_id "
        "ORDER BY 1"
    )


def _index_definitions(connection: Connection) -> list[tuple[str, str, bool]]:
    """(name, definition, is the primary key) of every index on the current table."""
    rows = connection.execute(
        text(
            "SELECT i.relname, pg_get_indexdef(x.indexrelid), x.indisprimary "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = CAST(:table AS regclass) ORDER BY i.relname"
        ),
        {"table": TABLE},
    ).all()
    return [(str(name), str(definition), bool(primary)) for name, definition, primary in rows]


def _foreign_keys(connection: Connection) -> list[tuple[str, str]]:
    rows = connection.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:table AS regclass) AND contype = 'f' ORDER BY conname"
        ),
        {"table": TABLE},
    ).all()
    return [(str(name), str(definition)) for name, definition in rows]


def _on_next(definition: str, name: str) -> str:
    """An index definition of the current table, for the new table under a temporary name."""
    pattern = rf"^CREATE (UNIQUE )?INDEX {re.escape(name)} ON (\S+\.)?{TABLE} "
    renamed, count = re.subn(pattern, rf"CREATE \1INDEX {name}_next ON {NEXT} ", definition)
    if count != 1:
        raise RuntimeError(f"Unexpected index definition: {definition}")
    return renamed


def can_replace(connection: Connection) -> bool:
    """Whether this login may drop the table: it owns it, or belongs to the role that does."""
    return owns_table(connection, TABLE)


def _same_owner_and_grants(connection: Connection) -> None:
    """Give the new table the old one's owner and every privilege granted on it."""
    owner = connection.execute(
        text("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = CAST(:t AS regclass)"),
        {"t": TABLE},
    ).scalar_one()
    quote = connection.dialect.identifier_preparer.quote
    connection.exec_driver_sql(f"ALTER TABLE {NEXT} OWNER TO {quote(owner)}")
    grants = connection.execute(
        text(
            "SELECT a.privilege_type, a.grantee, a.is_grantable, "
            "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END "
            "FROM pg_class c, aclexplode(c.relacl) a "
            "WHERE c.oid = CAST(:t AS regclass) AND a.grantee <> c.relowner"
        ),
        {"t": TABLE},
    ).all()
    for privilege, grantee_id, grantable, grantee in grants:
        to = "PUBLIC" if grantee_id == 0 else quote(grantee)
        option = " WITH GRANT OPTION" if grantable else ""
        connection.exec_driver_sql(f"GRANT {privilege} ON {NEXT} TO {to}{option}")


def replace(connection: Connection, now: Any) -> bool:
    """Publish the staged scores as a new current-scores table (see the module docstring).

    Call only when ``can_replace``. Returns False, having changed nothing, when a reader keeps
    the old table for longer than ``SWAP_WAIT_MS`` (a long export reads it in one snapshot):
    waiting for it would stop every other reader for as long. The caller then writes in place.
    """
    savepoint = connection.begin_nested()
    try:
        _build_and_swap(connection, now)
    except OperationalError as exc:
        if not timed_out(exc):
            raise
        savepoint.rollback()  # the locks taken since are released with it
        log.info("current scores rewritten in place: the table was busy (%s)", exc.orig)
        return False
    savepoint.commit()
    return True


def _build_and_swap(connection: Connection, now: Any) -> None:
    execute = connection.exec_driver_sql
    execute("LOCK TABLE customers IN SHARE ROW EXCLUSIVE MODE")
    execute(f"LOCK TABLE {TABLE} IN EXCLUSIVE MODE")
    indexes = _index_definitions(connection)
    foreign_keys = _foreign_keys(connection)
    execute(f"CREATE TABLE {NEXT} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    _same_owner_and_grants(connection)
    connection.execute(
        text(f"INSERT INTO {NEXT} ({', '.join(COLUMNS)}) {_merged_select()}"),
        {"now": now},
    )
    for name, definition, _primary in indexes:
        execute(_on_next(definition, name))
    for name, definition in foreign_keys:
        execute(f"ALTER TABLE {NEXT} ADD CONSTRAINT {name} {definition}")
    # Readers queue behind this lock request until COMMIT: wait for the current ones only briefly.
    lock_table(connection, TABLE, "ACCESS EXCLUSIVE", SWAP_WAIT_MS)
    execute(f"DROP TABLE {TABLE}")
    execute(f"ALTER TABLE {NEXT} RENAME TO {TABLE}")
    for name, _definition, primary in indexes:
        if primary:
            key = f"PRIMARY KEY USING INDEX {name}_next"
            execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} {key}")
        else:
            execute(f"ALTER INDEX {name}_next RENAME TO {name}")
