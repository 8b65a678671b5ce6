"""reports of completed scan jobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "scan_job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("report_version", sa.String(length=32), nullable=False),
        sa.Column("report_platform_id", sa.String(length=36), nullable=False),
        sa.Column("systems_count", sa.Integer(), nullable=False),
        sa.Column("deployments_count", sa.Integer(), nullable=False),
        sa.Column("details_gz", sa.LargeBinary(), nullable=False),
        sa.Column("deployments_gz", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["scan_job_id"],
            ["scan_jobs.id"],
            name=op.f("fk_reports_scan_job_id_scan_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("scan_job_id", name=op.f("uq_reports_scan_job_id")),
    )


def downgrade() -> None:
    op.drop_table("reports")
