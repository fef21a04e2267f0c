"""SQL for user messages (CINDER-CONTRACT §1.9, §3.7). Callers own the
transaction; nothing here commits.

A failure path writes its message with `add` inside the transaction of the
transition it records, so the message exists exactly when the failure does.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from ashbox.db.listing import list_page
from ashbox.db.models import Message
from ashbox.records import ListQuery
from ashbox.user_messages import Level, event_id

# The fields a list may filter and sort on: every column (Cinder filters on
# any column of its model; the API narrows what non-admins may use).
COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "id": Message.id,
    "project_id": Message.project_id,
    "request_id": Message.request_id,
    "resource_type": Message.resource_type,
    "resource_uuid": Message.resource_uuid,
    "event_id": Message.event_id,
    "action_id": Message.action_id,
    "detail_id": Message.detail_id,
    "message_level": Message.message_level,
    "created_at": Message.created_at,
}


def add(
    s: Session,
    *,
    project_id: str,
    resource_type: str,
    resource_uuid: str | None,
    action_id: str,
    detail_id: str,
    level: str = Level.ERROR,
    request_id: str | None = None,
) -> str:
    """Write a message of `project_id` in the caller's transaction; its id.

    `resource_type` is a `user_messages.Resource`, the ids are those of
    `user_messages.Action` and `Detail`; without a `request_id` (the request
    that started the failed operation) one is made up, `req-<uuid4>`.
    """
    message_id = str(uuid.uuid4())
    s.add(
        Message(
            id=message_id,
            project_id=project_id,
            request_id=request_id or f"req-{uuid.uuid4()}",
            resource_type=resource_type,
            resource_uuid=resource_uuid,
            event_id=event_id(resource_type, action_id, detail_id),
            action_id=action_id,
            detail_id=detail_id,
            message_level=str(level),
            created_at=datetime.now(UTC),
        )
    )
    return message_id


def get(s: Session, message_id: str) -> Message | None:
    return s.get(Message, message_id)


def list_messages(
    s: Session, project_id: str | None, query: ListQuery, marker: Message | None
) -> tuple[list[Message], int]:
    """One page of the messages of `project_id` (None: every project's), and how
    many match in all."""
    stmt = select(Message)
    if project_id is not None:
        stmt = stmt.where(Message.project_id == project_id)
    return list_page(s, stmt, COLUMNS, query, id_column=Message.id, marker_row=marker)


def delete(s: Session, message_id: str) -> bool:
    """Delete the message; whether there was one."""
    result = s.execute(sql_delete(Message).where(Message.id == message_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def reap(s: Session, older_than: datetime) -> int:
    """Delete the messages written before `older_than`; how many went."""
    result = s.execute(sql_delete(Message).where(Message.created_at < older_than))
    return int(result.rowcount)  # type: ignore[attr-defined]
