"""the store's health as each host's workers last saw it

Revision ID: 0005
Revises: 0004

A worker probes the backup store every heartbeat and reports the outcome on
its host's service row: NULL while the store answers, else what it said.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("store_error", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("store_error")
