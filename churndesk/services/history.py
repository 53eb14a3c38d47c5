"""One customer's score history: read run by run, deleted together with the customer.

The history (``risk_scores``) has one index, by run (migration 0007): each scoring run appends
a million rows at the end of it instead of scattering them through an index by customer. A
customer's rows are therefore found with one index probe per run (and one for the rows of
rescores after edits, which have no run). Without a foreign key, the customer service deletes
the history with the customer, and a scoring run on PostgreSQL holds ``HISTORY_LOCK_KEY`` while
it appends, so a customer deleted meanwhile cannot leave rows behind.
"""

from __future__ import annotations

from sqlalchemy import Connection, Select, delete, select, union_all

from churndesk.db.models import ModelVersion, RiskScore, ScoringRun

# pg_advisory_xact_lock key ("chn_hist"): exclusive while a run appends, shared while a customer
# and its history are deleted.
HISTORY_LOCK_KEY = 0x63686E5F68697374

_COLUMNS = (
    RiskScore.id,
    RiskScore.scored_at,
    RiskScore.score,
    RiskScore.band,
    RiskScore.model_version_id,
    RiskScore.revenue_at_risk,
)


def _by_run(customer_id: int) -> list[Select]:
    """The customer's rows from runs, and from rescores (no run), each served by the run index."""
    runs = select(ScoringRun.id).scalar_subquery()
    return [
        select(*_COLUMNS).where(RiskScore.run_id.in_(runs), RiskScore.customer_id == customer_id),
        select(*_COLUMNS).where(RiskScore.run_id.is_(None), RiskScore.customer_id == customer_id),
    ]


def history_statement(customer_id: int, limit: int) -> Select:
    """The latest ``limit`` history rows with their model's name and version, newest first."""
    rows = union_all(*_by_run(customer_id)).subquery("h")
    return (
        select(
            rows.c.scored_at,
            rows.c.score,
            rows.c.band,
            rows.c.model_version_id,
            ModelVersion.name,
            ModelVersion.version,
            rows.c.revenue_at_risk,
        )
        .join(ModelVersion, ModelVersion.id == rows.c.model_version_id)
        .order_by(rows.c.scored_at.desc(), rows.c.id.desc())
        .limit(limit)
    )


def lock_for_append(connection: Connection) -> None:
    """Hold off customer deletions until this transaction ends (SQLite has a single writer)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({HISTORY_LOCK_KEY})")


def delete_history(connection: Connection, customer_id: int) -> None:
    """Delete the customer's history rows, in the caller's transaction.

    Call ``lock_for_delete`` first, before the customer's row is locked.
    """
    runs = select(ScoringRun.id).scalar_subquery()
    for condition in (RiskScore.run_id.in_(runs), RiskScore.run_id.is_(None)):
        connection.execute(delete(RiskScore).where(condition, RiskScore.customer_id == customer_id))


def lock_for_delete(connection: Connection) -> None:
    """Wait for a scoring run that is appending history; taken before any row lock."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({HISTORY_LOCK_KEY})")
