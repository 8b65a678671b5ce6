"""source types openshift, ansible and rhacs; HashiCorp Vault and credentials it holds

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:15:00

The list of source types is written as it stands at this revision (a migration never reads
the live enum).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SOURCE_TYPES = ("network", "vcenter", "satellite", "openshift", "ansible", "rhacs")
PREVIOUS_TYPES = ("network", "vcenter", "satellite")
CHECKS = (("credentials", "cred_type"), ("sources", "source_type"), ("tasks", "source_type"))


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _checks(values: tuple[str, ...]) -> None:
    for table, column in CHECKS:
        name = op.f(f"ck_{table}_{column}")
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(name, type_="check")
            batch.create_check_constraint(name, _in(column, values))


def upgrade() -> None:
    _checks(SOURCE_TYPES)
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("vault_mount_point", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("vault_secret_path", sa.String(length=512), nullable=True))
        batch.add_column(sa.Column("vault_secret_key", sa.String(length=255), nullable=True))
    op.create_table(
        "vault",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("ssl_verify", sa.Boolean(), nullable=False),
        sa.Column("ca_cert", sa.Text(), nullable=True),
        sa.Column("client_cert", sa.Text(), nullable=False),
        sa.Column("client_key_enc", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_vault_single")),
        sa.CheckConstraint("port BETWEEN 1 AND 65535", name=op.f("ck_vault_port")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault")),
    )


def downgrade() -> None:
    op.drop_table("vault")
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("vault_secret_key")
        batch.drop_column("vault_secret_path")
        batch.drop_column("vault_mount_point")
    _checks(PREVIOUS_TYPES)
