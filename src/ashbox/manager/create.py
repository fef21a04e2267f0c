"""create_backup: back a volume up into its container (rows B3 to B5 of docs/states.md)."""

from __future__ import annotations

import logging
from pathlib import Path

from ashbox import faults, metrics
from ashbox.containers import SERVICE
from ashbox.db import backups as backup_rows
from ashbox.db import lifecycle, stored_bytes
from ashbox.db import snapshots as snapshot_rows
from ashbox.db import volumes as volume_rows
from ashbox.db.backup_records import record_of
from ashbox.db.models import Snapshot, Volume
from ashbox.errors import KeyRequired, VolumeIOError, WrongKey
from ashbox.manager.job import Job
from ashbox.statuses import ResourceType, SnapshotStatus, VolumeStatus
from ashbox.transitions import BACKUP, SNAPSHOT
from ashbox.user_messages import Detail
from ashbox.volumes.snapshot import copy_volume

log = logging.getLogger(__name__)


def run_create(job: Job) -> None:
    backup_id = job.resource_id
    with job.transaction() as s:
        backup = backup_rows.get_backup(s, backup_id)
        if not job.proceeds(s, backup):
            return
        assert backup is not None
        volume = volume_rows.get_volume(s, backup.volume_id)
        snapshot = snapshot_rows.get_snapshot(s, backup.snapshot_id) if backup.snapshot_id else None
        source_status = _source_status(backup.snapshot_id, volume, snapshot)
        if source_status != "backing-up":
            # B3: the source is not what the request left; its status stays.
            reason = (
                "Backup status must be creating and its source's status backing-up, "
                f"but they are {backup.status} and {source_status}."
            )
            lifecycle.apply(
                s,
                BACKUP["create_failed"],
                backup_id,
                reason=reason,
                detail=Detail.BACKUP_INVALID_STATE,
            )
            job.finish(s, failed=reason)
            return
        assert volume is not None
        container = backup.container or job.settings.default_container
        backup_rows.set_backup_fields(
            s,
            backup_id,
            container=container,
            host=job.worker_host,
            service=SERVICE,
            availability_zone=backup.availability_zone or job.settings.availability_zone,
            service_metadata=f"backups/{backup_id}",
        )
        path = Path(snapshot.path if snapshot is not None else volume.path)
        parent_id, volume_id, snapshot_id = backup.parent_id, volume.id, backup.snapshot_id
        metadata = dict(volume.volume_metadata or {})
        temp_id = backup.temp_snapshot_id
        temp = snapshot_rows.get_snapshot(s, temp_id) if temp_id is not None else None
        volume_key = volume.encryption_key_id if backup.encryption_key_id is None else None
    if volume_key is not None:
        _clone_key(job, backup_id, volume_key)
    if temp is not None:
        path = _take_temp_snapshot(job, path, temp.id, Path(temp.path))
    faults.point("create.placed")
    repo = job.repository(container)
    stats = repo.backup(
        backup_id,
        path,
        parent_id=parent_id,
        metadata=metadata,
        progress=job.progress,
        fenced=job.fenced,
    )
    faults.point("create.data_written")
    with job.transaction() as s:
        backup = backup_rows.get_backup(s, backup_id)
        record = record_of(s, backup) if backup is not None else None
        stored = stored_bytes.of_backup(s, backup_id, backup.project_id) if backup else 0
    if record is not None:
        record.update(object_count=stats.packs, stored_size=stored)
        repo.put_record(record)
    with job.transaction() as s:
        done = lifecycle.apply(
            s,
            BACKUP["create_done"],
            backup_id,
            values={"object_count": stats.packs, "stored_size": stored},
        )
        if done:
            if parent_id is not None:
                backup_rows.change_dependents(s, parent_id, +1)
            backup_rows.return_source(
                s, volume_id, snapshot_id, "backup_end", VolumeStatus.BACKING_UP
            )
            if temp is not None:
                snapshot_rows.discard_snapshot(s, temp.id, max_attempts=job.max_attempts)
        job.finish(s, note=None if done else "backup left creating while it ran")
    metrics.count_backup(stats, repo.block_size)
    log.info(
        "backup done backup_id=%s stored_bytes=%d new_blobs=%d reused_blobs=%d",
        backup_id,
        stats.stored_bytes,
        stats.new_blobs,
        stats.reused_blobs,
    )


def _clone_key(job: Job, backup_id: str, volume_key: str) -> None:
    """B3b: the backup of an encrypted volume holds a clone of the volume's key
    (CINDER-CONTRACT §3.9), made once: a re-run finds it recorded. A failure
    (KeyManagerError) fails the backup."""
    clone = job.keys.clone(volume_key)
    with job.transaction() as s:
        recorded = backup_rows.set_key_if_unset(s, backup_id, clone)
    if not recorded:
        job.keys.delete(clone)


def fail_create(job: Job, reason: str) -> None:
    """B5: the backup ends in error and holds nothing; the volume gets its status back.

    The states change first: a store that fails during the cleanup leaves the
    backup's references for its later delete to release, never a stuck status.
    """
    with job.transaction() as s:
        backup = backup_rows.get_backup(s, job.resource_id)
        failed = lifecycle.apply(s, BACKUP["create_failed"], job.resource_id, reason=reason)
        if failed and backup is not None and backup.temp_snapshot_id is not None:
            snapshot_rows.discard_snapshot(
                s, backup.temp_snapshot_id, max_attempts=job.max_attempts
            )
        if failed and backup is not None:
            backup_rows.return_source(
                s,
                backup.volume_id,
                backup.snapshot_id,
                "backup_failed",
                VolumeStatus.ERROR_BACKING_UP,
            )
        job.finish(s, failed=reason)
    log.info("backup failed backup_id=%s reason=%s", job.resource_id, reason)
    faults.point("create.failed")
    if not failed or backup is None:
        return
    try:
        repo = job.repository(backup.container or job.settings.default_container)
    except (KeyRequired, WrongKey):
        return  # the backup could not open its repository, so wrote nothing to it
    repo.delete(job.resource_id)


def _take_temp_snapshot(job: Job, volume: Path, snapshot_id: str, target: Path) -> Path:
    """The file of the temporary snapshot an in-use volume's backup reads (made
    now, or by an earlier run of this task)."""
    with job.transaction() as s:
        status = lifecycle.status_of(s, ResourceType.SNAPSHOT, snapshot_id)
    if status == SnapshotStatus.CREATING:
        copy_volume(volume, target)
        with job.transaction() as s:
            lifecycle.apply(s, SNAPSHOT["create_done"], snapshot_id)
            lifecycle.apply(s, SNAPSHOT["backup_start"], snapshot_id)
    elif status != SnapshotStatus.BACKING_UP:
        raise VolumeIOError(f"The temporary snapshot {snapshot_id} of the backup is {status}.")
    return target


def _source_status(
    snapshot_id: str | None, volume: Volume | None, snapshot: Snapshot | None
) -> str:
    if snapshot_id is None:
        return volume.status if volume is not None else "deleted"
    if volume is None:
        return "a deleted volume"
    return snapshot.status if snapshot is not None else "deleted"
