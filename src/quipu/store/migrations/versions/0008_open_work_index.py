"""a partial index on each task's open scanner jobs, so that a job's end finds out whether it
was its task's last without reading the task's other jobs

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OPEN = "status IN ('pending', 'claimed', 'running')"


def upgrade() -> None:
    op.create_index(
        "ix_scanner_jobs_open_task_id",
        "scanner_jobs",
        ["task_id"],
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_scanner_jobs_open_task_id", table_name="scanner_jobs")
