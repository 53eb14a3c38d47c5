"""SQLite: the customer filter indexes carry the other filter columns too, as trailing keys.

Counting "active customers in Small Business" read the segment index and then each matching
customer's row to test the status: 107-131 ms at a million customers on the eighth session's
VM, over the 100 ms a table count may take (78 ms on a quicker VM, so 0009 had left SQLite
alone). SQLite has no INCLUDE; key columns after ``id`` do the same job, and because ``id`` is
unique they change neither the order nor keyset paging by ``(column, id)``. Any mix of segment,
plan, status and owner is then counted from one covering index: 10 ms. PostgreSQL got the same
with INCLUDE in 0009; the models describe that form (``migrate.include_object`` knows this one).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 05:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FILTERS = ("segment", "plan", "status", "owner")


def _recreate(cover: bool) -> None:
    for column in FILTERS:
        name = f"ix_customers_{column}_id"
        keys = [column, "id", *(c for c in FILTERS if c != column)] if cover else [column, "id"]
        op.execute(f"DROP INDEX {name}")
        # Written as 0001 wrote them ("plan" is a keyword to SQLAlchemy), so the downgrade
        # restores the very same definitions.
        quoted = ", ".join('"plan"' if k == "plan" else k for k in keys)
        op.execute(f"CREATE INDEX {name} ON customers ({quoted})")
        # DROP INDEX took the index's planner statistics along: without them SQLite picked the
        # status index for "Small Business and active" and read 500,000 entries (90 ms).
        op.execute(f"ANALYZE {name}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate(cover=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate(cover=False)
