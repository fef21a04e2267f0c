"""collect_garbage: the periodic gc of one container, as a task.

As a task it has a lease, survives its worker, and is queued once at a time
per container: its resource is the container (an id derived from its name).
One gc runs at a time in the whole deployment, whoever runs it (a worker's
task, `ashbox repo gc`): it holds the deployment's gc lock (ashbox.db.exclusive),
and a gc task that finds it taken ends at once, for the next interval to retry.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.orm import Session

from ashbox.db import backups as backup_rows
from ashbox.db import tasks as task_rows
from ashbox.db.engine import Database
from ashbox.db.exclusive import GC_LOCK, exclusive
from ashbox.manager.job import Job
from ashbox.repository.gc import GcReport, collect_garbage
from ashbox.repository.repository import Repository
from ashbox.statuses import ResourceType, TaskKind

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6f1c8d1e-2a7b-4c55-9d0e-8a4b5c1d2e3f")


def container_resource_id(container: str) -> str:
    """The task resource id of a container (names may be longer than an id)."""
    return str(uuid.uuid5(_NAMESPACE, container))


def queue_gc(s: Session, container: str, *, max_attempts: int) -> bool:
    """Queue a gc of `container` unless one is queued or running already."""
    resource_id = container_resource_id(container)
    if task_rows.open_tasks_of(s, resource_id):
        return False
    task_rows.add_task(
        s,
        TaskKind.COLLECT_GARBAGE,
        ResourceType.CONTAINER,
        resource_id,
        max_attempts=max_attempts,
        payload={"container": container},
    )
    return True


def collect(db: Database, repo: Repository, fraction: float) -> GcReport | None:
    """One gc of `repo`'s container under the deployment's gc lock (None if
    another gc holds it), so the packs an earlier collector began and never
    committed are abandoned at once; the database tells which backups may
    still write, so those the others began and never committed are too."""

    def writing(backup_ids: set[str]) -> set[str]:
        with db.reading() as s:
            return backup_rows.being_created(s, backup_ids)

    with exclusive(db, GC_LOCK) as held:
        if not held:
            return None
        return collect_garbage(repo, repack_live_fraction=fraction, writing=writing, sole=True)


def run_gc(job: Job) -> None:
    container = str(job.payload["container"])
    report = collect(job.db, job.repository(container), job.settings.gc_repack_live_fraction)
    if report is None:
        with job.transaction() as s:
            job.finish(s, note="another gc is running")
        log.info("gc skipped container=%s: another gc is running", container)
        return
    with job.transaction() as s:
        job.finish(s)
    log.info("gc done container=%s report=%s", container, report)


def fail_gc(job: Job, reason: str) -> None:
    with job.transaction() as s:
        job.finish(s, failed=reason)
