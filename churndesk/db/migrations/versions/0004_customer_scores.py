"""Current scores move out of ``customers`` into a narrow ``customer_scores`` table.

A scoring run rewrote the score, band and revenue at risk of every customer whose values moved:
for a new model or a first run, all of them. Those columns are indexed (the table sorts by
them), so PostgreSQL wrote a whole new version of each wide customer row into all 17 indexes of
``customers``, the three trigram indexes included: 120 of the 154 s of a first run of a
million customers. In their own table a run writes rows of five numbers into four indexes, and
the customer rows (and their search indexes) stay as they are.

On SQLite, dropping columns that CHECK constraints name means rebuilding ``customers``: the
search triggers of migration 0002 go with the old table and are made again (the FTS index
itself is keyed by the customer id, which the rebuild keeps). ``churndesk.db.migrate`` runs
migrations with foreign-key enforcement off on SQLite, so dropping the old table does not
cascade into the tables that reference customers, and checks the keys before committing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 14:00:00
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCORE_COLUMNS = ("risk_score", "risk_score_prev", "risk_band", "revenue_at_risk", "scored_at")
SORTED_COLUMNS = ("risk_score", "risk_band", "revenue_at_risk")
_search = importlib.import_module("churndesk.db.migrations.versions.0002_sqlite_customer_search")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _drop_search_triggers() -> None:
    for name in _search.TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def _create_search_triggers() -> None:
    for name, body in _search.TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def upgrade() -> None:
    op.create_table(
        "customer_scores",
        sa.Column(
            "customer_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("risk_score", sa.Float(), nullable=False),
        sa.Column("risk_score_prev", sa.Float(), nullable=True),
        sa.Column("risk_band", sa.String(length=16), nullable=False),
        sa.Column("revenue_at_risk", sa.Float(), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "risk_band IN ('low', 'medium', 'high', 'critical')",
            name=op.f("ck_customer_scores_risk_band"),
        ),
        sa.CheckConstraint(
            "risk_score >= 0 AND risk_score <= 100", name=op.f("ck_customer_scores_risk_score")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_scores_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_scores")),
    )
    op.execute(
        "INSERT INTO customer_scores (customer_id, risk_score, risk_score_prev, risk_band, "
        "revenue_at_risk, scored_at) SELECT id, risk_score, risk_score_prev, risk_band, "
        "revenue_at_risk, COALESCE(scored_at, updated_at) FROM customers "
        "WHERE risk_score IS NOT NULL AND risk_band IS NOT NULL"
    )
    with op.batch_alter_table("customer_scores", schema=None) as batch_op:
        for column in SORTED_COLUMNS:
            batch_op.create_index(
                batch_op.f(f"ix_customer_scores_{column}_customer_id"),
                [column, "customer_id"],
                unique=False,
            )

    if _sqlite():
        _drop_search_triggers()
    with op.batch_alter_table("customers", schema=None) as batch_op:
        for column in SORTED_COLUMNS:
            batch_op.drop_index(batch_op.f(f"ix_customers_{column}_id"))
        batch_op.drop_constraint(batch_op.f("ck_customers_risk_score"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_customers_risk_band"), type_="check")
        for column in SCORE_COLUMNS:
            batch_op.drop_column(column)
    if _sqlite():
        _create_search_triggers()
    # The rebuilt customers table lost its statistics, and the new one has none: without them
    # SQLite serves "active customers by risk" from the status index and sorts (see
    # churndesk.db.maintenance).
    op.execute("ANALYZE customers")
    op.execute("ANALYZE customer_scores")


def downgrade() -> None:
    if _sqlite():
        _drop_search_triggers()
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("risk_score", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("risk_score_prev", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("risk_band", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("revenue_at_risk", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(
            batch_op.f("ck_customers_risk_band"),
            "risk_band IS NULL OR risk_band IN ('low', 'medium', 'high', 'critical')",
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_customers_risk_score"),
            "risk_score IS NULL OR (risk_score >= 0 AND risk_score <= 100)",
        )
    if _sqlite():
        _create_search_triggers()
    # One join (UPDATE ... FROM, SQLite 3.33+), not a subquery per column and customer.
    assignments = ", ".join(f"{column} = s.{column}" for column in SCORE_COLUMNS)
    op.execute(
        f"UPDATE customers SET {assignments} FROM customer_scores s "
        "WHERE s.customer_id = customers.id"
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        for column in SORTED_COLUMNS:
            batch_op.create_index(
                batch_op.f(f"ix_customers_{column}_id"), [column, "id"], unique=False
            )
    op.drop_table("customer_scores")
