"""the whole job lifecycle: schedules, time windows, retries, approval expiry, stalled-job
alarms with repair actions, draining scanners, and each scan job's event log

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("windows", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("scans") as batch:
        batch.add_column(sa.Column("schedule_cron", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("schedule_timezone", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("next_fire_at", TIME, nullable=True))
        batch.add_column(sa.Column("windows", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("retry", sa.JSON(), nullable=False, server_default="{}"))
        batch.create_index(batch.f("ix_scans_next_fire_at"), ["next_fire_at"])
    with op.batch_alter_table("scan_jobs") as batch:
        batch.add_column(
            sa.Column("trigger", sa.String(length=16), nullable=False, server_default="user")
        )
        batch.add_column(sa.Column("not_before", TIME, nullable=True))
        batch.add_column(sa.Column("windows", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("retry", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("hold_expires_at", TIME, nullable=True))
        batch.add_column(sa.Column("approved_by", sa.String(length=150), nullable=True))
        batch.add_column(sa.Column("approved_at", TIME, nullable=True))
    with op.batch_alter_table("scanners") as batch:
        batch.add_column(
            sa.Column("draining", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("alarms") as batch:
        batch.add_column(sa.Column("scanner_id", ID, nullable=True))
        batch.add_column(sa.Column("scanner_job_id", ID, nullable=True))
        batch.add_column(sa.Column("source_id", ID, nullable=True))
        batch.add_column(sa.Column("actions", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("key", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("resolved_at", TIME, nullable=True))
        batch.create_unique_constraint(batch.f("uq_alarms_key"), ["key"])
        batch.create_foreign_key(
            batch.f("fk_alarms_scanner_id_scanners"),
            "scanners",
            ["scanner_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_foreign_key(
            batch.f("fk_alarms_scanner_job_id_scanner_jobs"),
            "scanner_jobs",
            ["scanner_job_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_foreign_key(
            batch.f("fk_alarms_source_id_sources"),
            "sources",
            ["source_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "scan_job_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("scan_job_id", ID, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", ID, nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("actor", sa.String(length=160), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["scan_job_id"],
            ["scan_jobs.id"],
            name=op.f("fk_scan_job_events_scan_job_id_scan_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_job_events")),
    )
    op.create_index(
        op.f("ix_scan_job_events_scan_job_id_id"), "scan_job_events", ["scan_job_id", "id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_scan_job_events_scan_job_id_id"), table_name="scan_job_events")
    op.drop_table("scan_job_events")
    with op.batch_alter_table("alarms") as batch:
        batch.drop_constraint(batch.f("fk_alarms_source_id_sources"), type_="foreignkey")
        batch.drop_constraint(batch.f("fk_alarms_scanner_job_id_scanner_jobs"), type_="foreignkey")
        batch.drop_constraint(batch.f("fk_alarms_scanner_id_scanners"), type_="foreignkey")
        batch.drop_constraint(batch.f("uq_alarms_key"), type_="unique")
        for column in (
            "resolved_at",
            "key",
            "actions",
            "source_id",
            "scanner_job_id",
            "scanner_id",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("scanners") as batch:
        batch.drop_column("draining")
    with op.batch_alter_table("scan_jobs") as batch:
        for column in (
            "approved_at",
            "approved_by",
            "hold_expires_at",
            "attempt",
            "retry",
            "windows",
            "not_before",
            "trigger",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("scans") as batch:
        batch.drop_index(batch.f("ix_scans_next_fire_at"))
        for column in ("retry", "windows", "next_fire_at", "schedule_timezone", "schedule_cron"):
            batch.drop_column(column)
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("windows")
