"""generic tasks, the outbox, snapshots

Revision ID: 0003
Revises: 0002

Tasks name any resource (`resource_type`, `resource_id`) and carry their
arguments in `payload`, instead of a backup id and restore columns: a task
that was queued before this revision keeps its meaning (a restore's target
moves into its payload). The outbox holds what follows from each status
transition (ashbox.db.lifecycle); snapshots are volumes' point-in-time copies.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("resource_type", sa.String(16), nullable=True))
        batch.add_column(sa.Column("resource_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, backup_id, volume_id, volume_is_new FROM tasks"))
    for task_id, backup_id, volume_id, volume_is_new in list(rows):
        payload = {}
        if volume_id is not None:
            payload = {"volume_id": volume_id, "volume_is_new": bool(volume_is_new)}
        conn.execute(
            sa.text(
                "UPDATE tasks SET resource_type = 'backup', resource_id = :rid, "
                "payload = :payload WHERE id = :id"
            ),
            {"rid": backup_id, "payload": json.dumps(payload), "id": task_id},
        )
    op.drop_index("ix_tasks_backup", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("resource_type", existing_type=sa.String(16), nullable=False)
        batch.alter_column("resource_id", existing_type=sa.String(36), nullable=False)
        batch.alter_column("payload", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("backup_id")
        batch.drop_column("volume_id")
        batch.drop_column("volume_is_new")
    op.create_index("ix_tasks_resource", "tasks", ["resource_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.String(36), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("status", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_created", "outbox", ["created_at"], unique=False)

    op.create_table(
        "snapshots",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("volume_id", sa.String(36), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=True),
        sa.Column("display_description", sa.String(255), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("snapshot_metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_snapshots_deleted_project", "snapshots", ["deleted", "project_id"], unique=False
    )
    op.create_index("ix_snapshots_volume", "snapshots", ["volume_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_snapshots_volume", table_name="snapshots")
    op.drop_index("ix_snapshots_deleted_project", table_name="snapshots")
    op.drop_table("snapshots")
    op.drop_index("ix_outbox_created", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_tasks_resource", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("backup_id", sa.String(36), nullable=False, server_default=""))
        batch.add_column(sa.Column("volume_id", sa.String(36), nullable=True))
        batch.add_column(
            sa.Column("volume_is_new", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE tasks SET backup_id = resource_id")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("payload")
        batch.drop_column("resource_id")
        batch.drop_column("resource_type")
    op.create_index("ix_tasks_backup", "tasks", ["backup_id"], unique=False)
