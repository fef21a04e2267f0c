"""SQL for volumes. Callers own the transaction; nothing here commits."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from ashbox.db.listing import list_page
from ashbox.db.models import Volume
from ashbox.records import ListQuery
from ashbox.statuses import VolumeStatus

COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "id": Volume.id,
    "name": Volume.display_name,
    "description": Volume.display_description,
    "status": Volume.status,
    "size": Volume.size,
    "availability_zone": Volume.availability_zone,
    "created_at": Volume.created_at,
    "updated_at": Volume.updated_at,
    "project_id": Volume.project_id,
    "user_id": Volume.user_id,
    "bootable": Volume.bootable,
}


def add_volume(s: Session, **values: Any) -> Volume:
    volume = Volume(**values)
    s.add(volume)
    s.flush()
    return volume


def get_volume(s: Session, volume_id: str, project_id: str | None = None) -> Volume | None:
    stmt = select(Volume).where(Volume.id == volume_id, Volume.deleted.is_(False))
    if project_id is not None:
        stmt = stmt.where(Volume.project_id == project_id)
    return s.scalar(stmt)


def volume_with_path(s: Session, path: str) -> Volume | None:
    return s.scalar(select(Volume).where(Volume.path == path, Volume.deleted.is_(False)))


def list_volumes(
    s: Session, project_id: str | None, query: ListQuery, marker: Volume | None
) -> tuple[list[Volume], int]:
    stmt = select(Volume).where(Volume.deleted.is_(False))
    if project_id is not None:
        stmt = stmt.where(Volume.project_id == project_id)
    return list_page(s, stmt, COLUMNS, query, id_column=Volume.id, marker_row=marker)


def swap_volume_status(
    s: Session, volume_id: str, expected: Collection[str], new: str, **values: Any
) -> bool:
    """Set the status if it is one of `expected`; False if it was not (nothing changed)."""
    result = s.execute(
        update(Volume)
        .where(Volume.id == volume_id, Volume.status.in_(list(expected)))
        .where(Volume.deleted.is_(False))
        .values(status=new, updated_at=datetime.now(UTC), **values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_volume_deleted(s: Session, volume_id: str) -> None:
    now = datetime.now(UTC)
    s.execute(
        update(Volume)
        .where(Volume.id == volume_id)
        .values(status=VolumeStatus.DELETING, deleted=True, deleted_at=now, updated_at=now)
    )
