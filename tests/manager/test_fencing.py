"""The fencing token (a run's owner and attempt number): a run that lost its
task to another worker can neither commit nor write the backup's manifest,
and on PostgreSQL no worker can claim the task while its owner writes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ashbox.db import tasks as task_rows
from ashbox.db.engine import Database
from ashbox.errors import LeaseLost, ObjectNotFound
from ashbox.manager import dispatch
from ashbox.manager.job import Job
from ashbox.repository.manifest import manifest_key
from ashbox.statuses import BackupStatus, ResourceType, TaskKind
from tests.conftest import _fresh_postgres_database
from tests.harness import Harness

LEASE = 0.3


def _claimed_job(harness: Harness, owner: str, progress: Callable[[int, int], None]) -> Job:
    """The create task claimed by `owner` with a short lease, as a worker's Job."""
    host, zone = harness.worker.host, harness.settings.availability_zone
    with harness.db.transaction() as s:
        task = task_rows.claim_task(s, owner, host, LEASE, zone=zone)
        assert task is not None
        return Job(
            db=harness.db,
            settings=harness.settings,
            store=harness.worker.store,
            task_id=task.id,
            kind=TaskKind.CREATE_BACKUP,
            resource_type=ResourceType.BACKUP,
            resource_id=task.resource_id,
            payload={},
            attempts=task.attempts,
            max_attempts=task.max_attempts,
            owner=owner,
            worker_host=host,
            progress=progress,
            keys=harness.worker.keys,
            works_in=dispatch.HANDLERS[TaskKind.CREATE_BACKUP].works_in,
        )


def test_a_run_that_lost_its_task_mid_backup_writes_no_manifest(harness: Harness) -> None:
    data = os.urandom(512 * 1024)
    volume_id = harness.import_image("img", data)
    backup_id = harness.service.create_backup(harness.ctx, volume_id=volume_id).id
    host, zone = harness.worker.host, harness.settings.availability_zone
    taken: list[int] = []

    def stall_then_lose(done: int, total: int) -> None:
        """The stale run stalls past its lease, and another worker takes the task."""
        if taken:
            return
        time.sleep(LEASE + 0.2)
        with harness.db.transaction() as s:
            task = task_rows.claim_task(s, "successor/1/b", host, LEASE, zone=zone)
            assert task is not None
            taken.append(task.attempts)

    stale = _claimed_job(harness, "stale/1/a", stall_then_lose)
    with pytest.raises(LeaseLost):
        dispatch.run(stale)
    assert taken == [2]
    with pytest.raises(ObjectNotFound):  # the stale run's data is in, its manifest is not
        harness.worker.store.get(manifest_key("volumebackups", backup_id))
    assert harness.service.get_backup(harness.ctx, backup_id).status == BackupStatus.CREATING

    time.sleep(LEASE + 0.1)  # the successor dies too; this host's worker finishes the task
    assert harness.run_tasks() == 1
    backup = harness.service.get_backup(harness.ctx, backup_id)
    assert backup.status == BackupStatus.AVAILABLE
    restored = harness.service.restore_backup(harness.ctx, backup_id)
    harness.run_tasks()
    path = harness.service.get_volume(harness.ctx, restored.volume_id).path
    with open(path, "rb") as f:
        assert f.read(len(data)) == data


def test_on_postgresql_no_worker_claims_a_task_while_its_owner_writes(
    postgres_server: str, tmp_path: Path
) -> None:
    db = Database(_fresh_postgres_database(postgres_server))
    db.migrate()
    try:
        harness = Harness(db, tmp_path)
        volume_id = harness.import_image("img", os.urandom(64 * 1024))
        harness.service.create_backup(harness.ctx, volume_id=volume_id)
        owner = _claimed_job(harness, "owner/1/a", lambda done, total: None)
        time.sleep(LEASE + 0.1)  # its lease has run out: the task is up for a take-over
        host, zone = harness.worker.host, harness.settings.availability_zone
        with owner.fenced(), db.transaction() as s:
            assert task_rows.claim_task(s, "other/1/b", host, 60, zone=zone) is None
        with db.transaction() as s:
            assert task_rows.claim_task(s, "other/1/b", host, 60, zone=zone) is not None
        with pytest.raises(LeaseLost), owner.fenced():
            pass
    finally:
        db.dispose()
