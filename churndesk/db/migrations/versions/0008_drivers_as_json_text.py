"""PostgreSQL keeps the current score's drivers as ``json`` (their text), not ``jsonb``.

Nothing queries inside the drivers; they are shown as they are. As ``jsonb`` every run parsed
a million driver arrays while staging them (3.5 of 6.7 s) and compared them structurally when
looking for changed scores (2.7 of 4.1 s). As ``json`` the text is kept as written, staged as
text and compared as text. The first run after this migration rewrites every current score
once: ``jsonb`` had re-spaced the stored text. SQLite already stores JSON as text.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 18:15:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE customer_scores ALTER COLUMN drivers TYPE json USING drivers::text::json"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE customer_scores ALTER COLUMN drivers TYPE jsonb USING drivers::jsonb"
        )
