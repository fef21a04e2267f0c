"""Every status change of a backup, volume, snapshot or task, declared once.

A transition is an event with the statuses it may start from and the status it
leads to. `ashbox.db.lifecycle` applies one as a compare-and-swap in the
caller's transaction and records what follows from it in the outbox; nothing
else writes a status. docs/states.md shows these tables, and
tests/test_transitions.py holds the document and this module equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ashbox.statuses import (
    BackupStatus,
    ResourceType,
    SnapshotStatus,
    TaskState,
    VolumeStatus,
)

NEW = "-"
"""The source of a transition that inserts its row."""

PREVIOUS = "previous_status"
"""The target of a volume's return from `backing-up`: its `previous_status`."""


@dataclass(frozen=True, slots=True)
class Transition:
    resource: ResourceType
    event: str
    source: frozenset[str]  # {NEW}: the row is inserted
    target: str

    @property
    def inserts(self) -> bool:
        return self.source == {NEW}


class Machine:
    """The transitions of one resource type, by event."""

    def __init__(self, resource: ResourceType, rows: Iterable[tuple[str, Iterable[str], str]]):
        self.resource = resource
        self.transitions: dict[str, Transition] = {}
        for event, source, target in rows:
            if event in self.transitions:
                raise ValueError(f"{resource} event {event} declared twice")
            self.transitions[event] = Transition(resource, event, frozenset(source), target)

    def __getitem__(self, event: str) -> Transition:
        return self.transitions[event]

    def __iter__(self) -> Iterator[Transition]:
        return iter(self.transitions.values())

    def reset_to(self, status: str) -> Transition:
        """The admin's reset to `status` (KeyError: that status cannot be asked for)."""
        return self.transitions[f"reset_{status}"]


_B = BackupStatus
_V = VolumeStatus
_S = SnapshotStatus
_T = TaskState

# A backup whose delete is running cannot be reset: its references may be gone already.
_B_RESETTABLE = (_B.CREATING, _B.AVAILABLE, _B.ERROR, _B.ERROR_DELETING, _B.RESTORING)
_B_LIVE = (_B.CREATING, _B.AVAILABLE, _B.ERROR, _B.ERROR_DELETING, _B.RESTORING, _B.DELETING)

BACKUP = Machine(
    ResourceType.BACKUP,
    [
        ("create", [NEW], _B.CREATING),
        ("create_done", [_B.CREATING], _B.AVAILABLE),
        ("create_failed", [_B.CREATING], _B.ERROR),
        ("restore", [_B.AVAILABLE], _B.RESTORING),
        ("restore_done", [_B.RESTORING], _B.AVAILABLE),
        ("restore_failed", [_B.RESTORING], _B.AVAILABLE),
        ("delete", [_B.AVAILABLE, _B.ERROR], _B.DELETING),
        ("force_delete", _B_LIVE, _B.DELETING),
        ("delete_done", [_B.DELETING], _B.DELETED),
        ("delete_failed", [_B.DELETING], _B.ERROR),
        ("reset_available", _B_RESETTABLE, _B.AVAILABLE),
        ("reset_error", _B_RESETTABLE, _B.ERROR),
        ("import", [NEW, _B.DELETED], _B.CREATING),
        ("import_done", [_B.CREATING], _B.AVAILABLE),
        ("import_failed", [_B.CREATING], _B.ERROR),
        ("recover", [NEW], _B.AVAILABLE),
    ],
)

_V_DELETABLE = (_V.AVAILABLE, _V.ERROR, _V.ERROR_RESTORING, _V.ERROR_MANAGING)
# An admin's force delete: also a failed delete or backup, never a volume a task
# is working on (reset its status first: that cancels the task) nor one in use.
_V_FORCE_DELETABLE = (*_V_DELETABLE, _V.ERROR_DELETING, _V.ERROR_BACKING_UP)
_V_RESETTABLE = tuple(s for s in _V if s not in (_V.DELETED, _V.ERROR_BACKING_UP))
_V_RESET_TARGETS = (
    _V.AVAILABLE,
    _V.IN_USE,
    _V.ERROR,
    _V.ERROR_DELETING,
    _V.ERROR_RESTORING,
)

VOLUME = Machine(
    ResourceType.VOLUME,
    [
        ("create", [NEW], _V.CREATING),
        ("create_done", [_V.CREATING], _V.AVAILABLE),
        ("create_failed", [_V.CREATING], _V.ERROR),
        ("schedule_failed", [_V.CREATING], _V.ERROR),  # no backend meets its type
        ("manage", [NEW], _V.MANAGING),
        ("manage_done", [_V.MANAGING], _V.AVAILABLE),
        ("manage_failed", [_V.MANAGING], _V.ERROR_MANAGING),
        ("attach", [_V.AVAILABLE], _V.IN_USE),
        ("detach", [_V.IN_USE], _V.AVAILABLE),
        ("backup_start", [_V.AVAILABLE, _V.IN_USE], _V.BACKING_UP),
        ("backup_end", [_V.BACKING_UP], PREVIOUS),
        ("backup_failed", [_V.BACKING_UP], PREVIOUS),
        ("restore_start", [_V.AVAILABLE], _V.RESTORING_BACKUP),
        ("restore_done", [_V.RESTORING_BACKUP, _V.CREATING], _V.AVAILABLE),
        ("restore_failed", [_V.RESTORING_BACKUP], _V.ERROR_RESTORING),
        ("restore_new_failed", [_V.CREATING], _V.ERROR),
        ("restore_cancelled", [_V.RESTORING_BACKUP, _V.CREATING], _V.ERROR),
        ("delete", _V_DELETABLE, _V.DELETING),
        ("force_delete", _V_FORCE_DELETABLE, _V.DELETING),
        ("delete_done", [_V.DELETING], _V.DELETED),
        ("delete_failed", [_V.DELETING], _V.ERROR_DELETING),
        *((f"reset_{t}", _V_RESETTABLE, t) for t in _V_RESET_TARGETS),
    ],
)

SNAPSHOT = Machine(
    ResourceType.SNAPSHOT,
    [
        ("create", [NEW], _S.CREATING),
        ("create_done", [_S.CREATING], _S.AVAILABLE),
        ("create_failed", [_S.CREATING], _S.ERROR),
        ("backup_start", [_S.AVAILABLE], _S.BACKING_UP),
        ("backup_end", [_S.BACKING_UP], _S.AVAILABLE),
        ("delete", [_S.AVAILABLE, _S.ERROR], _S.DELETING),
        ("force_delete", [s for s in _S if s not in (_S.DELETED, _S.DELETING)], _S.DELETING),
        ("delete_done", [_S.DELETING], _S.DELETED),
        ("delete_failed", [_S.DELETING], _S.ERROR_DELETING),
        *(
            (f"reset_{t}", [s for s in _S if s != _S.DELETED], t)
            for t in (_S.AVAILABLE, _S.ERROR, _S.ERROR_DELETING)
        ),
    ],
)

TASK = Machine(
    ResourceType.TASK,
    [
        ("queue", [NEW], _T.PENDING),
        ("claim", [_T.PENDING, _T.RUNNING], _T.RUNNING),  # running: its lease lapsed
        ("give_back", [_T.RUNNING], _T.PENDING),
        ("done", [_T.RUNNING], _T.DONE),
        ("fail", [_T.RUNNING], _T.FAILED),
    ],
)

MACHINES = {m.resource: m for m in (BACKUP, VOLUME, SNAPSHOT, TASK)}
