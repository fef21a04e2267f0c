"""A task's run in progress, and its heartbeat: the ticker renews the run's
lease every second, records its progress and reads its resource's status.
The run is interrupted at its next progress call when:
- its worker is asked to stop: the task is given back untouched;
- its resource left the status the task works in (a force delete or reset):
  the task ends, having changed nothing more (the request that cancelled it
  settled the states);
- its lease is lost, or could not be renewed for half its length (the
  database is away): the run stops before its lease runs out, and leaves
  the task to its next owner."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from enum import Enum

from ashbox.config import Settings
from ashbox.db import lifecycle, notifications
from ashbox.db import tasks as task_rows
from ashbox.db.engine import Database
from ashbox.errors import LeaseLost, TaskCancelled
from ashbox.statuses import ResourceType

log = logging.getLogger(__name__)


class Stop(Enum):
    WORKER_STOPPING = "worker stopping"
    CANCELLED = "cancelled"
    LEASE = "lease lost"


@dataclass
class Running:
    task_id: str
    resource_type: ResourceType
    resource_id: str
    works_in: str | None
    attempt: int
    last_error: str | None = None  # why an earlier run stopped, if it said
    renewed_at: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int = 0
    stop: Stop | None = None
    stop_reason: str = ""
    notifies_progress: bool = False  # a backup's create: backup.createprogress every tenth
    notified_tenth: int = 0
    finished: threading.Event = field(default_factory=threading.Event)

    def stop_with(self, stop: Stop, reason: str) -> None:
        if self.stop is None:
            self.stop, self.stop_reason = stop, reason

    def progress(self, done: int, total: int) -> None:
        """Record progress; raise if the run must stop (LeaseLost, TaskCancelled)."""
        self.done, self.total = done, total
        if self.stop is Stop.LEASE:
            raise LeaseLost(self.task_id)
        if self.stop is not None:
            raise TaskCancelled(self.stop_reason)


def heartbeat(db: Database, settings: Settings, owner: str, r: Running) -> None:
    """Renew the run's lease and look at its resource; mark it to stop if it must."""
    try:
        with db.transaction() as s:
            kept = task_rows.renew_lease(
                s,
                r.task_id,
                owner,
                r.attempt,
                settings.lease_seconds,
                done_bytes=r.done,
                total_bytes=r.total,
            )
            watched = kept and r.works_in is not None
            status = lifecycle.status_of(s, r.resource_type, r.resource_id) if watched else None
            tenth = _progress_to_tell(r) if kept and status == r.works_in else None
            if tenth is not None:
                # 100 % is the end's, once the create is done, not its data read.
                percent = min(99, r.done * 100 // r.total)
                notifications.record_progress(s, r.resource_id, percent)
    except Exception:
        log.exception("could not renew a lease task_id=%s", r.task_id)
        if time.monotonic() - r.renewed_at > settings.lease_seconds / 2:
            r.stop_with(Stop.LEASE, "the lease could not be renewed in time")
        return
    if r.finished.is_set():
        return
    if not kept:
        r.stop_with(Stop.LEASE, "lease lost to another worker")
        return
    r.renewed_at = time.monotonic()
    if tenth is not None:
        r.notified_tenth = tenth
    if r.works_in is not None and status != r.works_in:
        r.stop_with(Stop.CANCELLED, f"{r.resource_type} {r.resource_id} is now {status or 'gone'}")


def _progress_to_tell(r: Running) -> int | None:
    """The tenth of the volume a create has newly passed (1 to 9), if any: the
    last one, 100 %, goes with the create's end."""
    if not r.notifies_progress or r.total <= 0:
        return None
    tenth = min(9, r.done * 10 // r.total)
    return tenth if tenth > r.notified_tenth else None
