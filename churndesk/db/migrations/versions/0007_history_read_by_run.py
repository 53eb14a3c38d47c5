"""The score history is indexed by run only; it stops checking its customer row by row.

Each run appended a million entries all over the ``(customer_id, scored_at)`` index (hundreds
of megabytes, larger than PostgreSQL's buffers), and checked the customer of every row with a
trigger: most of a daily run's 45 s history append on a slow machine. The covering
``(run_id, customer_id, …)`` index grows at its end instead. A customer's history is now read
one run at a time from that index (one probe per run, runs are few), and deleting a customer
deletes its history in the same transaction (the customer service does, see
``services.customers.delete_customer``), which is what the cascading foreign key did.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 17:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEX = "ix_risk_scores_customer_id_scored_at"
FOREIGN_KEY = "fk_risk_scores_customer_id_customers"


def upgrade() -> None:
    with op.batch_alter_table("risk_scores", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.drop_constraint(FOREIGN_KEY, type_="foreignkey")


def downgrade() -> None:
    # The service keeps the history free of deleted customers; rows a crash could have left
    # would make the restored constraint fail, and belong to nobody.
    op.execute(
        "DELETE FROM risk_scores WHERE NOT EXISTS "
        "(SELECT 1 FROM customers c WHERE c.id = risk_scores.customer_id)"
    )
    with op.batch_alter_table("risk_scores", schema=None) as batch_op:
        batch_op.create_foreign_key(
            FOREIGN_KEY, "customers", ["customer_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index(INDEX, ["customer_id", "scored_at"], unique=False)
