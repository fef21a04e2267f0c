"""Checks that span rows hold under concurrency, on PostgreSQL as on SQLite: an
incremental never takes as parent a backup whose delete is starting."""

from __future__ import annotations

import os
import threading

from ashbox.errors import AshboxError
from ashbox.records import ListQuery
from tests.harness import Harness


def _race(harness: Harness, volume_id: str, parent: str) -> dict[str, str]:
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def incremental() -> None:
        start.wait()
        try:
            made = harness.service.create_backup(harness.ctx, volume_id=volume_id, incremental=True)
            outcomes["incremental"] = made.id
        except AshboxError as e:
            outcomes["incremental"] = e.message

    def delete() -> None:
        start.wait()
        try:
            harness.service.delete_backup(harness.ctx, parent)
            outcomes["delete"] = "ok"
        except AshboxError as e:
            outcomes["delete"] = e.message

    threads = [threading.Thread(target=incremental), threading.Thread(target=delete)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_an_incremental_never_depends_on_a_backup_being_deleted(harness: Harness) -> None:
    volume_id = harness.import_image("v.raw", os.urandom(200_000))
    for _ in range(8):
        parent = harness.backup(volume_id)
        outcomes = _race(harness, volume_id, parent)
        harness.run_tasks()
        backups = {b.id: b for b in harness.service.list_backups(harness.ctx, ListQuery())[0]}
        for backup in backups.values():
            if backup.parent_id is not None:
                assert backup.parent_id in backups, (outcomes, backup.id)
        if outcomes["delete"] == "ok":
            assert parent not in backups
            assert all(b.parent_id != parent for b in backups.values())
