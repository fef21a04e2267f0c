"""The worker: claims tasks with a lease, runs them, renews leases, stops cleanly.

DESIGN.md §2. A claimed task runs in a thread of its own (at most
`worker_tasks` at once; creates and restores at most
`max_concurrent_operations` at once over all the processes of the host).
The worker reports its host's service as alive at start and at every
heartbeat (os-services), with the store's health as its last probe found it
(a prober thread asks the store for one object's size every heartbeat);
while an admin has the service disabled, it claims nothing. A ticker thread renews the leases of
running tasks every second, records their progress, and reads their
resource's status. A run is interrupted at its next progress call when:
- its worker is asked to stop: the task is given back untouched;
- its resource left the status the task works in (a force delete or reset):
  the task ends, having changed nothing more (the request that cancelled it
  settled the states);
- its lease is lost, or could not be renewed for half its length (the
  database is away): the run stops before its lease runs out, and leaves
  the task to its next owner. Every transaction of a run checks that the run
  still holds the task (`Job.transaction`), so a late commit is impossible.
A run that cannot reach the store even after the store's own retries
(StoreError), or the database (DatabaseUnavailable), is deferred, as a crash
would leave it: it records why and lets
its lease lapse, and a later claim runs the task again from where it is.
A task claimed more than `max_attempts` times (its workers died, or the store
stayed away) fails, with the last reason recorded.
Database errors in the claim and heartbeat threads are logged and retried,
with a growing pause; they never stop the worker.
Every `gc_interval_seconds` (if not 0) a gc thread queues a gc task for every
container (docs/format.md, "Reclaiming space and checking"), which any worker
runs, one at a time per container.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum

from ashbox import faults, metrics
from ashbox.config import Settings
from ashbox.containers import open_repository
from ashbox.db import lifecycle, outbox
from ashbox.db import services as service_rows
from ashbox.db import tasks as task_rows
from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.errors import (
    AshboxError,
    Conflict,
    DatabaseUnavailable,
    LeaseLost,
    ObjectNotFound,
    StoreError,
    TaskCancelled,
)
from ashbox.malloc import give_back_freed_memory
from ashbox.manager import dispatch
from ashbox.manager.garbage import collect, queue_gc
from ashbox.manager.job import Job
from ashbox.repository.gc import GcReport
from ashbox.statuses import ResourceType, TaskKind, TaskState
from ashbox.storage import StoreOptions, open_store
from ashbox.storage.base import Store
from ashbox.storage.instrumented import instrumented

log = logging.getLogger(__name__)

_TICK_SECONDS = 1.0
_MAX_PAUSE_SECONDS = 30.0  # the longest wait between tries while the database is away
_OUTBOX_RETENTION = timedelta(hours=1)
_REAP_EVERY_TICKS = 300
# The work Cinder's backup_max_operations bounds: it holds a volume's data in flight.
_LIMITED_KINDS = (TaskKind.CREATE_BACKUP, TaskKind.RESTORE_BACKUP)


class _Stop(Enum):
    WORKER_STOPPING = "worker stopping"
    CANCELLED = "cancelled"
    LEASE = "lease lost"


@dataclass
class _Running:
    task_id: str
    resource_type: ResourceType
    resource_id: str
    works_in: str | None
    attempt: int
    last_error: str | None = None  # why an earlier run stopped, if it said
    renewed_at: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int = 0
    stop: _Stop | None = None
    stop_reason: str = ""
    finished: threading.Event = field(default_factory=threading.Event)

    def stop_with(self, stop: _Stop, reason: str) -> None:
        if self.stop is None:
            self.stop, self.stop_reason = stop, reason


class Worker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        store: Store | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.store = (
            store
            if store is not None
            else open_store(settings.resolved_store, StoreOptions.of(settings))
        )
        self.store = instrumented(self.store)  # counted in ashbox.metrics
        self.host = settings.resolved_worker_name
        self.owner = f"{self.host}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, settings.worker_tasks), thread_name_prefix="task"
        )
        self._threads: list[threading.Thread] = []
        self._store_error: str | None = None  # the last probe's answer; None: the store is fine

    def report_alive(self) -> None:
        """Record this host's service as up now (its row is made the first time), with
        what the store said to the last probe."""
        with self.db.transaction() as s:
            service_rows.report_alive(
                s, self.host, self.settings.availability_zone, store_error=self._store_error
            )

    def probe_store(self) -> None:
        """Ask the store for one small object's size: the answer (found or not) says it
        serves; a StoreError, after the store's own retries, says what is wrong."""
        try:
            self.store.size(f"{self.settings.default_container}/config")
        except ObjectNotFound:
            pass
        except StoreError as e:
            if self._store_error is None:
                log.warning("store unavailable owner=%s reason=%s", self.owner, e.message)
            self._store_error = e.message
            return
        if self._store_error is not None:
            log.info("store available again owner=%s", self.owner)
        self._store_error = None

    def start(self) -> None:
        try:
            self.report_alive()
        except Exception:
            log.exception("could not report the service alive owner=%s", self.owner)
        loops = [
            (self._claim_loop, "claimer"),
            (self._tick_loop, "ticker"),
            (self._probe_loop, "prober"),
        ]
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
                running.stop_with(_Stop.WORKER_STOPPING, "worker stopping")
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
            report = collect(self.db, repo, self.settings.gc_repack_live_fraction)
            if report is None:
                raise Conflict("Another gc is running; try again once it ends.")
            reports.append(report)
        return reports

    def _gc_loop(self) -> None:
        """Every `gc_interval_seconds`, queue a gc task per container (one that is
        queued or running already is enough): any worker runs it, one at a time."""
        while not self._stopping.wait(self.settings.gc_interval_seconds):
            try:
                queued = 0
                for container in DbIndex(self.db).containers():
                    with self.db.transaction() as s:
                        max_attempts = self.settings.max_attempts
                        queued += queue_gc(s, container, max_attempts=max_attempts)
                if queued:
                    self._wake.set()
            except Exception:
                # A database away for a while must not stop the worker: the next
                # pass queues again.
                log.exception("could not queue gc owner=%s", self.owner)

    def _probe_loop(self) -> None:
        """Probe the store every heartbeat, apart from the ticker: a probe may wait
        for the store's timeouts and retries, and leases must not."""
        while not self._stopping.wait(self.settings.heartbeat_seconds):
            try:
                self.probe_store()
            except Exception:
                log.exception("could not probe the store owner=%s", self.owner)

    def _claim_loop(self) -> None:
        pause = self._retrying()
        dead_owners = self._dead_owners_or_none()
        while not self._stopping.is_set():
            with self._lock:
                busy = len(self._running) >= max(1, self.settings.worker_tasks)
            try:
                claimed = None if busy else self._claim(dead_owners)
            except Exception:
                log.exception("could not claim a task owner=%s", self.owner)
                self._stopping.wait(next(pause))
                continue
            pause = self._retrying()
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
                zone=self.settings.availability_zone,
                reclaimable_owners=dead_owners,
                limited=_LIMITED_KINDS,
                max_limited=self.settings.max_concurrent_operations,
            )
            if task is None:
                return None
            kind = TaskKind(task.kind)
            running = _Running(
                task_id=task.id,
                resource_type=ResourceType(task.resource_type),
                resource_id=task.resource_id,
                works_in=dispatch.HANDLERS[kind].works_in,
                attempt=task.attempts,
                last_error=task.last_error,
            )
            job = Job(
                db=self.db,
                settings=self.settings,
                store=self.store,
                task_id=task.id,
                kind=kind,
                resource_type=running.resource_type,
                resource_id=task.resource_id,
                payload=dict(task.payload or {}),
                attempts=task.attempts,
                max_attempts=task.max_attempts,
                owner=self.owner,
                worker_host=self.host,
                progress=lambda done, total: self._progress(running, done, total),
                works_in=running.works_in,
            )
        faults.point("task.claimed")
        if task.attempts > 1:
            metrics.TASK_TAKEOVERS.labels(kind).inc()
        with self._lock:
            self._running[running.task_id] = running
        log.info(
            "task claimed task_id=%s kind=%s resource_id=%s attempt=%d",
            job.task_id,
            job.kind,
            job.resource_id,
            job.attempts,
        )
        return job, running

    def _execute(self, job: Job, running: _Running) -> None:
        started = time.monotonic()
        outcome = metrics.FAILED
        metrics.TASKS_RUNNING.labels(job.kind).inc()
        try:
            if job.attempts > job.max_attempts:
                why = (
                    running.last_error or "the worker running this task stopped before finishing it"
                )
                reason = f"Gave up after {job.max_attempts} attempts: {why}."
                outcome = self._fail(job, reason)
            else:
                dispatch.run(job)
                faults.point("task.ended")
                outcome = self._end(job, TaskState.DONE)  # if the task's code did not end it
        except TaskCancelled as cancelled:
            outcome = self._cancelled(job, running, cancelled)
        except (StoreError, DatabaseUnavailable) as exc:
            outcome = self._defer(job, exc.message)
        except AshboxError as exc:
            # A failure ashbox names (a volume gone, corrupt data): its reason says it all.
            log.warning(
                "task failed task_id=%s resource_id=%s reason=%s",
                job.task_id,
                job.resource_id,
                exc.message,
            )
            outcome = self._fail(job, exc.message)
        except Exception as exc:
            # Anything else is a defect: its traceback goes to the log.
            log.exception("task failed task_id=%s resource_id=%s", job.task_id, job.resource_id)
            outcome = self._fail(job, str(exc) or type(exc).__name__)
        finally:
            metrics.TASKS_RUNNING.labels(job.kind).dec()
            metrics.OPERATIONS.labels(job.kind, outcome).inc()
            metrics.OPERATION_DURATION.labels(job.kind).observe(time.monotonic() - started)
            with self._lock:
                self._running.pop(job.task_id, None)
                idle = not self._running
            if idle:
                give_back_freed_memory()
            running.finished.set()
            self._wake.set()  # a slot is free: a queued task need not wait for the poll

    def _defer(self, job: Job, reason: str) -> str:
        """Stop the run as a crash would, saying why: its lease lapses and another
        claim (after `lease_seconds`) runs the task again."""
        log.warning(
            "task deferred task_id=%s resource_id=%s attempt=%d reason=%s",
            job.task_id,
            job.resource_id,
            job.attempts,
            reason,
        )
        try:
            with self.db.transaction() as s:
                task_rows.note_error(s, job.task_id, self.owner, job.attempts, reason)
        except Exception:
            log.exception("could not record why the task was deferred task_id=%s", job.task_id)
        return metrics.DEFERRED

    def _cancelled(self, job: Job, running: _Running, cancelled: TaskCancelled) -> str:
        """End an interrupted run; its outcome (ashbox.metrics)."""
        log.info("task interrupted task_id=%s reason=%s", job.task_id, cancelled.message)
        if isinstance(cancelled, LeaseLost) or running.stop is _Stop.LEASE:
            return metrics.LOST  # the task is another run's now, or will be once its lease lapses
        try:
            with self.db.transaction() as s:
                if running.stop is _Stop.WORKER_STOPPING:
                    task_rows.give_back_task(s, job.task_id, self.owner, job.attempts)
                    return metrics.GIVEN_BACK
                else:
                    task_rows.finish_task(
                        s,
                        job.task_id,
                        self.owner,
                        job.attempts,
                        TaskState.DONE,
                        f"cancelled: {running.stop_reason}",
                    )
                    return metrics.CANCELLED
        except Exception:
            log.exception("could not end the interrupted task task_id=%s", job.task_id)
            return metrics.LOST  # its lease lapses: the next claim runs it again

    def _fail(self, job: Job, reason: str) -> str:
        """Record the failure; if even that fails, keep the lease to lapse, so the
        task is claimed again and, past max_attempts, failed by its next owner.
        The run's outcome (ashbox.metrics)."""
        try:
            dispatch.fail(job, reason)
        except LeaseLost:
            log.info("task lost before its failure was recorded task_id=%s", job.task_id)
        except Exception:
            log.exception("could not record the failure task_id=%s", job.task_id)
        else:
            return metrics.FAILED
        return metrics.LOST

    def _end(self, job: Job, state: TaskState, error: str | None = None) -> str:
        """End the task as `state` unless its code ended it; the state it ended in."""
        with self.db.transaction() as s:
            if task_rows.finish_task(s, job.task_id, self.owner, job.attempts, state, error):
                return state.value
            task = task_rows.get_task(s, job.task_id)
            ended = task.state if task is not None else metrics.LOST
        return ended if ended in (TaskState.DONE, TaskState.FAILED) else metrics.LOST

    def _progress(self, running: _Running, done: int, total: int) -> None:
        running.done, running.total = done, total
        if running.stop is _Stop.LEASE:
            raise LeaseLost(running.task_id)
        if running.stop is not None:
            raise TaskCancelled(running.stop_reason)

    def _tick_loop(self) -> None:
        ticks = 0
        reported = time.monotonic()
        while not self._stopping.wait(_TICK_SECONDS):
            with self._lock:
                running = list(self._running.values())
            for r in running:
                self._heartbeat(r)
            if time.monotonic() - reported >= self.settings.heartbeat_seconds:
                reported = time.monotonic()
                try:
                    self.report_alive()
                except Exception:
                    log.exception("could not report the service alive owner=%s", self.owner)
            ticks += 1
            if ticks % _REAP_EVERY_TICKS == 0:
                self._reap_outbox()

    def _heartbeat(self, r: _Running) -> None:
        """Renew the lease and look at the resource; stop the run if it must."""
        try:
            with self.db.transaction() as s:
                kept = task_rows.renew_lease(
                    s,
                    r.task_id,
                    self.owner,
                    r.attempt,
                    self.settings.lease_seconds,
                    done_bytes=r.done,
                    total_bytes=r.total,
                )
                watched = kept and r.works_in is not None
                status = lifecycle.status_of(s, r.resource_type, r.resource_id) if watched else None
        except Exception:
            log.exception("could not renew a lease task_id=%s", r.task_id)
            if time.monotonic() - r.renewed_at > self.settings.lease_seconds / 2:
                r.stop_with(_Stop.LEASE, "the lease could not be renewed in time")
            return
        if r.finished.is_set():
            return
        if not kept:
            r.stop_with(_Stop.LEASE, "lease lost to another worker")
            return
        r.renewed_at = time.monotonic()
        if r.works_in is not None and status != r.works_in:
            r.stop_with(
                _Stop.CANCELLED, f"{r.resource_type} {r.resource_id} is now {status or 'gone'}"
            )

    def _reap_outbox(self) -> None:
        try:
            with self.db.transaction() as s:
                outbox.reap(s, datetime.now(UTC) - _OUTBOX_RETENTION)
        except Exception:
            log.exception("could not reap the outbox")

    def _dead_owners(self) -> list[str]:
        """Owners of running tasks that were processes of this host and are gone."""
        with self.db.transaction() as s:
            owners = task_rows.owners_running_on(s, f"{self.host}/")
        return [o for o in owners if o != self.owner and not _alive(o)]

    def _dead_owners_or_none(self) -> list[str]:
        try:
            return self._dead_owners()
        except Exception:
            log.exception("could not look for the tasks of dead processes")
            return []

    @staticmethod
    def _retrying() -> Iterator[float]:
        """Pauses between tries: 0.5 s, doubling, at most _MAX_PAUSE_SECONDS."""
        pause = 0.5
        while True:
            yield pause
            pause = min(pause * 2, _MAX_PAUSE_SECONDS)


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
