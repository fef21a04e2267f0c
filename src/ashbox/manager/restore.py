"""restore_backup: write a backup onto a volume (rows R2, R3, R5 of docs/states.md).

A new volume's file is created here, in the worker, not by the API. The
restored volume gets back the metadata its source had (CINDER-CONTRACT §5.5:
replaced, not merged) and `src_backup_id`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.orm import Session

from ashbox import faults, metrics
from ashbox.db import backups as backup_rows
from ashbox.db import lifecycle
from ashbox.db import volume_types as type_rows
from ashbox.db import volumes as volume_rows
from ashbox.db.models import Backup, Volume
from ashbox.errors import EncryptedBackupOperationFailed, VolumeIOError
from ashbox.manager.job import Job
from ashbox.repository.stats import logical_size
from ashbox.statuses import VolumeStatus
from ashbox.transitions import BACKUP, VOLUME
from ashbox.user_messages import Detail
from ashbox.volumes.file import probe_size
from ashbox.volumes.paths import holding_host
from ashbox.volumes.provisioning import ensure_volume_file

log = logging.getLogger(__name__)


def run_restore(job: Job) -> None:
    backup_id = job.resource_id
    volume_id = str(job.payload["volume_id"])
    is_new = bool(job.payload.get("volume_is_new"))
    expected_volume = VolumeStatus.CREATING if is_new else VolumeStatus.RESTORING_BACKUP
    with job.transaction() as s:
        backup = backup_rows.get_backup(s, backup_id)
        if not job.proceeds(s, backup):
            return
        assert backup is not None
        if backup.restore_volume_id != volume_id:
            job.finish(s, note=f"backup {backup_id} restores to another volume now")
            return
        volume = volume_rows.get_volume(s, volume_id)
        if volume is None or volume.status != expected_volume:
            # R5: the target is not what the request left; do not touch its bytes.
            state = volume.status if volume is not None else "deleted"
            reason = f"Volume {volume_id} to restore to is {state}, not {expected_volume}."
            lifecycle.apply(
                s,
                BACKUP["restore_failed"],
                backup_id,
                reason=reason,
                detail=Detail.VOLUME_INVALID_STATE,
                about=volume_id,
            )
            job.finish(s, failed=reason)
            return
        type_values = _encrypted_restore_type(s, backup, volume)
        container = backup.container or job.settings.default_container
        path = Path(volume.path)
        backup_key, old_key = backup.encryption_key_id, volume.encryption_key_id
    faults.point("restore.started")
    repo = job.repository(container)
    manifest = repo.read_manifest(backup_id)
    if is_new:
        ensure_volume_file(path, manifest.volume_size)
    elif probe_size(path) < manifest.volume_size:
        raise VolumeIOError(
            f"Volume {volume_id} holds {probe_size(path)} bytes, fewer than the "
            f"{manifest.volume_size} bytes of backup {backup_id}."
        )
    repo.restore(backup_id, path, new_volume=is_new, progress=job.progress, manifest=manifest)
    faults.point("restore.data_written")
    values: dict[str, object] = {
        "volume_metadata": {**manifest.metadata, "src_backup_id": backup_id},
        **type_values,
    }
    if is_new:  # its file is where this worker made it
        shared = job.settings.resolved_shared_volume_roots
        values["host"] = holding_host(path, job.worker_host, shared=shared)
    # An encrypted backup's volume gets a clone of the backup's key (§3.9),
    # in place of the key it had.
    new_key = job.keys.clone(backup_key) if backup_key is not None else None
    if new_key is not None:
        values["encryption_key_id"] = new_key
    with job.transaction() as s:
        done = lifecycle.apply(s, BACKUP["restore_done"], backup_id)
        if done:
            lifecycle.apply(s, VOLUME["restore_done"], volume_id, values=values)
        job.finish(s, note=None if done else "backup left restoring while it ran")
    replaced = old_key if done else new_key
    if new_key is not None and replaced is not None:
        job.keys.delete(replaced)
    metrics.RESTORE_DATA_BYTES.inc(logical_size(manifest))
    log.info("restore done backup_id=%s volume_id=%s", backup_id, volume_id)


def _encrypted_restore_type(s: Session, backup: Backup, volume: Volume) -> dict[str, object]:
    """§3.9: an encrypted backup goes only onto a volume of its source's type; a
    volume with no type takes that type (EncryptedBackupOperationFailed if it is
    gone). The fields the volume gets at the restore's end."""
    source, target = backup.volume_type_id, volume.volume_type_id
    if backup.encryption_key_id is None or source == target:
        return {}
    if target is not None:
        raise EncryptedBackupOperationFailed(
            f"The source volume type '{source}' is different than the destination "
            f"volume type '{target}'."
        )
    if source is None or type_rows.get_type(s, source) is None:
        raise EncryptedBackupOperationFailed(f"The source volume type '{source}' is not available.")
    return {"volume_type_id": source}


def fail_restore(job: Job, reason: str) -> None:
    """R3: the backup is available again, with the reason; the target is marked failed."""
    volume_id = str(job.payload["volume_id"])
    event = "restore_new_failed" if job.payload.get("volume_is_new") else "restore_failed"
    with job.transaction() as s:
        if lifecycle.apply(s, BACKUP["restore_failed"], job.resource_id, reason=reason):
            lifecycle.apply(s, VOLUME[event], volume_id, reason=reason)
        job.finish(s, failed=reason)
    log.info("restore failed backup_id=%s reason=%s", job.resource_id, reason)
