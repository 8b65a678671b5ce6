"""scan job types and report origins (merges and uploads); sources.use_paramiko

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 06:30:00

The value lists are written as they stand at this revision; a migration never reads the
live enums.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCAN_TYPES = ("inspect", "fingerprint")
ORIGINS = ("local", "uploaded", "merged")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("use_paramiko", sa.Boolean(), nullable=True))
    with op.batch_alter_table("scan_jobs") as batch:
        batch.add_column(
            sa.Column("scan_type", sa.String(length=16), nullable=False, server_default="inspect")
        )
        batch.create_check_constraint(op.f("ck_scan_jobs_scan_type"), _in("scan_type", SCAN_TYPES))
    with op.batch_alter_table("reports") as batch:
        batch.add_column(
            sa.Column("origin", sa.String(length=16), nullable=False, server_default="local")
        )
        batch.create_check_constraint(op.f("ck_reports_origin"), _in("origin", ORIGINS))


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_constraint(op.f("ck_reports_origin"), type_="check")
        batch.drop_column("origin")
    with op.batch_alter_table("scan_jobs") as batch:
        batch.drop_constraint(op.f("ck_scan_jobs_scan_type"), type_="check")
        batch.drop_column("scan_type")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("use_paramiko")
