"""SQL for volumes. Callers own the transaction; nothing here commits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from ashbox.db.listing import list_page
from ashbox.db.models import Volume
from ashbox.records import ListQuery

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


def volume_with_path(s: Session, path: str, *, excluding: str | None = None) -> Volume | None:
    """The live volume managing `path` (other than `excluding`), if any."""
    stmt = select(Volume).where(Volume.path == path, Volume.deleted.is_(False))
    if excluding is not None:
        stmt = stmt.where(Volume.id != excluding)
    return s.scalar(stmt.limit(1))


def lock_volume(s: Session, volume_id: str) -> Volume | None:
    """The volume, its row locked to the end of the transaction (PostgreSQL; on
    SQLite the transaction already holds the database's write lock)."""
    return s.scalar(
        select(Volume)
        .where(Volume.id == volume_id, Volume.deleted.is_(False))
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def set_volume_fields(s: Session, volume_id: str, **values: Any) -> None:
    """Change fields other than the status (name, metadata)."""
    s.execute(
        update(Volume)
        .where(Volume.id == volume_id)
        .values(updated_at=datetime.now(UTC), **values)
        .execution_options(synchronize_session=False)
    )


def list_volumes(
    s: Session, project_id: str | None, query: ListQuery, marker: Volume | None
) -> tuple[list[Volume], int]:
    stmt = select(Volume).where(Volume.deleted.is_(False)).options(selectinload(Volume.volume_type))
    if project_id is not None:
        stmt = stmt.where(Volume.project_id == project_id)
    return list_page(s, stmt, COLUMNS, query, id_column=Volume.id, marker_row=marker)
