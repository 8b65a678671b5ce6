"""source types: every source_type column checked against the same list; proxy_url

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:00:00

The list of source types is written here as it stands at this revision (a migration never
reads the live enum); a later type needs a revision that rewrites these three constraints,
and tests/integration/test_store_migrations.py fails until it exists.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SOURCE_TYPES = ("network", "vcenter", "satellite")
CHECKS = (("credentials", "cred_type"), ("sources", "source_type"), ("tasks", "source_type"))


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("proxy_url", sa.String(length=512), nullable=True))
    for table, column in CHECKS:
        name = op.f(f"ck_{table}_{column}")
        with op.batch_alter_table(table) as batch:
            if table != "tasks":
                batch.drop_constraint(name, type_="check")
            batch.create_check_constraint(name, _in(column, SOURCE_TYPES))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint(op.f("ck_tasks_source_type"), type_="check")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("proxy_url")
