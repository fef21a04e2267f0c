"""services, volume hosts and zone-pinned tasks

Revision ID: 0004
Revises: 0003

Workers report on a `services` row per host (os-services); a volume records
the host whose files hold it, and a task the zone it must run in, so that
work on a host's volume goes to a worker of that host (docs/deploy.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "services",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("binary", sa.String(255), nullable=False),
        sa.Column("availability_zone", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("host", "binary", name="uq_services_host_binary"),
    )
    with op.batch_alter_table("volumes") as batch:
        batch.add_column(sa.Column("host", sa.String(255), nullable=True))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("pinned_zone", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("pinned_zone")
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("host")
    op.drop_table("services")
