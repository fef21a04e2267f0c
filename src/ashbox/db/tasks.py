"""The task queue in the database: create, claim with a lease, heartbeat, finish.

DESIGN.md §2: a task row is created in the transaction that changes the
status; a worker claims it by taking a lease, renews the lease while it runs,
and any worker takes over a task whose lease expired. PostgreSQL claims with
`FOR UPDATE SKIP LOCKED`; SQLite's BEGIN IMMEDIATE serialises claimers.
A task pinned to a host or a zone runs only on a worker of that host or zone;
a host whose service is disabled claims nothing; a host runs at most
`max_limited` of the `limited` kinds (creates and restores) at once, over all
its worker processes (Cinder's `backup_max_operations`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, text, update
from sqlalchemy.orm import Session, aliased

from ashbox import request_ids
from ashbox.db import lifecycle
from ashbox.db.models import Service, Task
from ashbox.db.services import BACKUP_BINARY
from ashbox.statuses import ResourceType, TaskKind, TaskState
from ashbox.transitions import TASK


def add_task(
    s: Session,
    kind: TaskKind,
    resource_type: ResourceType,
    resource_id: str,
    *,
    max_attempts: int,
    payload: Mapping[str, Any] | None = None,
    pinned_host: str | None = None,
    pinned_zone: str | None = None,
) -> Task:
    task = Task(
        id=str(uuid.uuid4()),
        kind=kind,
        resource_type=resource_type,
        resource_id=resource_id,
        payload=_with_request_id(payload or {}),
        pinned_host=pinned_host,
        pinned_zone=pinned_zone,
        max_attempts=max_attempts,
        attempts=0,
        done_bytes=0,
        total_bytes=0,
    )
    lifecycle.insert(s, TASK["queue"], task)
    return task


def _with_request_id(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload, with the request the task acts for (ashbox.request_ids)."""
    request_id = request_ids.current()
    return {**payload, request_ids.PAYLOAD_KEY: request_id} if request_id else dict(payload)


def claim_task(
    s: Session,
    owner: str,
    host: str,
    lease_seconds: float,
    *,
    zone: str | None = None,
    reclaimable_owners: Iterable[str] = (),
    limited: Iterable[str] = (),
    max_limited: int = 0,
) -> Task | None:
    """Lease the oldest runnable task to `owner`: pending, or running with an expired
    lease, or running under one of `reclaimable_owners` (dead processes of this host).
    A task waits while another task of its resource runs under a live lease (a
    force delete waits for the cancelled create to stop). The claim counts as an
    attempt, and the attempt number is the run's fencing token."""
    now = datetime.now(UTC)
    if _disabled(s, host):
        return None
    dead = list(reclaimable_owners)
    other = aliased(Task)
    stmt = (
        select(Task)
        .where(or_(*_runnable(Task, now, dead)))
        .where(or_(Task.pinned_host.is_(None), Task.pinned_host == host))
        .where(or_(Task.pinned_zone.is_(None), Task.pinned_zone == zone))
        .where(
            ~exists().where(
                other.resource_id == Task.resource_id,
                other.id != Task.id,
                other.state == TaskState.RUNNING,
                ~or_(*_runnable(other, now, dead)),
            )
        )
        .order_by(Task.created_at, Task.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=Task)
    )
    kinds = list(limited)
    if kinds and max_limited > 0 and _running_on_host(s, host, kinds, now, dead) >= max_limited:
        stmt = stmt.where(Task.kind.not_in(kinds))
    task = s.scalar(stmt)
    if task is None:
        return None
    claimed = lifecycle.apply(
        s,
        TASK["claim"],
        task.id,
        values={
            "lease_owner": owner,
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
            "attempts": task.attempts + 1,
        },
        where=Task.attempts == task.attempts,
    )
    if not claimed:
        return None
    s.refresh(task)
    return task


def _runnable(t: Any, now: datetime, dead_owners: list[str]) -> list[ColumnElement[bool]]:
    conditions = [
        t.state == TaskState.PENDING,
        and_(t.state == TaskState.RUNNING, t.lease_expires_at < now),
    ]
    if dead_owners:
        conditions.append(and_(t.state == TaskState.RUNNING, t.lease_owner.in_(dead_owners)))
    return conditions


def _disabled(s: Session, host: str) -> bool:
    return (
        s.scalar(
            select(Service.id).where(
                Service.host == host, Service.binary == BACKUP_BINARY, Service.disabled.is_(True)
            )
        )
        is not None
    )


def _running_on_host(
    s: Session, host: str, kinds: list[str], now: datetime, dead_owners: list[str]
) -> int:
    """Tasks of `kinds` this host's live processes hold a live lease on. On PostgreSQL
    the host's claimers queue on an advisory lock to the end of their transaction,
    so two processes cannot both count one slot free and both take it."""
    if s.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(
            hashlib.sha256(f"claim:{host}".encode()).digest()[:8], "big", signed=True
        )
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    count = s.scalar(
        select(func.count())
        .select_from(Task)
        .where(
            Task.state == TaskState.RUNNING,
            Task.kind.in_(kinds),
            Task.lease_expires_at >= now,
            Task.lease_owner.startswith(f"{host}/", autoescape=True),
            Task.lease_owner.not_in(dead_owners),
        )
    )
    return int(count or 0)


def owners_running_on(s: Session, prefix: str) -> list[str]:
    """Lease owners of running tasks whose name starts with `prefix`."""
    rows = s.scalars(
        select(Task.lease_owner)
        .where(Task.state == TaskState.RUNNING, Task.lease_owner.like(f"{prefix}%"))
        .distinct()
    )
    return [r for r in rows if r is not None]


def _held(task_id: str, owner: str, attempt: int) -> ColumnElement[bool]:
    return and_(
        Task.id == task_id,
        Task.lease_owner == owner,
        Task.attempts == attempt,
        Task.state == TaskState.RUNNING,
    )


def fence(s: Session, task_id: str, owner: str, attempt: int) -> bool:
    """Whether this run (owner, attempt) still holds the task; on PostgreSQL the
    row stays locked to the caller's commit, so no claim can slip in before it."""
    result = s.execute(
        update(Task).where(_held(task_id, owner, attempt)).values(updated_at=datetime.now(UTC))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def renew_lease(
    s: Session,
    task_id: str,
    owner: str,
    attempt: int,
    lease_seconds: float,
    *,
    done_bytes: int | None = None,
    total_bytes: int | None = None,
) -> bool:
    """Extend the lease (and record progress); False if this run lost the task."""
    values: dict[str, object] = {
        "lease_expires_at": datetime.now(UTC) + timedelta(seconds=lease_seconds)
    }
    if done_bytes is not None:
        values["done_bytes"] = done_bytes
    if total_bytes is not None:
        values["total_bytes"] = total_bytes
    result = s.execute(update(Task).where(_held(task_id, owner, attempt)).values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish_task(
    s: Session,
    task_id: str,
    owner: str,
    attempt: int,
    state: TaskState,
    error: str | None = None,
) -> bool:
    """End the task as done or failed; False if this run no longer holds it."""
    event = "done" if state == TaskState.DONE else "fail"
    return lifecycle.apply(
        s,
        TASK[event],
        task_id,
        values={"last_error": error, "lease_owner": None, "lease_expires_at": None},
        where=_held(task_id, owner, attempt),
    )


def note_error(s: Session, task_id: str, owner: str, attempt: int, error: str) -> bool:
    """Record why this run stopped, keeping its lease to lapse; False if it lost the task."""
    result = s.execute(update(Task).where(_held(task_id, owner, attempt)).values(last_error=error))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def give_back_task(s: Session, task_id: str, owner: str, attempt: int) -> None:
    """Return a task untouched to the queue (worker shutting down): no attempt used."""
    lifecycle.apply(
        s,
        TASK["give_back"],
        task_id,
        values={"lease_owner": None, "lease_expires_at": None, "attempts": attempt - 1},
        where=_held(task_id, owner, attempt),
    )


def progress_of(s: Session, resource_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """(done, total) bytes of the running task of each resource that has one."""
    ids = list(resource_ids)
    if not ids:
        return {}
    rows = s.execute(
        select(Task.resource_id, Task.done_bytes, Task.total_bytes).where(
            Task.resource_id.in_(ids), Task.state == TaskState.RUNNING
        )
    )
    return {r: (d, t) for r, d, t in rows}


def queued_of(s: Session, resource_ids: Iterable[str]) -> set[str]:
    """The resources among `resource_ids` whose task waits to be claimed."""
    ids = list(resource_ids)
    if not ids:
        return set()
    rows = s.scalars(
        select(Task.resource_id).where(Task.resource_id.in_(ids), Task.state == TaskState.PENDING)
    )
    return set(rows)


def pending_counts(s: Session) -> dict[str, int]:
    """How many tasks of each kind wait to be claimed (kinds with none are left out)."""
    rows = s.execute(
        select(Task.kind, func.count()).where(Task.state == TaskState.PENDING).group_by(Task.kind)
    )
    return {kind: count for kind, count in rows}


def get_task(s: Session, task_id: str) -> Task | None:
    return s.get(Task, task_id)


def open_tasks_of(s: Session, resource_id: str) -> list[Task]:
    """The pending and running tasks of a resource."""
    return list(
        s.scalars(
            select(Task).where(
                Task.resource_id == resource_id,
                Task.state.in_([TaskState.PENDING, TaskState.RUNNING]),
            )
        )
    )


def tasks_of(s: Session, resource_id: str) -> list[Task]:
    """Every task of a resource, oldest first."""
    return list(
        s.scalars(
            select(Task).where(Task.resource_id == resource_id).order_by(Task.created_at, Task.id)
        )
    )
