"""The deployment's exclusive locks (gc): one holder at a time, across
processes, and released when the holder is killed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from ashbox.db import tasks as task_rows
from ashbox.db.engine import Database
from ashbox.db.exclusive import GC_LOCK, exclusive
from ashbox.manager.garbage import container_resource_id, queue_gc
from ashbox.statuses import TaskState
from tests.harness import Harness


def test_one_holder_at_a_time(db: Database) -> None:
    with exclusive(db, GC_LOCK) as first:
        assert first
        with exclusive(db, GC_LOCK) as second:
            assert not second
        with exclusive(db, "other") as other:
            assert other
    with exclusive(db, GC_LOCK) as again:
        assert again


def test_a_killed_holder_leaves_the_lock_free(db: Database) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from ashbox.db.engine import Database
                from ashbox.db.exclusive import exclusive
                with exclusive(Database({db.url!r}), "gc") as held:
                    print(held, flush=True)
                    time.sleep(600)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        with exclusive(db, GC_LOCK) as held:
            assert not held
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    deadline = time.monotonic() + 10
    while True:  # the server notices the closed connection at once, or nearly
        with exclusive(db, GC_LOCK) as held:
            if held:
                break
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_gc_task_that_finds_another_gc_running_ends_doing_nothing(harness: Harness) -> None:
    harness.backup(harness.create_volume("v"))
    with harness.db.transaction() as s:
        assert queue_gc(s, "volumebackups", max_attempts=3)
    with exclusive(harness.db, GC_LOCK) as held:
        assert held
        assert harness.run_tasks() == 1
    with harness.db.reading() as s:
        (task,) = task_rows.tasks_of(s, container_resource_id("volumebackups"))
        assert (task.state, task.last_error) == (TaskState.DONE, "another gc is running")
