"""The worker: claims tasks with a lease, runs them, renews leases, stops cleanly.

DESIGN.md §2. A claimed task runs in a thread of its own (at most
`max_concurrent_operations` at once). A ticker thread renews the leases of
running tasks every second and records their progress. A task whose lease is
lost, or a worker asked to stop, interrupts the task at its next progress call:
the task is then given back untouched (stop) or left to its new owner (lost).
A task that was claimed more than `max_attempts` times (its workers died) fails.
Every `gc_interval_seconds` (if not 0) a gc thread runs the garbage collector
on every container (docs/format.md, "Reclaiming space and checking").
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ashbox.changes import Changes
from ashbox.config import Settings
from ashbox.db import tasks as task_rows
from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.errors import TaskCancelled
from ashbox.malloc import give_back_freed_memory
from ashbox.manager import dispatch
from ashbox.manager.job import Job, open_repository
from ashbox.repository.gc import GcReport, collect_garbage
from ashbox.statuses import TaskKind, TaskState
from ashbox.storage import open_store
from ashbox.storage.base import Store

log = logging.getLogger(__name__)

_TICK_SECONDS = 1.0


@dataclass
class _Running:
    task_id: str
    backup_id: str
    done: int = 0
    total: int = 0
    stop_reason: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)


class Worker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        store: Store | None = None,
        *,
        changes: Changes | None = None,
    ) -> None:
        """`changes`: where the backup and volume of each finished task are announced
        (`ashbox serve` shares it with its API)."""
        self.db = db
        self.changes = changes if changes is not None else Changes()
        self.settings = settings
        self.store = store if store is not None else open_store(settings.resolved_store)
        self.host = settings.resolved_worker_name
        self.owner = f"{self.host}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._pool = ThreadPoolExecutor(
            max_workers=settings.max_concurrent_operations, thread_name_prefix="task"
        )
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        loops = [(self._claim_loop, "claimer"), (self._tick_loop, "ticker")]
        if self.settings.gc_interval_seconds > 0:
            loops.append((self._gc_loop, "gc"))
        for target, name in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("worker started owner=%s", self.owner)

    def wake(self) -> None:
        """A task was just queued in this process: look for it now, not at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Interrupt running tasks at their next block and give them back to the queue."""
        self._stopping.set()
        self._wake.set()
        with self._lock:
            for running in self._running.values():
                running.stop_reason = "worker stopping"
        for thread in self._threads:
            thread.join(timeout)
        self._pool.shutdown(wait=True)
        log.info("worker stopped owner=%s", self.owner)

    def run_one(self) -> bool:
        """Claim and run one task in this thread; False if none was runnable (for tests)."""
        claimed = self._claim(self._dead_owners())
        if claimed is None:
            return False
        self._execute(*claimed)
        return True

    def collect_garbage(self) -> list[GcReport]:
        """Run the garbage collector on every container now; its reports."""
        reports = []
        for container in DbIndex(self.db).containers():
            if self._stopping.is_set():
                break
            repo = open_repository(self.settings, self.store, self.db, container)
            fraction = self.settings.gc_repack_live_fraction
            reports.append(collect_garbage(repo, repack_live_fraction=fraction))
        return reports

    def _gc_loop(self) -> None:
        while not self._stopping.wait(self.settings.gc_interval_seconds):
            try:
                self.collect_garbage()
            except Exception:
                # Like a task's failure, a failed gc pass must not stop the worker:
                # it is logged and the next pass retries (every step is idempotent).
                log.exception("gc pass failed owner=%s", self.owner)

    def _claim_loop(self) -> None:
        dead_owners = self._dead_owners()
        while not self._stopping.is_set():
            with self._lock:
                busy = len(self._running) >= self.settings.max_concurrent_operations
            claimed = None if busy else self._claim(dead_owners)
            if claimed is None:
                self._wake.wait(self.settings.poll_seconds)
                self._wake.clear()
                continue
            self._pool.submit(self._execute, *claimed)

    def _claim(self, dead_owners: list[str]) -> tuple[Job, _Running] | None:
        with self.db.transaction() as s:
            task = task_rows.claim_task(
                s,
                self.owner,
                self.host,
                self.settings.lease_seconds,
                reclaimable_owners=dead_owners,
            )
            if task is None:
                return None
            running = _Running(task.id, task.backup_id)
            job = Job(
                db=self.db,
                settings=self.settings,
                store=self.store,
                task_id=task.id,
                kind=TaskKind(task.kind),
                backup_id=task.backup_id,
                volume_id=task.volume_id,
                volume_is_new=task.volume_is_new,
                attempts=task.attempts,
                max_attempts=task.max_attempts,
                worker_host=self.host,
                progress=lambda done, total: self._progress(running, done, total),
            )
        with self._lock:
            self._running[running.task_id] = running
        log.info(
            "task claimed task_id=%s kind=%s backup_id=%s attempt=%d",
            job.task_id,
            job.kind,
            job.backup_id,
            job.attempts,
        )
        return job, running

    def _execute(self, job: Job, running: _Running) -> None:
        try:
            if job.attempts > job.max_attempts:
                reason = (
                    f"Gave up after {job.max_attempts} attempts: the worker running this "
                    "task stopped before finishing it."
                )
                self._fail(job, reason)
            else:
                dispatch.run(job)
                self.changes.announce(job.backup_id, job.volume_id)  # before the task row
                self._finish(job, TaskState.DONE)
        except TaskCancelled as cancelled:
            if self._stopping.is_set():
                with self.db.transaction() as s:
                    task_rows.give_back_task(s, job.task_id, self.owner)
            log.info("task interrupted task_id=%s reason=%s", job.task_id, cancelled.message)
        except Exception as exc:
            # The one broad handler: a task's failure becomes its backup's error.
            log.exception("task failed task_id=%s backup_id=%s", job.task_id, job.backup_id)
            self._fail(job, str(getattr(exc, "message", None) or exc) or type(exc).__name__)
        finally:
            self.changes.announce(job.backup_id, job.volume_id)
            with self._lock:
                self._running.pop(job.task_id, None)
                idle = not self._running
            if idle:
                give_back_freed_memory()
            running.finished.set()
            self._wake.set()  # a slot is free: a queued task need not wait for the poll

    def _fail(self, job: Job, reason: str) -> None:
        """Record the failure; if even that fails, keep the lease to lapse, so the
        task is claimed again and, past max_attempts, failed by its next owner."""
        try:
            dispatch.fail(job, reason)
        except Exception:
            log.exception("could not record the failure task_id=%s", job.task_id)
            return
        self._finish(job, TaskState.FAILED, reason)

    def _finish(self, job: Job, state: TaskState, error: str | None = None) -> None:
        with self.db.transaction() as s:
            task_rows.finish_task(s, job.task_id, self.owner, state, error)

    def _progress(self, running: _Running, done: int, total: int) -> None:
        running.done, running.total = done, total
        if running.stop_reason is not None:
            raise TaskCancelled(running.stop_reason)

    def _tick_loop(self) -> None:
        while not self._stopping.wait(_TICK_SECONDS):
            with self._lock:
                running = list(self._running.values())
            for r in running:
                with self.db.transaction() as s:
                    kept = task_rows.renew_lease(
                        s,
                        r.task_id,
                        self.owner,
                        self.settings.lease_seconds,
                        done_bytes=r.done,
                        total_bytes=r.total,
                    )
                if not kept and not r.finished.is_set():
                    r.stop_reason = "lease lost to another worker"

    def _dead_owners(self) -> list[str]:
        """Owners of running tasks that were processes of this host and are gone."""
        with self.db.transaction() as s:
            owners = task_rows.owners_running_on(s, f"{self.host}/")
        return [o for o in owners if o != self.owner and not _alive(o)]


def _alive(owner: str) -> bool:
    try:
        pid = int(owner.split("/")[1])
    except (IndexError, ValueError):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
