"""The score history stops checking its run and model references row by row.

PostgreSQL checks a foreign key with a trigger per inserted row. Appending a run of a million
history rows spent about 18 of its 80 s (measured with EXPLAIN ANALYZE on a slow machine) in
the checks against ``scoring_runs`` and ``model_versions``: the same single row, a million
times. churndesk never deletes runs or model versions, and the history is written only by the
scoring service from the run and model it holds, so those two constraints guarded nothing. The
reference to the customer stays: deleting a customer still removes their history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 15:15:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("risk_scores", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_risk_scores_run_id_scoring_runs"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_risk_scores_model_version_id_model_versions"), type_="foreignkey"
        )


def downgrade() -> None:
    with op.batch_alter_table("risk_scores", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_risk_scores_model_version_id_model_versions"),
            "model_versions",
            ["model_version_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_risk_scores_run_id_scoring_runs"),
            "scoring_runs",
            ["run_id"],
            ["id"],
            ondelete="CASCADE",
        )
