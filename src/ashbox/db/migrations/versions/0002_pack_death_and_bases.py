"""packs record when they died; blobs are found by their delta base

Revision ID: 0002
Revises: 0001

`packs.dead_at` lets a dead pack's object outlive its death by a grace period
(docs/format.md, "Reclaiming space"); packs dead before this revision keep
NULL, read as "dead long ago". The indexes serve the garbage collector's scans
of packs by state and of the deltas that rely on a base blob.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("packs") as batch:
        batch.add_column(sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_packs_state", "packs", ["container", "state"], unique=False)
    op.create_index("ix_blobs_base", "blobs", ["container", "base_blob_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_blobs_base", table_name="blobs")
    op.drop_index("ix_packs_state", table_name="packs")
    with op.batch_alter_table("packs") as batch:
        batch.drop_column("dead_at")
