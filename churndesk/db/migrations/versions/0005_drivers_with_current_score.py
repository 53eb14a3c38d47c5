"""The drivers move from every history row to the current score.

A run appends one history row per customer; with its drivers (a JSON array of about 300 bytes)
each row was about 460 bytes, so a daily run of a million customers wrote some 1.3 GB of WAL on
PostgreSQL, and the history grew by half a gigabyte a day. Only the drivers of the latest score
are ever shown, so they are kept with it, in ``customer_scores``, and a run rewrites them only
for the customers whose score moved. Each customer's latest drivers are carried over.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("customer_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("drivers", JSON, server_default="[]", nullable=False))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE customer_scores cs SET drivers = latest.drivers FROM ("
            "SELECT DISTINCT ON (customer_id) customer_id, drivers FROM risk_scores "
            "ORDER BY customer_id, scored_at DESC, id DESC) latest "
            "WHERE latest.customer_id = cs.customer_id"
        )
    else:
        # One index lookup per customer on (customer_id, scored_at).
        op.execute(
            "UPDATE customer_scores SET drivers = COALESCE((SELECT r.drivers FROM risk_scores r "
            "WHERE r.customer_id = customer_scores.customer_id "
            "ORDER BY r.scored_at DESC, r.id DESC LIMIT 1), '[]')"
        )
    with op.batch_alter_table("risk_scores", schema=None) as batch_op:
        batch_op.drop_column("drivers")


def downgrade() -> None:
    # Older history rows get an empty list: their drivers were not kept.
    with op.batch_alter_table("risk_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("drivers", JSON, server_default="[]", nullable=False))
    op.execute(
        "UPDATE risk_scores SET drivers = (SELECT cs.drivers FROM customer_scores cs "
        "WHERE cs.customer_id = risk_scores.customer_id) "
        "WHERE id IN (SELECT max(id) FROM risk_scores GROUP BY customer_id)"
    )
    with op.batch_alter_table("customer_scores", schema=None) as batch_op:
        batch_op.drop_column("drivers")
