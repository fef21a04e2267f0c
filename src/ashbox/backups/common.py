"""What the backup API's operations share: loading what a request may see,
records for the API, and settling what a cancel leaves."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ashbox.backups.access import scope
from ashbox.db import backups as backup_rows
from ashbox.db import lifecycle
from ashbox.db import snapshots as snapshot_rows
from ashbox.db import tasks as task_rows
from ashbox.db.models import Backup
from ashbox.errors import BackupNotFound
from ashbox.records import BackupRecord, Progress, RequestContext
from ashbox.statuses import TRANSITIONAL_BACKUP, BackupStatus, VolumeStatus
from ashbox.transitions import SNAPSHOT, VOLUME


def settle_cancelled(s: Session, backup: Backup, *, new_status: str, max_attempts: int) -> None:
    """The volume of a create or restore that a force delete or a reset cancels
    gets its end status now, in the transaction that cancels (B6, R4), and a
    create's temporary snapshot is deleted; the running task only stops."""
    if backup.status == BackupStatus.CREATING and backup.temp_snapshot_id is not None:
        snapshot_rows.discard_snapshot(s, backup.temp_snapshot_id, max_attempts=max_attempts)
    if backup.status == BackupStatus.CREATING and backup.snapshot_id is not None:
        lifecycle.apply(s, SNAPSHOT["backup_end"], backup.snapshot_id)
    elif backup.status == BackupStatus.CREATING:
        event = "backup_failed" if new_status == BackupStatus.ERROR else "backup_end"
        previous = (
            VolumeStatus.ERROR_BACKING_UP if event == "backup_failed" else VolumeStatus.BACKING_UP
        )
        lifecycle.apply(s, VOLUME[event], backup.volume_id, values={"previous_status": previous})
    elif backup.status == BackupStatus.RESTORING and backup.restore_volume_id is not None:
        reason = f"The restore of backup {backup.id} was cancelled."
        lifecycle.apply(s, VOLUME["restore_cancelled"], backup.restore_volume_id, reason=reason)


def load_backup(s: Session, ctx: RequestContext, backup_id: str, *, lock: bool = False) -> Backup:
    """The backup the request may see (locked with `lock`); BackupNotFound otherwise."""
    backup = backup_rows.lock_backup(s, backup_id) if lock else backup_rows.get_backup(s, backup_id)
    if backup is None or scope(ctx) not in (None, backup.project_id):
        raise BackupNotFound(backup_id)
    return backup


def backup_record(s: Session, backup: Backup) -> BackupRecord:
    return backup_records(s, [backup])[0]


def backup_records(s: Session, backups: list[Backup]) -> list[BackupRecord]:
    ids = [b.id for b in backups]
    metadata = backup_rows.metadata_of(s, ids)
    progress = task_rows.progress_of(s, ids)
    busy = [b.id for b in backups if b.status in TRANSITIONAL_BACKUP]
    queued = task_rows.queued_of(s, busy)
    out = []
    for b in backups:
        # A task's last steps (recording its end) follow the backup's new
        # status: its progress only means something while the backup is busy.
        p = progress.get(b.id) if b.status in TRANSITIONAL_BACKUP else None
        out.append(
            BackupRecord(
                id=b.id,
                project_id=b.project_id,
                user_id=b.user_id,
                volume_id=b.volume_id,
                name=b.display_name,
                description=b.display_description,
                status=b.status,
                size=b.size,
                container=b.container,
                availability_zone=b.availability_zone,
                parent_id=b.parent_id,
                fail_reason=b.fail_reason,
                object_count=b.object_count,
                num_dependent_backups=b.num_dependent_backups,
                snapshot_id=b.snapshot_id,
                data_timestamp=b.data_timestamp,
                restore_volume_id=b.restore_volume_id,
                encryption_key_id=b.encryption_key_id,
                host=b.host,
                service=b.service,
                stored_size=b.stored_size,
                created_at=b.created_at,
                updated_at=b.updated_at,
                metadata=metadata[b.id],
                progress=Progress(p[0], p[1]) if p else None,
                queued=b.id in queued,
            )
        )
    return out


UNCHANGED = object()
"""A field an update leaves as it is (None sets it to null)."""


def display_fields(*, name: object, description: object) -> dict[str, object]:
    """The display columns an update of `name` and `description` sets."""
    given = {"display_name": name, "display_description": description}
    return {column: value for column, value in given.items() if value is not UNCHANGED}
