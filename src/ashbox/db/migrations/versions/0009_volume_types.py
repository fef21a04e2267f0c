"""volume types, their encryption, and the type of each volume and backup source

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DEFAULT_TYPE_NAME = "__DEFAULT__"  # as Cinder's own migration names it


def upgrade() -> None:
    types = op.create_table(
        "volume_types",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255), nullable=True),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("extra_specs", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_volume_types_name"),
    )
    op.create_table(
        "volume_type_encryption",
        sa.Column("encryption_id", sa.String(36), nullable=False),
        sa.Column("volume_type_id", sa.String(36), nullable=False),
        sa.Column("provider", sa.String(255), nullable=False),
        sa.Column("cipher", sa.String(255), nullable=True),
        sa.Column("key_size", sa.Integer(), nullable=True),
        sa.Column("control_location", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("encryption_id"),
        sa.UniqueConstraint("volume_type_id", name="uq_volume_type_encryption_type"),
    )
    with op.batch_alter_table("volumes") as batch:
        batch.add_column(sa.Column("volume_type_id", sa.String(36), nullable=True))
    with op.batch_alter_table("backups") as batch:
        # The type its volume had when it was taken (CINDER-CONTRACT §3.9).
        batch.add_column(sa.Column("volume_type_id", sa.String(36), nullable=True))
    default_id = str(uuid.uuid4())
    op.bulk_insert(
        types,
        [
            {
                "id": default_id,
                "name": DEFAULT_TYPE_NAME,
                "description": "Default Volume Type",
                "is_public": True,
                "extra_specs": {},
                "created_at": datetime.now(UTC),
            }
        ],
    )
    # What was there had no type: it now has the default one, as in Cinder.
    for table in ("volumes", "backups"):
        op.execute(sa.text(f"UPDATE {table} SET volume_type_id = :id").bindparams(id=default_id))


def downgrade() -> None:
    with op.batch_alter_table("backups") as batch:
        batch.drop_column("volume_type_id")
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("volume_type_id")
    op.drop_table("volume_type_encryption")
    op.drop_table("volume_types")
