"""The backup API (CINDER-CONTRACT §2): checks, state changes and tasks, one transaction each.

Every method either changes nothing and raises a domain error, or commits the
status change together with the task the worker will run (DESIGN.md §2).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from ashbox.backups.actions import FORCE_DELETE_RULE, BackupActions
from ashbox.backups.common import (
    backup_record,
    backup_records,
    load_backup,
    settle_cancelled,
)
from ashbox.backups.messages import MessageOps
from ashbox.backups.placement import (
    NO_SERVICE_FOR_CREATE,
    require_service,
    service_can_run,
)
from ashbox.backups.snapshots import load_snapshot
from ashbox.backups.volume_types import VolumeTypeOps, default_type
from ashbox.backups.volumes import load_volume
from ashbox.config import Settings
from ashbox.containers import check_container
from ashbox.db import backups as backup_rows
from ashbox.db import lifecycle, quotas
from ashbox.db import volume_types as type_rows
from ashbox.db.engine import Database
from ashbox.db.models import Backup, Snapshot, Volume, VolumeType
from ashbox.errors import (
    InvalidBackupState,
    InvalidSnapshotState,
    InvalidVolume,
    InvalidVolumeState,
)
from ashbox.records import (
    BackupRecord,
    ListQuery,
    RequestContext,
    RestoreRecord,
    VolumeRecord,
)
from ashbox.statuses import (
    BackupStatus,
    ResourceType,
    SnapshotStatus,
    TaskKind,
    VolumeStatus,
)
from ashbox.transitions import BACKUP, SNAPSHOT, VOLUME
from ashbox.user_messages import Detail

log = logging.getLogger(__name__)

_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class NewVolume:
    """The volume a restore creates."""

    name: str | None
    description: str | None
    size: int | None = None  # GiB; None: the backup's size
    metadata: dict[str, str] | None = None
    availability_zone: str | None = None


class Service(BackupActions, MessageOps, VolumeTypeOps):
    """Volumes, their types, snapshots, backups and user messages, as the API and
    the CLI see them."""

    def __init__(
        self, db: Database, settings: Settings, *, task_queued: Callable[[], None] = _nothing
    ) -> None:
        """`task_queued` is called after each commit that queued a task: `ashbox serve`
        wakes its worker with it, so a task starts at once rather than at the next poll."""
        super().__init__(db, settings, task_queued=task_queued)

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
        ctx.authorize("backup:create")
        if container is not None:
            check_container(container)
        with self.db.transaction() as s:
            volume = load_volume(s, ctx, volume_id, lock=True)
            data_timestamp = datetime.now(UTC)
            if snapshot_id is not None:
                snapshot = _backed_up_snapshot(s, ctx, snapshot_id, volume_id)
                data_timestamp = snapshot.created_at
            elif volume.status not in (VolumeStatus.AVAILABLE, VolumeStatus.IN_USE):
                raise InvalidVolumeState(
                    "Volume to be backed up must be available or in-use, "
                    f'but the current status is "{volume.status}".'
                )
            elif volume.status == VolumeStatus.IN_USE and not force:
                raise InvalidVolumeState("Backing up an in-use volume must use the force flag.")
            quotas.reserve_backup(s, self.settings, ctx.project_id, volume.size)
            parent_id = None
            if incremental:
                before = data_timestamp if snapshot_id is not None else None
                parent_id = _choose_parent(s, volume_id, ctx.project_id, before=before)
            zone = availability_zone or volume.availability_zone
            placed = service_can_run(s, self.settings, host=volume.host, zone=zone)
            if snapshot_id is not None:
                lifecycle.apply(s, SNAPSHOT["backup_start"], snapshot_id)
            else:
                lifecycle.apply(
                    s, VOLUME["backup_start"], volume_id, values={"previous_status": Volume.status}
                )
            now = datetime.now(UTC)
            backup = Backup(
                id=str(uuid.uuid4()),
                user_id=ctx.user_id,
                project_id=ctx.project_id,
                volume_id=volume_id,
                display_name=name,
                display_description=description,
                container=container,
                parent_id=parent_id,
                size=volume.size,
                availability_zone=availability_zone,
                object_count=0,
                num_dependent_backups=0,
                stored_size=0,
                snapshot_id=snapshot_id,
                volume_type_id=volume.volume_type_id,
                created_at=now,
                data_timestamp=data_timestamp,
            )
            if placed and snapshot_id is None and volume.status == VolumeStatus.IN_USE:
                backup.temp_snapshot_id = self._temp_snapshot(s, ctx, volume, backup.id)
            lifecycle.insert(s, BACKUP["create"], backup)
            backup_rows.set_metadata(s, backup.id, metadata or {})
            if placed:
                self._queue(
                    s,
                    TaskKind.CREATE_BACKUP,
                    ResourceType.BACKUP,
                    backup.id,
                    host=volume.host,
                    zone=zone,
                )
                log.info("backup requested backup_id=%s volume_id=%s", backup.id, volume_id)
            else:
                _unplaced(s, backup)
            record = backup_record(s, backup)
        self._task_queued()
        return record

    def _temp_snapshot(
        self, s: Session, ctx: RequestContext, volume: Volume, backup_id: str
    ) -> str:
        """The snapshot an in-use volume's backup reads, so that it reads one
        moment of the volume: recorded here, made by the backup's task, and
        deleted when the backup ends, fails or is cancelled."""
        snapshot_id = str(uuid.uuid4())
        snapshot = Snapshot(
            id=snapshot_id,
            project_id=ctx.project_id,
            user_id=ctx.user_id,
            volume_id=volume.id,
            display_name=f"backup-{backup_id}",
            display_description=f"temporary snapshot of backup {backup_id}",
            size=volume.size,
            path=str(self.settings.resolved_volumes_dir / f"snapshot-{snapshot_id}.raw"),
            snapshot_metadata={},
            created_at=datetime.now(UTC),
        )
        lifecycle.insert(s, SNAPSHOT["create"], snapshot)
        return snapshot_id

    def create_volume_from_backup(
        self, ctx: RequestContext, backup_id: str, spec: NewVolume
    ) -> VolumeRecord:
        """A new volume holding the backup (Cinder's create from backup, 3.47):
        `creating` until its restore ends (CINDER-CONTRACT §2.6)."""
        ctx.authorize("volume:create")
        restore = self.restore_backup(ctx, backup_id, new_volume=spec)
        return self.get_volume(ctx, restore.volume_id)

    def get_backup(self, ctx: RequestContext, backup_id: str) -> BackupRecord:
        ctx.authorize("backup:get")
        with self.db.reading() as s:
            return backup_record(s, load_backup(s, ctx, backup_id))

    def list_backups(self, ctx: RequestContext, query: ListQuery) -> tuple[list[BackupRecord], int]:
        ctx.authorize("backup:get_all")
        with self.db.reading() as s:
            marker = None
            if query.marker is not None:
                marker = load_backup(s, ctx, query.marker)
            project = None if (ctx.is_admin and query.all_tenants) else ctx.project_id
            rows, total = backup_rows.list_backups(s, project, query, marker)
            return backup_records(s, rows), total

    def delete_backup(self, ctx: RequestContext, backup_id: str, *, force: bool = False) -> None:
        """D1; with `force` any status, and a running create or restore is cancelled
        (B6): its volume's status is settled here, its task stops at its next heartbeat."""
        ctx.authorize(FORCE_DELETE_RULE if force else "backup:delete")
        with self.db.transaction() as s:
            backup = load_backup(s, ctx, backup_id, lock=True)
            require_service(s, self.settings, host=None, zone=None)
            if not force and backup.status not in BACKUP["delete"].source:
                raise InvalidBackupState("Backup status must be available or error")
            if backup_rows.dependents_exist(s, backup_id):
                raise InvalidBackupState("Incremental backups exist for this backup.")
            if not lifecycle.apply(s, BACKUP["force_delete" if force else "delete"], backup_id):
                raise InvalidBackupState("Backup status must be available or error")
            settle_cancelled(
                s,
                backup,
                new_status=BackupStatus.DELETING,
                max_attempts=self.settings.max_attempts,
            )
            self._queue(s, TaskKind.DELETE_BACKUP, ResourceType.BACKUP, backup_id)
            log.info("backup delete requested backup_id=%s force=%s", backup_id, force)
        self._task_queued()

    def restore_backup(
        self,
        ctx: RequestContext,
        backup_id: str,
        *,
        volume_id: str | None = None,
        name: str | None = None,
        new_volume: NewVolume | None = None,
    ) -> RestoreRecord:
        """R1: onto `volume_id`, or onto a new volume (named `name`, or as
        `new_volume` says: a volume created from a backup, microversion 3.47)."""
        ctx.authorize("backup:restore")
        with self.db.transaction() as s:
            backup = load_backup(s, ctx, backup_id, lock=True)
            if backup.status != BackupStatus.AVAILABLE:
                raise InvalidBackupState("Backup status must be available")
            if volume_id is None:
                spec = new_volume or NewVolume(
                    name=name or f"restore_backup_{backup_id}",
                    description="auto-created_from_restore_from_backup",
                )
                size = spec.size if spec.size is not None else backup.size
                if size < backup.size:
                    raise InvalidVolume(
                        f"volume size {size} is too small to restore backup of size {backup.size}."
                    )
                volume = self.new_volume_row(
                    s,
                    ctx,
                    size=size,
                    name=spec.name,
                    description=spec.description,
                    metadata=spec.metadata,
                    availability_zone=spec.availability_zone,
                    volume_type=_restored_type(s, self.settings, backup),
                )
                is_new = True
            else:
                volume = load_volume(s, ctx, volume_id, lock=True)
                is_new = False
                if volume.status != VolumeStatus.AVAILABLE:
                    raise InvalidVolumeState("Volume to be restored to must be available")
                if backup.size > volume.size:
                    raise InvalidVolume(
                        f"volume size {volume.size} is too small to restore backup "
                        f"of size {backup.size}."
                    )
                lifecycle.apply(s, VOLUME["restore_start"], volume.id)
            require_service(s, self.settings, host=volume.host, zone=backup.availability_zone)
            lifecycle.apply(
                s, BACKUP["restore"], backup_id, values={"restore_volume_id": volume.id}
            )
            self._queue(
                s,
                TaskKind.RESTORE_BACKUP,
                ResourceType.BACKUP,
                backup_id,
                payload={"volume_id": volume.id, "volume_is_new": is_new},
                host=volume.host,
                zone=backup.availability_zone,
            )
            log.info("restore requested backup_id=%s volume_id=%s", backup_id, volume.id)
            restore = RestoreRecord(
                backup_id=backup_id, volume_id=volume.id, volume_name=volume.display_name
            )
        self._task_queued()
        return restore


def _restored_type(s: Session, settings: Settings, backup: Backup) -> VolumeType | None:
    """The type of a volume a restore creates: its backup's source type while it
    exists (so an encrypted backup restores, §3.9; Cinder gives such a volume the
    default type, and its restore then fails), else the default type."""
    source = backup.volume_type_id
    found = type_rows.get_type(s, source, lock="share") if source is not None else None
    return found or default_type(s, settings, lock="share")


def _unplaced(s: Session, backup: Backup) -> None:
    """B2: no live worker can take the create (CINDER-CONTRACT §2.2). The backup
    ends in error at once and its source gets its status back; unlike Cinder,
    a snapshot's too."""
    lifecycle.apply(
        s,
        BACKUP["create_failed"],
        backup.id,
        reason=NO_SERVICE_FOR_CREATE,
        detail=Detail.BACKUP_SCHEDULE_ERROR,
    )
    backup_rows.return_source(
        s, backup.volume_id, backup.snapshot_id, "backup_failed", VolumeStatus.ERROR_BACKING_UP
    )
    s.refresh(backup)
    log.info("backup not placed backup_id=%s reason=%s", backup.id, NO_SERVICE_FOR_CREATE)


def _backed_up_snapshot(
    s: Session, ctx: RequestContext, snapshot_id: str, volume_id: str
) -> Snapshot:
    """The snapshot a backup is made of (CINDER-CONTRACT §2.1 step 2): the
    volume's, and `available`; the volume's own status does not matter."""
    snapshot = load_snapshot(s, ctx, snapshot_id, lock=True)
    if snapshot.volume_id != volume_id:
        raise InvalidVolume(
            f"Volume {volume_id} does not match with snapshot.volume_id {snapshot.volume_id}."
        )
    if snapshot.status != SnapshotStatus.AVAILABLE:
        raise InvalidSnapshotState(
            "Snapshot to be backed up must be available, but the current status is "
            f'"{snapshot.status}".'
        )
    return snapshot


def _choose_parent(
    s: Session, volume_id: str, project_id: str, *, before: datetime | None = None
) -> str:
    """The newest available backup of the volume in the project (CINDER-CONTRACT §2.1),
    locked, so that no delete can start on it before this transaction ends. For a
    backup of a snapshot, only backups of data older than the snapshot count."""
    candidates = backup_rows.backups_of_volume(s, volume_id, project_id)
    if before is not None:
        candidates = [
            b for b in candidates if b.data_timestamp is not None and b.data_timestamp < before
        ]
    if not candidates:
        raise InvalidBackupState("No backups available to do an incremental backup.")
    latest = max(
        candidates,
        key=lambda b: (
            (b.data_timestamp or _EPOCH) if b.status == BackupStatus.AVAILABLE else _EPOCH
        ),
    )
    locked = backup_rows.lock_backup(s, latest.id)
    if locked is None or locked.status != BackupStatus.AVAILABLE:
        raise InvalidBackupState("No backups available to do an incremental backup.")
    return latest.id
