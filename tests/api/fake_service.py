"""An in-memory `BackupService` for the API tests: same signatures, same errors.

Work that a worker would do (writing a backup, restoring it) completes at
once, so a created backup is `available` and a restore leaves both sides
`available`. The rules it checks are those of CINDER-CONTRACT §2.1-2.4 that a
client can observe through the API.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from ashbox.backups.records import (
    BackupRecord,
    ListQuery,
    RequestContext,
    RestoreRecord,
    VolumeRecord,
)
from ashbox.errors import (
    BackupNotFound,
    InvalidBackup,
    InvalidInput,
    InvalidVolume,
    QuotaExceeded,
    VolumeNotFound,
)
from ashbox.statuses import BackupStatus, VolumeStatus

_DELETABLE_VOLUME = {VolumeStatus.AVAILABLE, VolumeStatus.ERROR, VolumeStatus.ERROR_RESTORING}


class FakeService:
    def __init__(self, *, availability_zone: str = "nova", max_backups: int = 100) -> None:
        self.availability_zone = availability_zone
        self.max_backups = max_backups
        self.volumes: dict[str, VolumeRecord] = {}
        self.backups: dict[str, BackupRecord] = {}
        self._lock = threading.Lock()
        self._clock = datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)

    # volumes

    def create_volume(
        self,
        ctx: RequestContext,
        *,
        size: int,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        availability_zone: str | None = None,
    ) -> VolumeRecord:
        if availability_zone not in (None, self.availability_zone):
            raise InvalidInput(
                f"Invalid input received: Availability zone '{availability_zone}' is invalid."
            )
        volume_id = str(uuid.uuid4())
        return self._new_volume(
            ctx, volume_id, size, name, description, metadata, f"/volumes/{volume_id}", True
        )

    def import_volume(
        self,
        ctx: RequestContext,
        *,
        path: str,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> VolumeRecord:
        if any(v.path == path for v in self.volumes.values()):
            raise InvalidInput(f"Invalid input received: {path} is already managed.")
        return self._new_volume(ctx, str(uuid.uuid4()), 1, name, description, metadata, path, False)

    def get_volume(self, ctx: RequestContext, volume_id: str) -> VolumeRecord:
        volume = self.volumes.get(volume_id)
        if volume is None or not _visible(ctx, volume.project_id):
            raise VolumeNotFound(volume_id)
        return volume

    def list_volumes(self, ctx: RequestContext, query: ListQuery) -> tuple[list[VolumeRecord], int]:
        with self._lock:
            return _page(ctx, query, list(self.volumes.values()), VolumeRecord, VolumeNotFound)

    def delete_volume(self, ctx: RequestContext, volume_id: str) -> None:
        with self._lock:
            volume = self.get_volume(ctx, volume_id)
            if volume.status not in _DELETABLE_VOLUME:
                raise InvalidVolume(
                    "Volume status must be available or error or error_restoring or "
                    "error_extending or error_managing and must not be migrating, attached, "
                    "belong to a group, have snapshots, awaiting a transfer, or be "
                    "disassociated from snapshots after volume transfer."
                )
            del self.volumes[volume_id]

    # backups

    def create_backup(
        self,
        ctx: RequestContext,
        *,
        volume_id: str,
        name: str | None = None,
        description: str | None = None,
        container: str | None = None,
        incremental: bool = False,
        force: bool = False,
        snapshot_id: str | None = None,
        metadata: dict[str, str] | None = None,
        availability_zone: str | None = None,
    ) -> BackupRecord:
        with self._lock:
            volume = self.get_volume(ctx, volume_id)
            if snapshot_id is not None:
                raise InvalidInput("Invalid input received: snapshots are not supported.")
            if volume.status not in (VolumeStatus.AVAILABLE, VolumeStatus.IN_USE):
                raise InvalidVolume(
                    "Volume to be backed up must be available or in-use, but the current "
                    f'status is "{volume.status}".'
                )
            if volume.status == VolumeStatus.IN_USE and not force:
                raise InvalidVolume("Backing up an in-use volume must use the force flag.")
            mine = [b for b in self.backups.values() if b.project_id == ctx.project_id]
            if len(mine) >= self.max_backups:
                raise QuotaExceeded(
                    "BackupLimitExceeded: Maximum number of backups allowed "
                    f"({self.max_backups}) exceeded"
                )
            parent_id = self._parent(ctx, volume_id) if incremental else None
            now = self._tick()
            backup = BackupRecord(
                id=str(uuid.uuid4()),
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                volume_id=volume_id,
                name=name,
                description=description,
                status=BackupStatus.AVAILABLE,
                size=volume.size,
                container=container or "volumebackups",
                availability_zone=availability_zone or self.availability_zone,
                parent_id=parent_id,
                fail_reason=None,
                object_count=1,
                num_dependent_backups=0,
                snapshot_id=None,
                data_timestamp=now,
                restore_volume_id=None,
                encryption_key_id=None,
                host="fake",
                service="ashbox",
                stored_size=1024,
                created_at=now,
                updated_at=now,
                metadata=dict(metadata or {}),
            )
            self.backups[backup.id] = backup
            if parent_id is not None:
                parent = self.backups[parent_id]
                self.backups[parent_id] = dataclasses.replace(
                    parent, num_dependent_backups=parent.num_dependent_backups + 1
                )
            return backup

    def get_backup(self, ctx: RequestContext, backup_id: str) -> BackupRecord:
        backup = self.backups.get(backup_id)
        if backup is None or not _visible(ctx, backup.project_id):
            raise BackupNotFound(backup_id)
        return backup

    def list_backups(self, ctx: RequestContext, query: ListQuery) -> tuple[list[BackupRecord], int]:
        with self._lock:
            return _page(ctx, query, list(self.backups.values()), BackupRecord, BackupNotFound)

    def delete_backup(self, ctx: RequestContext, backup_id: str, *, force: bool = False) -> None:
        with self._lock:
            backup = self.get_backup(ctx, backup_id)
            if not force and backup.status not in (BackupStatus.AVAILABLE, BackupStatus.ERROR):
                raise InvalidBackup("Backup status must be available or error")
            if any(b.parent_id == backup_id for b in self.backups.values()):
                raise InvalidBackup("Incremental backups exist for this backup.")
            del self.backups[backup_id]
            if backup.parent_id in self.backups:
                parent = self.backups[backup.parent_id]
                self.backups[parent.id] = dataclasses.replace(
                    parent, num_dependent_backups=max(0, parent.num_dependent_backups - 1)
                )

    def restore_backup(
        self,
        ctx: RequestContext,
        backup_id: str,
        *,
        volume_id: str | None = None,
        name: str | None = None,
    ) -> RestoreRecord:
        with self._lock:
            backup = self.get_backup(ctx, backup_id)
            if backup.status != BackupStatus.AVAILABLE:
                raise InvalidBackup("Backup status must be available")
            if volume_id is None:
                volume_name = name or f"restore_backup_{backup_id}"
                new_id = str(uuid.uuid4())
                volume = self._new_volume(
                    ctx,
                    new_id,
                    backup.size,
                    volume_name,
                    "auto-created_from_restore_from_backup",
                    None,
                    f"/volumes/{new_id}",
                    True,
                )
            else:
                volume = self.get_volume(ctx, volume_id)
                if volume.status != VolumeStatus.AVAILABLE:
                    raise InvalidVolume("Volume to be restored to must be available")
                if volume.size < backup.size:
                    raise InvalidVolume(
                        f"volume size {volume.size} is too small to restore backup of "
                        f"size {backup.size}."
                    )
            metadata = {**volume.metadata, "src_backup_id": backup_id}
            self.volumes[volume.id] = dataclasses.replace(volume, metadata=metadata)
            return RestoreRecord(backup_id=backup_id, volume_id=volume.id, volume_name=volume.name)

    # helpers

    def _new_volume(
        self,
        ctx: RequestContext,
        volume_id: str,
        size: int,
        name: str | None,
        description: str | None,
        metadata: dict[str, str] | None,
        path: str,
        managed_file: bool,
    ) -> VolumeRecord:
        now = self._tick()
        volume = VolumeRecord(
            id=volume_id,
            project_id=ctx.project_id,
            user_id=ctx.user_id,
            name=name,
            description=description,
            size=size,
            status=VolumeStatus.AVAILABLE,
            previous_status=None,
            path=path,
            managed_file=managed_file,
            availability_zone=self.availability_zone,
            bootable=False,
            metadata=dict(metadata or {}),
            created_at=now,
            updated_at=now,
        )
        self.volumes[volume_id] = volume
        return volume

    def _parent(self, ctx: RequestContext, volume_id: str) -> str:
        candidates = [
            b
            for b in self.backups.values()
            if b.volume_id == volume_id
            and b.project_id == ctx.project_id
            and b.status == BackupStatus.AVAILABLE
        ]
        if not candidates:
            raise InvalidBackup("No backups available to do an incremental backup.")
        return max(candidates, key=lambda b: b.data_timestamp or b.created_at).id

    def _tick(self) -> datetime:
        """Distinct, increasing creation times, so default ordering is deterministic."""
        self._clock += timedelta(seconds=1)
        return self._clock


def _visible(ctx: RequestContext, project_id: str) -> bool:
    return ctx.is_admin or ctx.project_id == project_id


R = TypeVar("R", VolumeRecord, BackupRecord)


def _page(
    ctx: RequestContext,
    query: ListQuery,
    records: list[R],
    record_type: type[R],
    not_found: type[VolumeNotFound] | type[BackupNotFound],
) -> tuple[list[R], int]:
    fields = {f.name for f in dataclasses.fields(record_type)}
    for key, _direction in query.sort:
        if key not in fields:
            raise InvalidInput(f"Invalid input received: Invalid sort key {key}")
    if not query.all_tenants:
        records = [r for r in records if r.project_id == ctx.project_id]
    for key, value in query.filters.items():
        records = [r for r in records if _text(getattr(r, key, None)) == value.lower()]
    for key, value in query.like_filters.items():
        records = [r for r in records if value.lower() in _text(getattr(r, key, None))]
    total = len(records)
    keys = [*query.sort, ("id", query.sort[-1][1] if query.sort else "asc")]
    for key, direction in reversed(keys):
        records.sort(key=lambda r: _sortable(getattr(r, key)), reverse=direction == "desc")
    if query.marker is not None:
        ids = [r.id for r in records]
        if query.marker not in ids:
            raise not_found(query.marker)
        records = records[ids.index(query.marker) + 1 :]
    records = records[query.offset :]
    if query.limit is not None:
        records = records[: query.limit]
    return records, total


def _text(value: object) -> str:
    return "" if value is None else str(value).lower()


def _sortable(value: object) -> tuple[bool, str | int | float | datetime]:
    if value is None:
        return (False, "")
    assert isinstance(value, str | int | float | datetime)
    return (True, value)
