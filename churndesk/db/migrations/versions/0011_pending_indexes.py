"""Indexes a bulk load dropped and builds after its commit, recorded until they are built.

A first import of a million customers into PostgreSQL spent about 40 s rebuilding its 13
secondary indexes one after the other inside its transaction, while every other desktop waited
for the table. Built after the commit by two sessions at once they take about 26 s, and other
desktops read meanwhile. The load writes each dropped index's definition here in its own
transaction, and each build deletes its row in the transaction that creates the index, so a
crash at any moment leaves every index either built or listed here for the next builder
(:mod:`churndesk.db.pending_indexes`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 08:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    timestamp = sa.DateTime(timezone=True)
    op.create_table(
        "pending_indexes",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("table_name", sa.String(63), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("created_at", timestamp, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pending_indexes")),
    )


def downgrade() -> None:
    op.drop_table("pending_indexes")
