"""The task queue in the database: create, claim with a lease, heartbeat, finish.

DESIGN.md §2: a task row is created in the transaction that changes the
status; a worker claims it by taking a lease, renews the lease while it runs,
and any worker takes over a task whose lease expired. PostgreSQL claims with
`FOR UPDATE SKIP LOCKED`; SQLite's BEGIN IMMEDIATE serialises claimers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ashbox.db.models import Task
from ashbox.statuses import TaskKind, TaskState


def add_task(
    s: Session,
    kind: TaskKind,
    backup_id: str,
    *,
    max_attempts: int,
    volume_id: str | None = None,
    volume_is_new: bool = False,
    pinned_host: str | None = None,
) -> Task:
    task = Task(
        id=str(uuid.uuid4()),
        kind=kind,
        state=TaskState.PENDING,
        backup_id=backup_id,
        volume_id=volume_id,
        volume_is_new=volume_is_new,
        pinned_host=pinned_host,
        max_attempts=max_attempts,
        attempts=0,
        done_bytes=0,
        total_bytes=0,
    )
    s.add(task)
    s.flush()
    return task


def claim_task(
    s: Session,
    owner: str,
    host: str,
    lease_seconds: float,
    *,
    reclaimable_owners: Iterable[str] = (),
) -> Task | None:
    """Lease the oldest runnable task to `owner`: pending, or running with an expired
    lease, or running under one of `reclaimable_owners` (dead processes of this host).
    The claim counts as an attempt."""
    now = datetime.now(UTC)
    runnable = [
        Task.state == TaskState.PENDING,
        (Task.state == TaskState.RUNNING) & (Task.lease_expires_at < now),
    ]
    dead = list(reclaimable_owners)
    if dead:
        runnable.append((Task.state == TaskState.RUNNING) & Task.lease_owner.in_(dead))
    stmt = (
        select(Task)
        .where(or_(*runnable))
        .where(or_(Task.pinned_host.is_(None), Task.pinned_host == host))
        .order_by(Task.created_at, Task.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    task = s.scalar(stmt)
    if task is None:
        return None
    task.state = TaskState.RUNNING
    task.lease_owner = owner
    task.lease_expires_at = now + timedelta(seconds=lease_seconds)
    task.attempts += 1
    s.flush()
    return task


def owners_running_on(s: Session, prefix: str) -> list[str]:
    """Lease owners of running tasks whose name starts with `prefix`."""
    rows = s.scalars(
        select(Task.lease_owner)
        .where(Task.state == TaskState.RUNNING, Task.lease_owner.like(f"{prefix}%"))
        .distinct()
    )
    return [r for r in rows if r is not None]


def renew_lease(
    s: Session,
    task_id: str,
    owner: str,
    lease_seconds: float,
    *,
    done_bytes: int | None = None,
    total_bytes: int | None = None,
) -> bool:
    """Extend the lease (and record progress); False if `owner` lost the task."""
    values: dict[str, object] = {
        "lease_expires_at": datetime.now(UTC) + timedelta(seconds=lease_seconds)
    }
    if done_bytes is not None:
        values["done_bytes"] = done_bytes
    if total_bytes is not None:
        values["total_bytes"] = total_bytes
    result = s.execute(
        update(Task)
        .where(Task.id == task_id, Task.lease_owner == owner, Task.state == TaskState.RUNNING)
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish_task(
    s: Session, task_id: str, owner: str, state: TaskState, error: str | None = None
) -> bool:
    """End the task as done or failed; False if `owner` no longer holds it."""
    result = s.execute(
        update(Task)
        .where(Task.id == task_id, Task.lease_owner == owner, Task.state == TaskState.RUNNING)
        .values(state=state, last_error=error, lease_owner=None, lease_expires_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def give_back_task(s: Session, task_id: str, owner: str) -> None:
    """Return a task untouched to the queue (worker shutting down): no attempt used."""
    s.execute(
        update(Task)
        .where(Task.id == task_id, Task.lease_owner == owner, Task.state == TaskState.RUNNING)
        .values(
            state=TaskState.PENDING,
            lease_owner=None,
            lease_expires_at=None,
            attempts=Task.attempts - 1,
        )
    )


def progress_of(s: Session, backup_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """(done, total) bytes of the running task of each backup that has one."""
    ids = list(backup_ids)
    if not ids:
        return {}
    rows = s.execute(
        select(Task.backup_id, Task.done_bytes, Task.total_bytes).where(
            Task.backup_id.in_(ids), Task.state == TaskState.RUNNING
        )
    )
    return {b: (d, t) for b, d, t in rows}


def get_task(s: Session, task_id: str) -> Task | None:
    return s.get(Task, task_id)
