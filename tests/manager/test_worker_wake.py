"""A worker woken by the service starts a queued task at once, not at its next poll."""

from __future__ import annotations

import time
from pathlib import Path

from ashbox.backups.service import Service
from ashbox.db.engine import Database
from ashbox.statuses import BackupStatus
from ashbox.worker.runner import Worker
from tests.harness import Harness


def test_a_woken_worker_claims_a_new_task_well_before_its_poll(
    db: Database, tmp_path: Path
) -> None:
    harness = Harness(db, tmp_path, poll_seconds=30.0)
    worker = Worker(db, harness.settings)
    service = Service(db, harness.settings, task_queued=worker.wake)
    volume = harness.import_image("v.raw", b"x" * 100_000)
    worker.start()
    try:
        time.sleep(0.2)  # the claimer is now waiting out its 30 s poll
        backup = service.create_backup(harness.ctx, volume_id=volume)
        deadline = time.monotonic() + 10
        while service.get_backup(harness.ctx, backup.id).status == BackupStatus.CREATING:
            assert time.monotonic() < deadline, "the woken worker did not start the task"
            time.sleep(0.05)
        assert service.get_backup(harness.ctx, backup.id).status == BackupStatus.AVAILABLE
    finally:
        worker.stop()
