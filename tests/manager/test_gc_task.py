"""The periodic gc runs as a task: queued once per container, run by any worker."""

from __future__ import annotations

import os

from ashbox.db import tasks as task_rows
from ashbox.manager.garbage import container_resource_id, queue_gc
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
