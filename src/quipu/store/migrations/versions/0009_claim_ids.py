"""the claim that took each scanner job, so that a scanner can ask again for the answer of a
claim it never received (its server failed while answering) and get the same jobs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scanner_jobs") as batch:
        batch.add_column(sa.Column("claim_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scanner_jobs") as batch:
        batch.drop_column("claim_id")
