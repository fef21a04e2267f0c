"""Which code runs, or fails, a task of each kind, and the status its resource keeps meanwhile."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ashbox.manager import garbage, snapshot, volume
from ashbox.manager.create import fail_create, run_create
from ashbox.manager.delete import fail_delete, run_delete
from ashbox.manager.importing import fail_import, run_import
from ashbox.manager.job import Job
from ashbox.manager.restore import fail_restore, run_restore
from ashbox.statuses import BackupStatus, SnapshotStatus, TaskKind, VolumeStatus


@dataclass(frozen=True, slots=True)
class Handler:
    run: Callable[[Job], None]
    fail: Callable[[Job, str], None]
    works_in: str | None
    """The status the task's resource keeps while it runs: a change (force
    delete, reset) cancels the run at its next heartbeat. None: the resource
    has no status (a container)."""


HANDLERS: dict[TaskKind, Handler] = {
    TaskKind.CREATE_BACKUP: Handler(run_create, fail_create, BackupStatus.CREATING),
    TaskKind.RESTORE_BACKUP: Handler(run_restore, fail_restore, BackupStatus.RESTORING),
    TaskKind.DELETE_BACKUP: Handler(run_delete, fail_delete, BackupStatus.DELETING),
    TaskKind.IMPORT_BACKUP: Handler(run_import, fail_import, BackupStatus.CREATING),
    TaskKind.CREATE_VOLUME: Handler(
        volume.run_create_volume, volume.fail_create_volume, VolumeStatus.CREATING
    ),
    TaskKind.MANAGE_VOLUME: Handler(
        volume.run_manage_volume, volume.fail_manage_volume, VolumeStatus.MANAGING
    ),
    TaskKind.DELETE_VOLUME: Handler(
        volume.run_delete_volume, volume.fail_delete_volume, VolumeStatus.DELETING
    ),
    TaskKind.CREATE_SNAPSHOT: Handler(
        snapshot.run_create_snapshot, snapshot.fail_create_snapshot, SnapshotStatus.CREATING
    ),
    TaskKind.DELETE_SNAPSHOT: Handler(
        snapshot.run_delete_snapshot, snapshot.fail_delete_snapshot, SnapshotStatus.DELETING
    ),
    TaskKind.COLLECT_GARBAGE: Handler(garbage.run_gc, garbage.fail_gc, None),
}


def run(job: Job) -> None:
    HANDLERS[job.kind].run(job)


def fail(job: Job, reason: str) -> None:
    """Leave the states the task's failure row of docs/states.md says, and end the task."""
    HANDLERS[job.kind].fail(job, reason)
