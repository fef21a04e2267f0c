"""Which code runs, or fails, a task of each kind."""

from __future__ import annotations

from collections.abc import Callable

from ashbox.manager.create import fail_create, run_create
from ashbox.manager.delete import fail_delete, run_delete
from ashbox.manager.job import Job
from ashbox.manager.restore import fail_restore, run_restore
from ashbox.statuses import TaskKind

_RUN: dict[TaskKind, Callable[[Job], None]] = {
    TaskKind.CREATE_BACKUP: run_create,
    TaskKind.RESTORE_BACKUP: run_restore,
    TaskKind.DELETE_BACKUP: run_delete,
}
_FAIL: dict[TaskKind, Callable[[Job, str], None]] = {
    TaskKind.CREATE_BACKUP: fail_create,
    TaskKind.RESTORE_BACKUP: fail_restore,
    TaskKind.DELETE_BACKUP: fail_delete,
}


def run(job: Job) -> None:
    _RUN[job.kind](job)


def fail(job: Job, reason: str) -> None:
    """Leave the states the task's failure row of docs/states.md says."""
    _FAIL[job.kind](job, reason)
