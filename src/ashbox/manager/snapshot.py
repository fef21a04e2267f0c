"""The snapshot tasks: make a snapshot's file from its volume's, and remove it."""

from __future__ import annotations

import logging
from pathlib import Path

from ashbox import faults
from ashbox.db import lifecycle
from ashbox.db import snapshots as snapshot_rows
from ashbox.db import volumes as volume_rows
from ashbox.errors import VolumeIOError
from ashbox.manager.job import Job
from ashbox.transitions import SNAPSHOT
from ashbox.volumes.provisioning import remove_volume_file
from ashbox.volumes.snapshot import copy_volume

log = logging.getLogger(__name__)


def run_create_snapshot(job: Job) -> None:
    with job.transaction() as s:
        snapshot = snapshot_rows.get_snapshot(s, job.resource_id)
        if not job.proceeds(s, snapshot):
            return
        assert snapshot is not None
        volume = volume_rows.get_volume(s, snapshot.volume_id)
        if volume is None:
            raise VolumeIOError(f"Volume {snapshot.volume_id} of the snapshot is gone.")
        source, target = Path(volume.path), Path(snapshot.path)
    how = copy_volume(source, target)
    faults.point("snapshot.file_created")
    with job.transaction() as s:
        lifecycle.apply(s, SNAPSHOT["create_done"], job.resource_id)
        job.finish(s)
    log.info("snapshot created snapshot_id=%s how=%s", job.resource_id, how)


def fail_create_snapshot(job: Job, reason: str) -> None:
    with job.transaction() as s:
        snapshot = snapshot_rows.get_snapshot(s, job.resource_id)
        failed = lifecycle.apply(s, SNAPSHOT["create_failed"], job.resource_id, reason=reason)
        job.finish(s, failed=reason)
    if failed and snapshot is not None:
        remove_volume_file(Path(snapshot.path))


def run_delete_snapshot(job: Job) -> None:
    with job.transaction() as s:
        snapshot = snapshot_rows.get_snapshot(s, job.resource_id)
        if not job.proceeds(s, snapshot):
            return
        assert snapshot is not None
        path = Path(snapshot.path)
    remove_volume_file(path)
    faults.point("snapshot.file_removed")
    with job.transaction() as s:
        lifecycle.apply(s, SNAPSHOT["delete_done"], job.resource_id)
        job.finish(s)
    log.info("snapshot deleted snapshot_id=%s", job.resource_id)


def fail_delete_snapshot(job: Job, reason: str) -> None:
    with job.transaction() as s:
        lifecycle.apply(s, SNAPSHOT["delete_failed"], job.resource_id, reason=reason)
        job.finish(s, failed=reason)
