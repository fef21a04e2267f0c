"""Which user message each failure transition writes (CINDER-CONTRACT §3.7).

ashbox.db.lifecycle writes it in the failure's own transaction, so a failure
and its message exist together or not at all. The caller may name a more
precise detail (a backup whose source was not in the expected status is
`BACKUP_INVALID_STATE`, not a driver error) and the resource the message is
about (a restore refused for its volume's status names the volume, as Cinder's
does). A volume's failed backup or restore writes none of its own: the
backup's failure in the same transaction tells of it.

Cinder has no action for deleting or managing a volume; ashbox uses its
nearest (`create volume from backend storage` for manage) and, for a failed
volume delete, its own action `Action.DELETE_VOLUME` (ashbox.user_messages).
"""

from __future__ import annotations

from dataclasses import dataclass

from ashbox.statuses import ResourceType
from ashbox.user_messages import Action, Detail, Field, Resource


@dataclass(frozen=True, slots=True)
class FailureMessage:
    resource: Resource
    action: Field
    detail: Field


_B, _V, _S = ResourceType.BACKUP, ResourceType.VOLUME, ResourceType.SNAPSHOT
_BACKUP, _VOLUME, _SNAPSHOT = Resource.VOLUME_BACKUP, Resource.VOLUME, Resource.VOLUME_SNAPSHOT

MESSAGES: dict[tuple[ResourceType, str], FailureMessage] = {
    (_B, "create_failed"): FailureMessage(
        _BACKUP, Action.BACKUP_CREATE, Detail.BACKUP_CREATE_DRIVER_ERROR
    ),
    (_B, "import_failed"): FailureMessage(
        _BACKUP, Action.BACKUP_CREATE, Detail.BACKUP_CREATE_DRIVER_ERROR
    ),
    (_B, "restore_failed"): FailureMessage(
        _BACKUP, Action.BACKUP_RESTORE, Detail.BACKUP_RESTORE_ERROR
    ),
    (_B, "delete_failed"): FailureMessage(
        _BACKUP, Action.BACKUP_DELETE, Detail.BACKUP_DELETE_DRIVER_ERROR
    ),
    (_V, "create_failed"): FailureMessage(
        _VOLUME, Action.CREATE_VOLUME_FROM_BACKEND, Detail.DRIVER_FAILED_CREATE
    ),
    (_V, "schedule_failed"): FailureMessage(
        _VOLUME, Action.SCHEDULE_ALLOCATE_VOLUME, Detail.NO_BACKEND_AVAILABLE
    ),
    (_V, "manage_failed"): FailureMessage(
        _VOLUME, Action.CREATE_VOLUME_FROM_BACKEND, Detail.DRIVER_FAILED_CREATE
    ),
    (_V, "delete_failed"): FailureMessage(_VOLUME, Action.DELETE_VOLUME, Detail.UNKNOWN_ERROR),
    (_S, "create_failed"): FailureMessage(
        _SNAPSHOT, Action.SNAPSHOT_CREATE, Detail.SNAPSHOT_CREATE_ERROR
    ),
    (_S, "delete_failed"): FailureMessage(
        _SNAPSHOT, Action.SNAPSHOT_DELETE, Detail.SNAPSHOT_DELETE_ERROR
    ),
}

# Failure transitions told of by another's message in the same transaction.
TOLD_ELSEWHERE = frozenset(
    {(_V, "backup_failed"), (_V, "restore_failed"), (_V, "restore_new_failed")}
)


def of(resource: ResourceType, event: str) -> FailureMessage | None:
    return MESSAGES.get((resource, event))
