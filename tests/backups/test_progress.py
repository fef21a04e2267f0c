"""A backup's progress is its running task's, and only while the backup is busy."""

from __future__ import annotations

from ashbox.db import tasks as task_rows
from ashbox.db.models import Backup
from ashbox.records import Progress
from ashbox.statuses import BackupStatus
from tests.harness import Harness


def test_progress_shows_while_the_backup_is_busy_and_not_once_it_is_done(
    harness: Harness,
) -> None:
    volume_id = harness.create_volume("v")
    backup_id = harness.service.create_backup(harness.ctx, volume_id=volume_id, name="b").id
    with harness.db.transaction() as s:
        host, zone = harness.worker.host, harness.settings.availability_zone
        task = task_rows.claim_task(s, "w1", host, 60, zone=zone)
        assert task is not None
        assert task_rows.renew_lease(s, task.id, "w1", 1, 60, done_bytes=5, total_bytes=10)
    assert harness.service.get_backup(harness.ctx, backup_id).progress == Progress(5, 10)
    # The backup is done; its task not yet recorded so.
    harness.force_status(Backup, backup_id, BackupStatus.AVAILABLE)
    shown = harness.service.get_backup(harness.ctx, backup_id)
    assert shown.status == BackupStatus.AVAILABLE and shown.progress is None


def test_a_backup_is_queued_until_a_worker_claims_its_task(harness: Harness) -> None:
    volume_id = harness.create_volume("v")
    backup_id = harness.service.create_backup(harness.ctx, volume_id=volume_id).id
    assert harness.service.get_backup(harness.ctx, backup_id).queued
    with harness.db.transaction() as s:
        host, zone = harness.worker.host, harness.settings.availability_zone
        assert task_rows.claim_task(s, "w1", host, 60, zone=zone) is not None
    shown = harness.service.get_backup(harness.ctx, backup_id)
    assert shown.status == BackupStatus.CREATING and not shown.queued
