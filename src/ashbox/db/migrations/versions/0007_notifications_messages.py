"""usage notifications waiting to be sent, and user messages

Revision ID: 0007
Revises: 0006

Both are written in the transaction of the status transition they follow from
(ashbox.db.lifecycle), so a crash keeps neither without the other.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notifications_sent", "notifications", ["sent_at", "id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=False),
        sa.Column("resource_type", sa.String(255), nullable=True),
        sa.Column("resource_uuid", sa.String(36), nullable=True),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("action_id", sa.String(10), nullable=False),
        sa.Column("detail_id", sa.String(10), nullable=False),
        sa.Column("message_level", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_messages_project", "messages", ["project_id", "created_at"])
    op.create_index("ix_messages_created", "messages", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_created", "messages")
    op.drop_index("ix_messages_project", "messages")
    op.drop_table("messages")
    op.drop_index("ix_notifications_sent", "notifications")
    op.drop_table("notifications")
