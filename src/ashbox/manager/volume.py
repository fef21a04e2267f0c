"""The volume tasks: create a volume's file, manage an existing file, delete.

The API records these requests; only here, in a worker, is a volume file
created, probed or removed.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from ashbox import faults
from ashbox.db import lifecycle
from ashbox.db import volume_types as type_rows
from ashbox.db import volumes as volume_rows
from ashbox.errors import InvalidVolume
from ashbox.manager.job import Job
from ashbox.transitions import VOLUME
from ashbox.volumes.file import probe_size
from ashbox.volumes.paths import holding_host, manageable_path
from ashbox.volumes.provisioning import ensure_volume_file, remove_volume_file

log = logging.getLogger(__name__)

GiB = 1024**3


def run_create_volume(job: Job) -> None:
    """Make the volume's sparse file; a volume of an encrypted type also gets a
    key of its own (a crash before the end leaves that key unused)."""
    with job.transaction() as s:
        volume = volume_rows.get_volume(s, job.resource_id)
        if not job.proceeds(s, volume):
            return
        assert volume is not None
        path, size = Path(volume.path), volume.size
        encrypted = volume.volume_type_id is not None and (
            type_rows.encryption_of(s, volume.volume_type_id) is not None
        )
        needs_key = encrypted and volume.encryption_key_id is None
    ensure_volume_file(path, size * GiB)
    faults.point("volume.file_created")
    values: dict[str, object] = {}
    if needs_key:
        values["encryption_key_id"] = job.keys.create_key()
    with job.transaction() as s:
        values["host"] = holding_host(
            path, job.worker_host, shared=job.settings.resolved_shared_volume_roots
        )
        lifecycle.apply(s, VOLUME["create_done"], job.resource_id, values=values)
        job.finish(s)
    log.info("volume created volume_id=%s size=%d", job.resource_id, size)


def fail_create_volume(job: Job, reason: str) -> None:
    with job.transaction() as s:
        volume = volume_rows.get_volume(s, job.resource_id)
        failed = lifecycle.apply(s, VOLUME["create_failed"], job.resource_id, reason=reason)
        job.finish(s, failed=reason)
    if failed and volume is not None and volume.managed_file:
        remove_volume_file(Path(volume.path))


def run_manage_volume(job: Job) -> None:
    """Resolve and check the path, probe its size, and take it in place."""
    with job.transaction() as s:
        volume = volume_rows.get_volume(s, job.resource_id)
        if not job.proceeds(s, volume):
            return
        assert volume is not None
        asked = volume.path
    settings = job.settings
    real = manageable_path(
        asked, roots=settings.resolved_volume_roots, reserved=settings.reserved_paths
    )
    size_bytes = probe_size(real)
    with job.transaction() as s:
        other = volume_rows.volume_with_path(s, str(real), excluding=job.resource_id)
        if other is not None:
            raise InvalidVolume(f"{real} is already managed as volume {other.id}.")
        lifecycle.apply(
            s,
            VOLUME["manage_done"],
            job.resource_id,
            values={"path": str(real), "size": max(1, math.ceil(size_bytes / GiB))},
        )
        job.finish(s)
    log.info("volume managed volume_id=%s path=%s", job.resource_id, real)


def fail_manage_volume(job: Job, reason: str) -> None:
    with job.transaction() as s:
        lifecycle.apply(s, VOLUME["manage_failed"], job.resource_id, reason=reason)
        job.finish(s, failed=reason)
    log.info("volume manage failed volume_id=%s reason=%s", job.resource_id, reason)


def run_delete_volume(job: Job) -> None:
    """Remove the file if ashbox created it; a managed file stays. Backups stay."""
    with job.transaction() as s:
        volume = volume_rows.get_volume(s, job.resource_id)
        if not job.proceeds(s, volume):
            return
        assert volume is not None
        path, managed_file = Path(volume.path), volume.managed_file
    if managed_file:
        remove_volume_file(path)
        faults.point("volume.file_removed")
    with job.transaction() as s:
        lifecycle.apply(s, VOLUME["delete_done"], job.resource_id)
        job.finish(s)
    log.info("volume deleted volume_id=%s", job.resource_id)


def fail_delete_volume(job: Job, reason: str) -> None:
    with job.transaction() as s:
        lifecycle.apply(s, VOLUME["delete_failed"], job.resource_id, reason=reason)
        job.finish(s, failed=reason)
