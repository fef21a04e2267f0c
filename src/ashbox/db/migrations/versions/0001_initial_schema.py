"""initial schema

Revision ID: 0001
Revises:
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
        "backups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("availability_zone", sa.String(length=255), nullable=True),
        sa.Column("container", sa.String(length=255), nullable=True),
        sa.Column("parent_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=255), nullable=False),
        sa.Column("fail_reason", sa.String(length=255), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("display_description", sa.String(length=255), nullable=True),
        sa.Column("service_metadata", sa.String(length=255), nullable=True),
        sa.Column("service", sa.String(length=255), nullable=True),
        sa.Column("object_count", sa.Integer(), nullable=False),
        sa.Column("temp_volume_id", sa.String(length=36), nullable=True),
        sa.Column("temp_snapshot_id", sa.String(length=36), nullable=True),
        sa.Column("num_dependent_backups", sa.Integer(), nullable=False),
        sa.Column("snapshot_id", sa.String(length=36), nullable=True),
        sa.Column("data_timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("restore_volume_id", sa.String(length=36), nullable=True),
        sa.Column("encryption_key_id", sa.String(length=36), nullable=True),
        sa.Column("stored_size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_backups_deleted_project", "backups", ["deleted", "project_id"], unique=False
    )
    op.create_index("ix_backups_parent", "backups", ["parent_id"], unique=False)
    op.create_index("ix_backups_volume", "backups", ["volume_id"], unique=False)
    op.create_table(
        "blob_refs",
        sa.Column("backup_id", sa.String(length=36), nullable=False),
        sa.Column("container", sa.String(length=255), nullable=False),
        sa.Column("blob_id", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("backup_id", "container", "blob_id"),
    )
    op.create_index("ix_blob_refs_blob", "blob_refs", ["container", "blob_id"], unique=False)
    op.create_table(
        "blobs",
        sa.Column("container", sa.String(length=255), nullable=False),
        sa.Column("blob_id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("pack_id", sa.String(length=64), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("raw_length", sa.Integer(), nullable=False),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.Column("base_blob_id", sa.LargeBinary(length=32), nullable=True),
        sa.PrimaryKeyConstraint("container", "blob_id"),
    )
    op.create_index("ix_blobs_pack", "blobs", ["container", "pack_id"], unique=False)
    op.create_table(
        "containers",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "packs",
        sa.Column("container", sa.String(length=255), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("owner_backup_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("container", "id"),
    )
    op.create_index("ix_packs_owner", "packs", ["owner_backup_id"], unique=False)
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("backup_id", sa.String(length=36), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=True),
        sa.Column("volume_is_new", sa.Boolean(), nullable=False),
        sa.Column("pinned_host", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=255), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_bytes", sa.BigInteger(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tasks_backup", "tasks", ["backup_id"], unique=False)
    op.create_index("ix_tasks_state", "tasks", ["state", "lease_expires_at"], unique=False)
    op.create_table(
        "volumes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("display_description", sa.String(length=255), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=255), nullable=False),
        sa.Column("previous_status", sa.String(length=255), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("managed_file", sa.Boolean(), nullable=False),
        sa.Column("availability_zone", sa.String(length=255), nullable=False),
        sa.Column("bootable", sa.Boolean(), nullable=False),
        sa.Column("volume_metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_volumes_deleted_project", "volumes", ["deleted", "project_id"], unique=False
    )
    op.create_table(
        "backup_metadata",
        sa.Column("backup_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["backup_id"], ["backups.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("backup_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("backup_metadata")
    op.drop_index("ix_volumes_deleted_project", table_name="volumes")
    op.drop_table("volumes")
    op.drop_index("ix_tasks_state", table_name="tasks")
    op.drop_index("ix_tasks_backup", table_name="tasks")
    op.drop_table("tasks")
    op.drop_index("ix_packs_owner", table_name="packs")
    op.drop_table("packs")
    op.drop_table("containers")
    op.drop_index("ix_blobs_pack", table_name="blobs")
    op.drop_table("blobs")
    op.drop_index("ix_blob_refs_blob", table_name="blob_refs")
    op.drop_table("blob_refs")
    op.drop_index("ix_backups_volume", table_name="backups")
    op.drop_index("ix_backups_parent", table_name="backups")
    op.drop_index("ix_backups_deleted_project", table_name="backups")
    op.drop_table("backups")
