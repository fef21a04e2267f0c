"""Applying the transitions of ashbox.transitions: one compare-and-swap each, plus its outbox row.

`apply` changes a row's status only if it is one of the transition's sources,
in the caller's transaction, and in the same transaction writes what follows
from it (an outbox row naming the resource, the event, the new status and the
failure reason; a backup's usage notifications; a failure's user message), so
a crash can never keep the one without the other.
`insert` does the same for the transitions that create their row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, select, update
from sqlalchemy import insert as sql_insert
from sqlalchemy.orm import Session

from ashbox import failure_messages, request_ids
from ashbox.db import messages, notifications
from ashbox.db.engine import OUTBOX_KEY
from ashbox.db.models import Backup, Base, Outbox, Snapshot, Task, Volume
from ashbox.statuses import ResourceType, VolumeStatus
from ashbox.transitions import NEW, PREVIOUS, Transition
from ashbox.user_messages import Field

_MODELS: dict[ResourceType, type[Base]] = {
    ResourceType.BACKUP: Backup,
    ResourceType.VOLUME: Volume,
    ResourceType.SNAPSHOT: Snapshot,
    ResourceType.TASK: Task,
}
_DELETED = "deleted"
_FAIL_REASON_LENGTH = 255


def apply(
    s: Session,
    transition: Transition,
    resource_id: str,
    *,
    values: Mapping[str, Any] | None = None,
    reason: str | None = None,
    where: ColumnElement[bool] | None = None,
    detail: Field | None = None,
    about: str | None = None,
) -> bool:
    """Move the resource along `transition` if its status is one of the sources
    (and `where` holds); False, with nothing changed, otherwise.

    `values` are set in the same UPDATE. `reason` is the failure reason: a
    backup's `fail_reason`, and the outbox row's reason for every resource.
    A failure's user message (ashbox.failure_messages) takes `detail` in place
    of its own, and is about `about` in place of the resource.
    """
    if transition.source == {NEW}:
        raise ValueError(f"{transition.event} inserts its row: use insert()")
    model: Any = _MODELS[transition.resource]
    status_column = model.state if transition.resource is ResourceType.TASK else model.status
    sources = [src for src in transition.source if src != NEW]
    now = datetime.now(UTC)
    changes: dict[str, Any] = {"updated_at": now, **(values or {})}
    if transition.target == PREVIOUS:
        # The status a backup started from; anything else (a hand-set status) is
        # not one to return to.
        returnable = Volume.previous_status.in_([VolumeStatus.AVAILABLE, VolumeStatus.IN_USE])
        changes["status"] = case((returnable, Volume.previous_status), else_=VolumeStatus.AVAILABLE)
    elif transition.resource is ResourceType.TASK:
        changes["state"] = transition.target
    else:
        changes["status"] = transition.target
    if transition.target == _DELETED:
        changes.update(deleted=True, deleted_at=now)
    elif _DELETED in sources:
        changes.update(deleted=False, deleted_at=None)  # a deleted row revived (import)
    if reason is not None and transition.resource is ResourceType.BACKUP:
        changes["fail_reason"] = reason[:_FAIL_REASON_LENGTH]
    before = None
    if transition.resource is ResourceType.BACKUP and notifications.shows_the_row_before(
        transition.event
    ):
        before = notifications.payload(s, resource_id)
    stmt = update(model).where(model.id == resource_id, status_column.in_(sources))
    if transition.resource is not ResourceType.TASK and _DELETED not in sources:
        stmt = stmt.where(model.deleted.is_(False))
    if where is not None:
        stmt = stmt.where(where)
    result = s.execute(stmt.values(**changes).execution_options(synchronize_session=False))
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    status = transition.target
    if status == PREVIOUS:
        status = s.scalar(select(Volume.status).where(Volume.id == resource_id)) or status
    _record(s, transition, resource_id, status, reason, before)
    _tell_user(s, transition, resource_id, detail, about)
    return True


def insert(s: Session, transition: Transition, row: Base, *, reason: str | None = None) -> None:
    """Add `row` (its status set to the transition's target) with its outbox row."""
    if NEW not in transition.source:
        raise ValueError(f"{transition.event} does not create its row")
    if transition.resource is ResourceType.TASK:
        row.state = transition.target  # type: ignore[attr-defined]
    else:
        row.status = transition.target  # type: ignore[attr-defined]
    s.add(row)
    s.flush()
    _record(s, transition, row.id, transition.target, reason)  # type: ignore[attr-defined]


def status_of(s: Session, resource: ResourceType, resource_id: str) -> str | None:
    """The resource's status now; None if it is gone (deleted rows count as gone)."""
    model: Any = _MODELS[resource]
    if resource is ResourceType.TASK:
        return s.scalar(select(model.state).where(model.id == resource_id))
    return s.scalar(select(model.status).where(model.id == resource_id, model.deleted.is_(False)))


def _record(
    s: Session,
    transition: Transition,
    resource_id: str,
    status: str,
    reason: str | None,
    before: dict[str, Any] | None = None,
) -> None:
    if transition.resource is ResourceType.TASK:
        return  # nothing follows from a task's own changes (yet)
    if transition.resource is ResourceType.BACKUP:
        notifications.record(s, transition.event, resource_id, before=before)
    s.execute(
        sql_insert(Outbox).values(
            resource_type=transition.resource,
            resource_id=resource_id,
            event=transition.event,
            status=status,
            reason=reason,
            created_at=datetime.now(UTC),
        )
    )
    s.info[OUTBOX_KEY] = True


def _tell_user(
    s: Session, transition: Transition, resource_id: str, detail: Field | None, about: str | None
) -> None:
    """Write the user message of a failure transition."""
    told = failure_messages.of(transition.resource, transition.event)
    if told is None:
        return
    model: Any = _MODELS[transition.resource]
    project_id = s.scalar(select(model.project_id).where(model.id == resource_id))
    messages.add(
        s,
        project_id=str(project_id),
        resource_type=told.resource,
        resource_uuid=about or resource_id,
        action_id=told.action.id,
        detail_id=(detail or told.detail).id,
        request_id=request_ids.current(),
    )
