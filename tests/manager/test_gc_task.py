"""The periodic gc runs as a task: queued once per container, run by any worker."""

from __future__ import annotations

import os

import pytest

from ashbox.containers import open_repository
from ashbox.db import tasks as task_rows
from ashbox.errors import PackAbandoned
from ashbox.manager.garbage import collect, container_resource_id, queue_gc
from ashbox.repository.pack import pack_key
from ashbox.statuses import TaskState
from tests.harness import Harness


def test_a_gc_is_queued_once_per_container_and_run_as_a_task(harness: Harness) -> None:
    volume_id = harness.import_image("v.raw", os.urandom(300_000))
    harness.backup(volume_id)
    with harness.db.transaction() as s:
        assert queue_gc(s, "volumebackups", max_attempts=3)
        assert not queue_gc(s, "volumebackups", max_attempts=3)
    assert harness.run_tasks() == 1
    with harness.db.transaction() as s:
        tasks = task_rows.tasks_of(s, container_resource_id("volumebackups"))
        assert [t.state for t in tasks] == [TaskState.DONE]
        assert queue_gc(s, "volumebackups", max_attempts=3)


def test_gc_abandons_the_uploads_of_runs_whose_backup_ended_and_keeps_the_others(
    harness: Harness,
) -> None:
    """A run killed mid-upload, or late after losing its task, leaves a pending
    pack its backup's later runs may never discard: gc deletes it once the
    backup has ended, and leaves alone the packs of a backup being created.
    A gc killed mid-repack leaves one too: the next gc, the only one running,
    deletes it at once."""
    volume_id = harness.import_image("v.raw", os.urandom(300_000))
    ended = harness.backup(volume_id)
    running = harness.service.create_backup(harness.ctx, volume_id=volume_id).id
    store = harness.worker.store
    repo = open_repository(harness.settings, store, harness.db, "volumebackups")
    late, current, repack = "a" * 64, "b" * 64, "c" * 64
    for pack_id, owner in ((late, ended), (current, running), (repack, "gc-0123")):
        assert repo.index.begin_pack("volumebackups", pack_id, owner)
        store.put(pack_key("volumebackups", pack_id), b"uploaded, never committed")

    report = collect(harness.db, repo, 0.5)

    assert report is not None
    assert (report.abandoned_packs, report.deleted_packs) == (2, 2)
    assert [p.pack_id for p in repo.index.pending("volumebackups")] == [current]
    stored = {key.rsplit("/", 1)[1] for key in store.list("volumebackups/data/")}
    assert stored.isdisjoint({late, repack}) and current in stored
    with pytest.raises(PackAbandoned):
        repo.index.commit_pack("volumebackups", late, 26, [], ended)
