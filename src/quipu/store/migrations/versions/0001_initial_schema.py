"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 14:08:06.782136
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "credentials",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("cred_type", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("password_enc", sa.LargeBinary(), nullable=True),
        sa.Column("ssh_key_enc", sa.LargeBinary(), nullable=True),
        sa.Column("ssh_passphrase_enc", sa.LargeBinary(), nullable=True),
        sa.Column("auth_token_enc", sa.LargeBinary(), nullable=True),
        sa.Column("become_method", sa.String(length=16), nullable=True),
        sa.Column("become_user", sa.String(length=64), nullable=True),
        sa.Column("become_password_enc", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "cred_type IN ('network', 'vcenter', 'satellite')",
            name=op.f("ck_credentials_cred_type"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("name", name=op.f("uq_credentials_name")),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "login_failures",
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_login_failures")),
    )
    op.create_table(
        "scanners",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("bind", sa.JSON(), nullable=False),
        sa.Column("max_probes_per_second", sa.Float(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("last_heartbeat", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "max_probes_per_second >= 0", name=op.f("ck_scanners_max_probes_per_second")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scanners")),
        sa.UniqueConstraint("api_key_hash", name=op.f("uq_scanners_api_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_scanners_name")),
    )
    op.create_table(
        "scans",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("scan_type", sa.String(length=16), nullable=False),
        sa.Column("max_concurrency", sa.Integer(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "max_concurrency BETWEEN 1 AND 200", name=op.f("ck_scans_max_concurrency")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scans")),
        sa.UniqueConstraint("name", name=op.f("uq_scans_name")),
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("source_type", sa.String(length=16), nullable=False),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("exclude_hosts", sa.JSON(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("ssl_cert_verify", sa.Boolean(), nullable=True),
        sa.Column("ssl_protocol", sa.String(length=16), nullable=True),
        sa.Column("disable_ssl", sa.Boolean(), nullable=True),
        sa.Column("scheduling_mode", sa.String(length=16), nullable=False),
        sa.Column("max_probes_per_second", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "scheduling_mode IN ('immediate', 'mediated')", name=op.f("ck_sources_scheduling_mode")
        ),
        sa.CheckConstraint(
            "source_type IN ('network', 'vcenter', 'satellite')",
            name=op.f("ck_sources_source_type"),
        ),
        sa.CheckConstraint(
            "max_probes_per_second >= 0", name=op.f("ck_sources_max_probes_per_second")
        ),
        sa.CheckConstraint("port BETWEEN 1 AND 65535", name=op.f("ck_sources_port")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.UniqueConstraint("name", name=op.f("uq_sources_name")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "scan_jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("scan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("scan_name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("systems_count", sa.Integer(), nullable=False),
        sa.Column("systems_scanned", sa.Integer(), nullable=False),
        sa.Column("systems_failed", sa.Integer(), nullable=False),
        sa.Column("systems_unreachable", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('created', 'pending', 'held', 'running', 'paused', 'completed', "
            "'failed', 'canceled')",
            name=op.f("ck_scan_jobs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["scan_id"], ["scans.id"], name=op.f("fk_scan_jobs_scan_id_scans"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_jobs")),
    )
    op.create_index(op.f("ix_scan_jobs_scan_id"), "scan_jobs", ["scan_id"], unique=False)
    op.create_index(
        op.f("ix_scan_jobs_status_queued_at"), "scan_jobs", ["status", "queued_at"], unique=False
    )
    op.create_table(
        "scan_sources",
        sa.Column("scan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["scan_id"],
            ["scans.id"],
            name=op.f("fk_scan_sources_scan_id_scans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_scan_sources_source_id_sources"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("scan_id", "source_id", name=op.f("pk_scan_sources")),
    )
    op.create_index(op.f("ix_scan_sources_source_id"), "scan_sources", ["source_id"], unique=False)
    op.create_table(
        "source_credentials",
        sa.Column(
            "source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "credential_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_source_credentials_credential_id_credentials"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_source_credentials_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_id", "credential_id", name=op.f("pk_source_credentials")),
    )
    op.create_index(
        op.f("ix_source_credentials_credential_id"),
        "source_credentials",
        ["credential_id"],
        unique=False,
    )
    op.create_table(
        "source_scanners",
        sa.Column(
            "source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "scanner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["scanner_id"],
            ["scanners.id"],
            name=op.f("fk_source_scanners_scanner_id_scanners"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_source_scanners_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_id", "scanner_id", name=op.f("pk_source_scanners")),
    )
    op.create_index(
        op.f("ix_source_scanners_scanner_id"), "source_scanners", ["scanner_id"], unique=False
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_tokens_token_hash")),
    )
    op.create_index(op.f("ix_tokens_user_id"), "tokens", ["user_id"], unique=False)
    op.create_table(
        "alarms",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column(
            "scan_job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["scan_job_id"],
            ["scan_jobs.id"],
            name=op.f("fk_alarms_scan_job_id_scan_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    op.create_index(op.f("ix_alarms_scan_job_id"), "alarms", ["scan_job_id"], unique=False)
    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "scan_job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("source_name", sa.String(length=64), nullable=False),
        sa.Column("source_type", sa.String(length=16), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("systems_count", sa.Integer(), nullable=False),
        sa.Column("systems_scanned", sa.Integer(), nullable=False),
        sa.Column("systems_failed", sa.Integer(), nullable=False),
        sa.Column("systems_unreachable", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('connect', 'inspect')", name=op.f("ck_tasks_kind")),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'completed', 'failed', 'canceled')",
            name=op.f("ck_tasks_status"),
        ),
        sa.ForeignKeyConstraint(
            ["scan_job_id"],
            ["scan_jobs.id"],
            name=op.f("fk_tasks_scan_job_id_scan_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_tasks_source_id_sources"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint(
            "scan_job_id", "source_id", "kind", name=op.f("uq_tasks_scan_job_id_source_id_kind")
        ),
    )
    op.create_table(
        "scanner_jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "scan_job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "scanner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("max_probes_per_second", sa.Float(), nullable=False),
        sa.Column("progress_count", sa.Integer(), nullable=False),
        sa.Column("result_count", sa.Integer(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('connect', 'inspect')", name=op.f("ck_scanner_jobs_kind")),
        sa.CheckConstraint(
            "status IN ('pending', 'claimed', 'running', 'completed', 'failed', 'canceled')",
            name=op.f("ck_scanner_jobs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["scan_job_id"],
            ["scan_jobs.id"],
            name=op.f("fk_scanner_jobs_scan_job_id_scan_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["scanner_id"],
            ["scanners.id"],
            name=op.f("fk_scanner_jobs_scanner_id_scanners"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_scanner_jobs_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scanner_jobs")),
    )
    op.create_index(
        op.f("ix_scanner_jobs_scan_job_id"), "scanner_jobs", ["scan_job_id"], unique=False
    )
    op.create_index(
        op.f("ix_scanner_jobs_scanner_id_status"),
        "scanner_jobs",
        ["scanner_id", "status"],
        unique=False,
    )
    op.create_index(op.f("ix_scanner_jobs_task_id"), "scanner_jobs", ["task_id"], unique=False)
    op.create_table(
        "system_results",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "scan_job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "scanner_job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("system", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "credential_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('success', 'failed', 'unreachable')", name=op.f("ck_system_results_status")
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_system_results_credential_id_credentials"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["scan_job_id"],
            ["scan_jobs.id"],
            name=op.f("fk_system_results_scan_job_id_scan_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["scanner_job_id"],
            ["scanner_jobs.id"],
            name=op.f("fk_system_results_scanner_job_id_scanner_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_system_results_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_results")),
        sa.UniqueConstraint("task_id", "system", name=op.f("uq_system_results_task_id_system")),
    )
    op.create_index(
        op.f("ix_system_results_scan_job_id"), "system_results", ["scan_job_id"], unique=False
    )
    op.create_index(
        op.f("ix_system_results_scanner_job_id"), "system_results", ["scanner_job_id"], unique=False
    )


def downgrade() -> None:

    op.drop_index(op.f("ix_system_results_scanner_job_id"), table_name="system_results")
    op.drop_index(op.f("ix_system_results_scan_job_id"), table_name="system_results")
    op.drop_table("system_results")
    op.drop_index(op.f("ix_scanner_jobs_task_id"), table_name="scanner_jobs")
    op.drop_index(op.f("ix_scanner_jobs_scanner_id_status"), table_name="scanner_jobs")
    op.drop_index(op.f("ix_scanner_jobs_scan_job_id"), table_name="scanner_jobs")
    op.drop_table("scanner_jobs")
    op.drop_table("tasks")
    op.drop_index(op.f("ix_alarms_scan_job_id"), table_name="alarms")
    op.drop_table("alarms")
    op.drop_index(op.f("ix_tokens_user_id"), table_name="tokens")
    op.drop_table("tokens")
    op.drop_index(op.f("ix_source_scanners_scanner_id"), table_name="source_scanners")
    op.drop_table("source_scanners")
    op.drop_index(op.f("ix_source_credentials_credential_id"), table_name="source_credentials")
    op.drop_table("source_credentials")
    op.drop_index(op.f("ix_scan_sources_source_id"), table_name="scan_sources")
    op.drop_table("scan_sources")
    op.drop_index(op.f("ix_scan_jobs_status_queued_at"), table_name="scan_jobs")
    op.drop_index(op.f("ix_scan_jobs_scan_id"), table_name="scan_jobs")
    op.drop_table("scan_jobs")
    op.drop_table("users")
    op.drop_table("sources")
    op.drop_table("scans")
    op.drop_table("scanners")
    op.drop_table("login_failures")
    op.drop_table("leases")
    op.drop_table("credentials")
