"""Usage notifications (CINDER-CONTRACT §3.6): recorded with the transition they
tell of, in its transaction, and taken by a worker to send after the commit.

A backup transition leads to Cinder's event types, in Cinder's order; the
payload is the backup's row as the transition left it (a reset's `start`
carries the row as it was before). Cinder sends nothing for a failed create,
restore or delete (the user message tells of it), nor for import and export;
neither does ashbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from ashbox.db.models import Backup, Notification

PROGRESS = "backup.createprogress"

# Backup events and the event types each leads to, in order.
_BACKUP_EVENTS: dict[str, tuple[str, ...]] = {
    "create": ("backup.create.start",),
    "create_done": (PROGRESS, "backup.create.end"),
    "restore": ("backup.restore.start",),
    "restore_done": ("backup.restore.end",),
    "delete": ("backup.delete.start",),
    "force_delete": ("backup.delete.start",),
    "delete_done": ("backup.delete.end",),
    "reset_available": ("backup.reset_status.start", "backup.reset_status.end"),
    "reset_error": ("backup.reset_status.start", "backup.reset_status.end"),
}
_BEFORE = "backup.reset_status.start"  # the one event that shows the row before its change
_PAYLOAD_COLUMNS = (
    Backup.project_id,
    Backup.user_id,
    Backup.availability_zone,
    Backup.id,
    Backup.host,
    Backup.display_name,
    Backup.created_at,
    Backup.status,
    Backup.volume_id,
    Backup.size,
    Backup.service_metadata,
    Backup.service,
    Backup.fail_reason,
    Backup.parent_id,
    Backup.num_dependent_backups,
    Backup.snapshot_id,
)


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    event_type: str
    payload: dict[str, Any]


def event_types(event: str) -> tuple[str, ...]:
    """The event types a backup transition leads to (none for most)."""
    return _BACKUP_EVENTS.get(event, ())


def shows_the_row_before(event: str) -> bool:
    return _BEFORE in event_types(event)


def payload(s: Session, backup_id: str) -> dict[str, Any] | None:
    """The backup's usage payload as Cinder builds it; None if there is no such row."""
    row = s.execute(select(*_PAYLOAD_COLUMNS).where(Backup.id == backup_id)).one_or_none()
    if row is None:
        return None
    return {
        "tenant_id": row.project_id,
        "user_id": row.user_id,
        "availability_zone": row.availability_zone,
        "backup_id": row.id,
        "host": row.host,
        "display_name": row.display_name,
        "created_at": _iso(row.created_at),
        "status": row.status,
        "volume_id": row.volume_id,
        "size": row.size,
        "service_metadata": row.service_metadata,
        "service": row.service,
        "fail_reason": row.fail_reason,
        "parent_id": row.parent_id,
        "num_dependent_backups": row.num_dependent_backups,
        "snapshot_id": row.snapshot_id,
    }


def record(
    s: Session,
    event: str,
    backup_id: str,
    *,
    before: Mapping[str, Any] | None = None,
) -> None:
    """Add the notifications of the backup transition `event`, which has just
    been applied in this transaction (`before`: the payload it changed)."""
    types = event_types(event)
    if not types:
        return
    after = payload(s, backup_id)
    if after is None:
        return
    for event_type in types:
        body: dict[str, Any] = dict(after)
        if event_type == _BEFORE and before is not None:
            body = dict(before)
        elif event_type == PROGRESS:
            body["backup_percent"] = 100
        _add(s, event_type, body)


def record_progress(s: Session, backup_id: str, percent: int) -> None:
    """Add a `backup.createprogress` saying the create has done `percent` of its volume."""
    body = payload(s, backup_id)
    if body is not None:
        _add(s, PROGRESS, {**body, "backup_percent": percent})


def unsent(s: Session, *, limit: int = 100) -> list[Pending]:
    """The oldest notifications not yet sent, oldest first."""
    stmt = (
        select(Notification.id, Notification.event_type, Notification.payload)
        .where(Notification.sent_at.is_(None))
        .order_by(Notification.id)
        .limit(limit)
    )
    return [Pending(r.id, r.event_type, r.payload) for r in s.execute(stmt)]


def mark_sent(s: Session, ids: list[int]) -> None:
    if ids:
        s.execute(
            update(Notification)
            .where(Notification.id.in_(ids))
            .values(sent_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )


def count_unsent(s: Session) -> int:
    return s.scalar(select(func.count(Notification.id)).where(Notification.sent_at.is_(None))) or 0


def reap(s: Session, sent_before: datetime) -> int:
    """Delete the notifications sent before `sent_before`; how many went."""
    result = s.execute(delete(Notification).where(Notification.sent_at < sent_before))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _add(s: Session, event_type: str, body: dict[str, Any]) -> None:
    s.execute(
        insert(Notification).values(
            event_type=event_type, payload=body, created_at=datetime.now(UTC)
        )
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.replace(microsecond=0).isoformat()
