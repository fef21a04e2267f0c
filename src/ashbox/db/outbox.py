"""Reading and reaping the outbox (rows written by ashbox.db.lifecycle)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ashbox.db.models import Outbox


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    resource_type: str
    resource_id: str
    event: str
    status: str
    reason: str | None
    created_at: datetime


def rows_after(s: Session, cursor: int, *, limit: int = 1000) -> list[OutboxRow]:
    """Rows with an id above `cursor`, oldest first."""
    rows = s.scalars(select(Outbox).where(Outbox.id > cursor).order_by(Outbox.id).limit(limit))
    return [
        OutboxRow(r.id, r.resource_type, r.resource_id, r.event, r.status, r.reason, r.created_at)
        for r in rows
    ]


def last_id(s: Session) -> int:
    return s.scalar(select(func.max(Outbox.id))) or 0


def reap(s: Session, older_than: datetime) -> int:
    """Delete the rows written before `older_than`; how many went."""
    result = s.execute(delete(Outbox).where(Outbox.created_at < older_than))
    return int(result.rowcount)  # type: ignore[attr-defined]
