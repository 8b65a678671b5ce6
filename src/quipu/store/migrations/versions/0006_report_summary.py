"""reports.summary_gz: what a list of a report's systems shows, apart from the report

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 20:00:00

Reports stored before this revision have none; readers fall back to the deployments report.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("summary_gz", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("summary_gz")
