"""Quotas hold under concurrency, on PostgreSQL as on SQLite: two creates that
race for the project's last free backup never both get it."""

from __future__ import annotations

import os
import threading

from ashbox.errors import QuotaExceeded
from ashbox.records import ListQuery
from tests.harness import Harness


def _race(harness: Harness, volumes: list[str]) -> list[str]:
    """Back up each volume at once; each outcome: a backup id or why not."""
    start = threading.Barrier(len(volumes))
    outcomes: list[str] = []

    def create(volume_id: str) -> None:
        start.wait()
        try:
            outcomes.append(harness.service.create_backup(harness.ctx, volume_id=volume_id).id)
        except QuotaExceeded as e:
            outcomes.append(e.message)

    threads = [threading.Thread(target=create, args=(v,)) for v in volumes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_two_creates_racing_for_the_last_backup_of_a_quota_get_it_once(harness: Harness) -> None:
    volumes = [harness.import_image(f"v{n}.raw", os.urandom(100_000)) for n in range(2)]
    harness.service.update_quotas(harness.ctx, harness.ctx.project_id, {"backups": 1})
    for round_ in range(6):
        outcomes = _race(harness, volumes)
        refused = [o for o in outcomes if o.startswith("BackupLimitExceeded")]
        assert len(refused) == 1, (round_, outcomes)
        harness.run_tasks()
        (made,) = harness.service.list_backups(harness.ctx, ListQuery())[0]
        harness.service.delete_backup(harness.ctx, made.id)
        harness.run_tasks()
        assert harness.service.list_backups(harness.ctx, ListQuery())[0] == []
