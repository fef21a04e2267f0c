"""SQL for snapshots. Callers own the transaction; nothing here commits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from ashbox.db import lifecycle
from ashbox.db import tasks as task_rows
from ashbox.db.listing import list_page
from ashbox.db.models import Snapshot, Volume
from ashbox.records import ListQuery
from ashbox.statuses import ResourceType, TaskKind
from ashbox.transitions import SNAPSHOT

COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "id": Snapshot.id,
    "name": Snapshot.display_name,
    "description": Snapshot.display_description,
    "status": Snapshot.status,
    "volume_id": Snapshot.volume_id,
    "size": Snapshot.size,
    "created_at": Snapshot.created_at,
    "updated_at": Snapshot.updated_at,
    "project_id": Snapshot.project_id,
    "user_id": Snapshot.user_id,
}


def get_snapshot(s: Session, snapshot_id: str, *, lock: bool = False) -> Snapshot | None:
    """The snapshot (not deleted); with `lock`, its row locked to the end of the
    transaction (PostgreSQL; SQLite's transaction holds the write lock already)."""
    stmt = select(Snapshot).where(Snapshot.id == snapshot_id, Snapshot.deleted.is_(False))
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return s.scalar(stmt)


def snapshots_of_volume(s: Session, volume_id: str) -> list[Snapshot]:
    return list(
        s.scalars(
            select(Snapshot).where(Snapshot.volume_id == volume_id, Snapshot.deleted.is_(False))
        )
    )


def list_snapshots(
    s: Session, project_id: str | None, query: ListQuery, marker: Snapshot | None
) -> tuple[list[Snapshot], int]:
    stmt = select(Snapshot).where(Snapshot.deleted.is_(False))
    if project_id is not None:
        stmt = stmt.where(Snapshot.project_id == project_id)
    return list_page(s, stmt, COLUMNS, query, id_column=Snapshot.id, marker_row=marker)


def set_snapshot_fields(s: Session, snapshot_id: str, **values: Any) -> None:
    """Change fields other than the status (name, description, metadata)."""
    s.execute(
        update(Snapshot)
        .where(Snapshot.id == snapshot_id)
        .values(updated_at=datetime.now(UTC), **values)
        .execution_options(synchronize_session=False)
    )


def host_of(s: Session, snapshot_id: str) -> str | None:
    """The host whose files hold the snapshot: its volume's (None: any worker's)."""
    return s.scalar(
        select(Volume.host)
        .join(Snapshot, Snapshot.volume_id == Volume.id)
        .where(Snapshot.id == snapshot_id)
    )


def discard_snapshot(s: Session, snapshot_id: str, *, max_attempts: int) -> None:
    """Have a worker delete the snapshot (a backup's temporary one), whatever its
    status: it goes `deleting` and its delete task is queued, in the caller's
    transaction, so no crash can leave it behind."""
    if lifecycle.apply(s, SNAPSHOT["force_delete"], snapshot_id):
        task_rows.add_task(
            s,
            TaskKind.DELETE_SNAPSHOT,
            ResourceType.SNAPSHOT,
            snapshot_id,
            max_attempts=max_attempts,
            pinned_host=host_of(s, snapshot_id),
        )
