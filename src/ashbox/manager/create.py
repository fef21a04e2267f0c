"""create_backup: back a volume up into its container (rows B3 to B5 of docs/states.md)."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.orm import Session

from ashbox.db import backups as backup_rows
from ashbox.db import volumes as volume_rows
from ashbox.errors import KeyRequired, WrongKey
from ashbox.manager.job import SERVICE, Job
from ashbox.statuses import BackupStatus, VolumeStatus

log = logging.getLogger(__name__)


def run_create(job: Job) -> None:
    with job.db.transaction() as s:
        backup = backup_rows.get_backup(s, job.backup_id)
        if backup is None:
            log.info("backup gone before it started backup_id=%s", job.backup_id)
            return
        volume = volume_rows.get_volume(s, backup.volume_id)
        if (
            backup.status != BackupStatus.CREATING
            or volume is None
            or (volume.status != VolumeStatus.BACKING_UP)
        ):
            state = volume.status if volume is not None else "deleted"
            backup_rows.swap_backup_status(
                s,
                job.backup_id,
                [backup.status],
                BackupStatus.ERROR,
                fail_reason=(
                    f"Backup status must be creating and volume status backing-up, "
                    f"but they are {backup.status} and {state}."
                )[:255],
            )
            return
        container = backup.container or job.settings.default_container
        backup.container = container
        backup.host = job.worker_host
        backup.service = SERVICE
        backup.availability_zone = backup.availability_zone or job.settings.availability_zone
        backup.service_metadata = f"backups/{backup.id}"
        path, parent_id = Path(volume.path), backup.parent_id
        metadata = dict(volume.volume_metadata or {})
    stats = job.repository(container).backup(
        job.backup_id, path, parent_id=parent_id, metadata=metadata, progress=job.progress
    )
    with job.db.transaction() as s:
        done = backup_rows.swap_backup_status(
            s,
            job.backup_id,
            [BackupStatus.CREATING],
            BackupStatus.AVAILABLE,
            object_count=stats.packs,
            stored_size=stats.stored_bytes,
        )
        if done and parent_id is not None:
            backup_rows.change_dependents(s, parent_id, +1)
        _return_volume(s, backup.volume_id, previous_status=VolumeStatus.BACKING_UP)
    log.info(
        "backup done backup_id=%s stored_bytes=%d new_blobs=%d reused_blobs=%d",
        job.backup_id,
        stats.stored_bytes,
        stats.new_blobs,
        stats.reused_blobs,
    )


def fail_create(job: Job, reason: str) -> None:
    """B5: the backup ends in error and holds nothing; the volume gets its status back.

    The states change first: a store that fails during the cleanup leaves the
    backup's references for its later delete to release, never a stuck status.
    """
    with job.db.transaction() as s:
        backup = backup_rows.get_backup(s, job.backup_id)
        if backup is None:
            return
        container = backup.container or job.settings.default_container
        backup_rows.swap_backup_status(
            s,
            job.backup_id,
            [BackupStatus.CREATING],
            BackupStatus.ERROR,
            fail_reason=reason[:255],
        )
        _return_volume(s, backup.volume_id, previous_status=VolumeStatus.ERROR_BACKING_UP)
    log.info("backup failed backup_id=%s reason=%s", job.backup_id, reason)
    try:
        repo = job.repository(container)
    except (KeyRequired, WrongKey):
        return  # the backup could not open its repository, so wrote nothing to it
    repo.discard_incomplete(job.backup_id)
    repo.delete(job.backup_id)


def _return_volume(s: Session, volume_id: str, *, previous_status: VolumeStatus) -> None:
    volume = volume_rows.get_volume(s, volume_id)
    if volume is None or volume.status != VolumeStatus.BACKING_UP:
        return
    volume_rows.swap_volume_status(
        s,
        volume_id,
        [VolumeStatus.BACKING_UP],
        volume.previous_status or VolumeStatus.AVAILABLE,
        previous_status=previous_status,
    )
