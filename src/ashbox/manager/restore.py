"""restore_backup: write a backup onto a volume (rows R2, R3, R5, R6 of docs/states.md)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy.orm import Session

from ashbox.db import backups as backup_rows
from ashbox.db import volumes as volume_rows
from ashbox.errors import InvalidVolume
from ashbox.manager.job import Job
from ashbox.statuses import BackupStatus, VolumeStatus
from ashbox.volumes.file import probe_size

log = logging.getLogger(__name__)


def run_restore(job: Job) -> None:
    assert job.volume_id is not None
    expected_volume = VolumeStatus.CREATING if job.volume_is_new else VolumeStatus.RESTORING_BACKUP
    with job.db.transaction() as s:
        backup = backup_rows.get_backup(s, job.backup_id)
        volume = volume_rows.get_volume(s, job.volume_id)
        if volume is None or volume.status != expected_volume:
            # R5: the target is not what the request left; do not touch its bytes.
            backup_rows.swap_backup_status(
                s, job.backup_id, [BackupStatus.RESTORING], BackupStatus.AVAILABLE
            )
            _end_volume(s, job, failed=True)
            return
        if backup is None or backup.status != BackupStatus.RESTORING:
            # R6
            if backup is not None:
                backup_rows.swap_backup_status(
                    s,
                    job.backup_id,
                    [backup.status],
                    BackupStatus.ERROR,
                    fail_reason="Backup status must be restoring when the restore starts.",
                )
            volume_rows.swap_volume_status(s, volume.id, [expected_volume], VolumeStatus.ERROR)
            return
        container = backup.container or job.settings.default_container
        path = Path(volume.path)
    repo = job.repository(container)
    source_size = repo.read_manifest(job.backup_id).volume_size
    if job.volume_is_new:
        os.truncate(path, source_size)
    elif probe_size(path) < source_size:
        raise InvalidVolume(
            f"volume {job.volume_id} holds {probe_size(path)} bytes, fewer than the "
            f"{source_size} bytes of backup {job.backup_id}."
        )
    repo.restore(job.backup_id, path, new_volume=job.volume_is_new, progress=job.progress)
    with job.db.transaction() as s:
        backup_rows.swap_backup_status(
            s, job.backup_id, [BackupStatus.RESTORING], BackupStatus.AVAILABLE
        )
        _end_volume(s, job, failed=False)
    log.info("restore done backup_id=%s volume_id=%s", job.backup_id, job.volume_id)


def fail_restore(job: Job, reason: str) -> None:
    """R3: the backup is available again; the target volume is marked failed."""
    with job.db.transaction() as s:
        backup_rows.swap_backup_status(
            s, job.backup_id, [BackupStatus.RESTORING], BackupStatus.AVAILABLE
        )
        _end_volume(s, job, failed=True)
    log.info("restore failed backup_id=%s reason=%s", job.backup_id, reason)


def _end_volume(s: Session, job: Job, *, failed: bool) -> None:
    assert job.volume_id is not None
    if not failed:
        volume = volume_rows.get_volume(s, job.volume_id)
        if volume is None:
            return
        metadata = dict(volume.volume_metadata or {})
        metadata["src_backup_id"] = job.backup_id
        volume_rows.swap_volume_status(
            s,
            job.volume_id,
            [VolumeStatus.CREATING, VolumeStatus.RESTORING_BACKUP],
            VolumeStatus.AVAILABLE,
            volume_metadata=metadata,
        )
    elif job.volume_is_new:
        volume_rows.swap_volume_status(
            s, job.volume_id, [VolumeStatus.CREATING], VolumeStatus.ERROR
        )
    else:
        volume_rows.swap_volume_status(
            s, job.volume_id, [VolumeStatus.RESTORING_BACKUP], VolumeStatus.ERROR_RESTORING
        )
