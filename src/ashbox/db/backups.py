"""SQL for backups and their metadata. Callers own the transaction; nothing here commits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, delete, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from ashbox.db import lifecycle
from ashbox.db.listing import list_page
from ashbox.db.models import Backup, BackupMetadata
from ashbox.records import ListQuery
from ashbox.statuses import BackupStatus, VolumeStatus
from ashbox.transitions import SNAPSHOT, VOLUME

COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "id": Backup.id,
    "name": Backup.display_name,
    "display_name": Backup.display_name,
    "description": Backup.display_description,
    "status": Backup.status,
    "volume_id": Backup.volume_id,
    "size": Backup.size,
    "container": Backup.container,
    "availability_zone": Backup.availability_zone,
    "parent_id": Backup.parent_id,
    "snapshot_id": Backup.snapshot_id,
    "data_timestamp": Backup.data_timestamp,
    "created_at": Backup.created_at,
    "updated_at": Backup.updated_at,
    "project_id": Backup.project_id,
    "user_id": Backup.user_id,
    "host": Backup.host,
    "fail_reason": Backup.fail_reason,
    "object_count": Backup.object_count,
    "stored_size": Backup.stored_size,
    "service": Backup.service,
    "service_metadata": Backup.service_metadata,
    "num_dependent_backups": Backup.num_dependent_backups,
    "restore_volume_id": Backup.restore_volume_id,
    "encryption_key_id": Backup.encryption_key_id,
    "temp_volume_id": Backup.temp_volume_id,
    "temp_snapshot_id": Backup.temp_snapshot_id,
    "display_description": Backup.display_description,
}


def add_backup(s: Session, metadata: dict[str, str], **values: Any) -> Backup:
    backup = Backup(**values)
    s.add(backup)
    s.flush()
    set_metadata(s, backup.id, metadata)
    return backup


def get_backup(s: Session, backup_id: str, project_id: str | None = None) -> Backup | None:
    stmt = select(Backup).where(Backup.id == backup_id, Backup.deleted.is_(False))
    if project_id is not None:
        stmt = stmt.where(Backup.project_id == project_id)
    return s.scalar(stmt)


def get_backup_row(s: Session, backup_id: str) -> Backup | None:
    """The row of `backup_id`, a deleted one too, locked to the end of the transaction."""
    return s.scalar(
        select(Backup)
        .where(Backup.id == backup_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def backup_ids_in_container(s: Session, container: str, *, or_unset: bool) -> set[str]:
    """The ids of the backups (not deleted) stored in `container`; with
    `or_unset`, also those that name no container (the default one's)."""
    where = Backup.container == container
    if or_unset:
        where = where | Backup.container.is_(None)
    return set(s.scalars(select(Backup.id).where(Backup.deleted.is_(False), where)))


def being_created(s: Session, backup_ids: Iterable[str]) -> set[str]:
    """Those of `backup_ids` whose backup is being created, so may still write
    packs. A backup leaves `creating` for good: one that is not, never will be."""
    ids = sorted(backup_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found.update(
            s.scalars(
                select(Backup.id).where(
                    Backup.id.in_(ids[start : start + 500]),
                    Backup.status == BackupStatus.CREATING,
                    Backup.deleted.is_(False),
                )
            )
        )
    return found


def list_backups(
    s: Session, project_id: str | None, query: ListQuery, marker: Backup | None
) -> tuple[list[Backup], int]:
    stmt = select(Backup).where(Backup.deleted.is_(False))
    if project_id is not None:
        stmt = stmt.where(Backup.project_id == project_id)
    return list_page(s, stmt, COLUMNS, query, id_column=Backup.id, marker_row=marker)


def backups_named(s: Session, name: str) -> list[Backup]:
    """The live backups whose name is `name`."""
    return list(
        s.scalars(select(Backup).where(Backup.display_name == name, Backup.deleted.is_(False)))
    )


def backups_of_volume(s: Session, volume_id: str, project_id: str) -> list[Backup]:
    return list(
        s.scalars(
            select(Backup).where(
                Backup.volume_id == volume_id,
                Backup.project_id == project_id,
                Backup.deleted.is_(False),
            )
        )
    )


def dependents_exist(s: Session, backup_id: str) -> bool:
    found = s.scalar(
        select(Backup.id).where(Backup.parent_id == backup_id, Backup.deleted.is_(False)).limit(1)
    )
    return found is not None


def lock_backup(s: Session, backup_id: str) -> Backup | None:
    """The backup, its row locked to the end of the transaction (PostgreSQL; on
    SQLite the transaction already holds the database's write lock). Checks that
    span rows (an incremental's parent, a delete's dependents) are made under it."""
    return s.scalar(
        select(Backup)
        .where(Backup.id == backup_id, Backup.deleted.is_(False))
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def set_backup_fields(s: Session, backup_id: str, **values: Any) -> None:
    """Change fields other than the status (name, description, placement)."""
    s.execute(
        update(Backup)
        .where(Backup.id == backup_id)
        .values(updated_at=datetime.now(UTC), **values)
        .execution_options(synchronize_session=False)
    )


def set_key_if_unset(s: Session, backup_id: str, key_id: str) -> bool:
    """Record the backup's encryption key unless it has one; whether it was recorded."""
    result = s.execute(
        update(Backup)
        .where(Backup.id == backup_id, Backup.encryption_key_id.is_(None))
        .values(encryption_key_id=key_id)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def change_dependents(s: Session, backup_id: str, delta: int) -> None:
    """Add `delta` to num_dependent_backups in SQL, never going below zero."""
    new = Backup.num_dependent_backups + delta
    s.execute(
        update(Backup)
        .where(Backup.id == backup_id)
        .values(num_dependent_backups=case((new < 0, 0), else_=new))
    )


def set_metadata(s: Session, backup_id: str, metadata: dict[str, str]) -> None:
    s.execute(delete(BackupMetadata).where(BackupMetadata.backup_id == backup_id))
    for key, value in metadata.items():
        s.add(BackupMetadata(backup_id=backup_id, key=key, value=value))
    s.flush()


def metadata_of(s: Session, backup_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    ids = list(backup_ids)
    out: dict[str, dict[str, str]] = {i: {} for i in ids}
    if ids:
        for row in s.scalars(select(BackupMetadata).where(BackupMetadata.backup_id.in_(ids))):
            out[row.backup_id][row.key] = row.value
    return out


def return_source(
    s: Session, volume_id: str, snapshot_id: str | None, event: str, previous: VolumeStatus
) -> None:
    """A backup's source back to the status it had before, if it is still backing up:
    a snapshot `available`, a volume its `previous_status` (which becomes `previous`)."""
    if snapshot_id is not None:
        lifecycle.apply(s, SNAPSHOT["backup_end"], snapshot_id)
    else:
        lifecycle.apply(s, VOLUME[event], volume_id, values={"previous_status": previous})
