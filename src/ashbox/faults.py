"""Named fault points: where a test makes the process die, to prove what a crash leaves.

`ASHBOX_FAULT=create.data_written:2` makes the process SIGKILL itself the second
time it passes `fault.point("create.data_written")`; several points are
separated by commas. Without the variable a point costs one dict lookup.
Every point is listed in POINTS (a test holds the list and the code equal)
and in docs/states.md, "Fault points".
"""

from __future__ import annotations

import os
import signal
import threading

POINTS = frozenset(
    {
        "task.claimed",
        "create.placed",
        "create.pack_committed",
        "create.manifest_written",
        "create.data_written",
        "create.failed",
        "restore.started",
        "restore.data_written",
        "delete.refs_released",
        "delete.data_deleted",
        "volume.file_created",
        "volume.file_removed",
        "import.referenced",
        "snapshot.file_created",
        "snapshot.file_removed",
        "gc.packs_deleted",
        "task.ended",
        "notify.sent",
    }
)

_lock = threading.Lock()
_armed: dict[str, int] | None = None


def point(name: str) -> None:
    """Die here (SIGKILL, no clean-up) if ASHBOX_FAULT says so for this passage."""
    global _armed
    if _armed is None:
        _armed = _parse(os.environ.get("ASHBOX_FAULT", ""))
    if name not in _armed:
        return
    with _lock:
        _armed[name] -= 1
        if _armed[name] > 0:
            return
    os.kill(os.getpid(), signal.SIGKILL)


def _parse(spec: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, count = item.partition(":")
        if name not in POINTS:
            raise ValueError(f"ASHBOX_FAULT names an unknown fault point: {name}")
        armed[name] = int(count or "1")
    return armed
