"""The worker: claims tasks with a lease, runs them, renews leases, stops cleanly.

DESIGN.md §2. A claimed task runs in a thread of its own (at most
`worker_tasks` at once; creates and restores at most
`max_concurrent_operations` at once over all the processes of the host).
The worker reports its host's service as alive at start and at every
heartbeat (worker/health.py); while an admin has the service disabled, it
claims nothing. A ticker thread renews the leases of running tasks every
second and stops the runs that must stop (worker/running.py). Every
transaction of a run checks that the run still holds the task
(`Job.transaction`), so a late commit is impossible.
A run that cannot reach the store even after the store's own retries
(StoreError), or the database (DatabaseUnavailable), is deferred, as a crash
would leave it: it records why and lets
its lease lapse, and a later claim runs the task again from where it is.
A task claimed more than `max_attempts` times (its workers died, or the store
stayed away) fails, with the last reason recorded.
Database errors in the claim and heartbeat threads are logged and retried,
with a growing pause; they never stop the worker. A gc thread queues gc
tasks (worker/periodic.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from ashbox import faults, metrics, request_ids
from ashbox.config import Settings
from ashbox.containers import open_repository
from ashbox.db import tasks as task_rows
from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.errors import (
    AshboxError,
    Conflict,
    DatabaseUnavailable,
    LeaseLost,
    PackAbandoned,
    StoreError,
    TaskCancelled,
)
from ashbox.keymgr import open_key_manager
from ashbox.malloc import give_back_freed_memory
from ashbox.manager import dispatch
from ashbox.manager.garbage import collect
from ashbox.manager.job import Job
from ashbox.repository.gc import GcReport
from ashbox.statuses import ResourceType, TaskKind, TaskState
from ashbox.storage import StoreOptions, open_store
from ashbox.storage.base import Store
from ashbox.storage.instrumented import instrumented
from ashbox.worker.health import HostHealth
from ashbox.worker.notifier import NotificationSender, open_emitter
from ashbox.worker.periodic import queue_gc_until, reap_messages, reap_outbox
from ashbox.worker.running import Running, Stop, heartbeat

log = logging.getLogger(__name__)

_TICK_SECONDS = 1.0
_MAX_PAUSE_SECONDS = 30.0  # the longest wait between tries while the database is away
_REAP_EVERY_TICKS = 300
# The work Cinder's backup_max_operations bounds: it holds a volume's data in flight.
_LIMITED_KINDS = (TaskKind.CREATE_BACKUP, TaskKind.RESTORE_BACKUP)


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
        self._running: dict[str, Running] = {}
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, settings.worker_tasks), thread_name_prefix="task"
        )
        self._threads: list[threading.Thread] = []
        self.health = HostHealth(db, settings, self.store, self.owner)
        self.notifier = NotificationSender(db, settings, open_emitter(settings))
        self.keys = open_key_manager(settings, db)
        self._notify = threading.Event()
        db.on_outbox_commit(self._notify.set)

    def start(self) -> None:
        try:
            self.health.report_alive()
        except Exception:
            log.exception("could not report the service alive owner=%s", self.owner)
        loops: list[tuple[Callable[[], None], str]] = [
            (self._claim_loop, "claimer"),
            (self._tick_loop, "ticker"),
            (partial(self.health.probe_until, self._stopping), "prober"),
            (partial(self.notifier.run_until, self._stopping, self._notify), "notifier"),
        ]
        if self.settings.gc_interval_seconds > 0:
            queue_gc = partial(queue_gc_until, self.db, self.settings, self._stopping, self._wake)
            loops.append((queue_gc, "gc"))
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
        self._notify.set()
        with self._lock:
            for running in self._running.values():
                running.stop_with(Stop.WORKER_STOPPING, "worker stopping")
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

    def _claim(self, dead_owners: list[str]) -> tuple[Job, Running] | None:
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
            running = Running(
                task_id=task.id,
                resource_type=ResourceType(task.resource_type),
                resource_id=task.resource_id,
                works_in=dispatch.HANDLERS[kind].works_in,
                attempt=task.attempts,
                last_error=task.last_error,
                notifies_progress=kind == TaskKind.CREATE_BACKUP,
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
                progress=running.progress,
                keys=self.keys,
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

    def _execute(self, job: Job, running: Running) -> None:
        request_id = job.payload.get(request_ids.PAYLOAD_KEY)
        with request_ids.acting_for(request_id if isinstance(request_id, str) else None):
            self._run(job, running)

    def _run(self, job: Job, running: Running) -> None:
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

    def _cancelled(self, job: Job, running: Running, cancelled: TaskCancelled) -> str:
        """End an interrupted run; its outcome (ashbox.metrics)."""
        log.info("task interrupted task_id=%s reason=%s", job.task_id, cancelled.message)
        if isinstance(cancelled, LeaseLost | PackAbandoned) or running.stop is Stop.LEASE:
            return metrics.LOST  # the task is another run's now, or will be once its lease lapses
        try:
            with self.db.transaction() as s:
                if running.stop is Stop.WORKER_STOPPING:
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

    def _tick_loop(self) -> None:
        ticks = 0
        reported = time.monotonic()
        messages_reaped = -float("inf")  # at the first tick, then every message_reap_interval
        while not self._stopping.wait(_TICK_SECONDS):
            with self._lock:
                running = list(self._running.values())
            for r in running:
                heartbeat(self.db, self.settings, self.owner, r)
            if time.monotonic() - reported >= self.settings.heartbeat_seconds:
                reported = time.monotonic()
                try:
                    self.health.report_alive()
                except Exception:
                    log.exception("could not report the service alive owner=%s", self.owner)
            ticks += 1
            if ticks % _REAP_EVERY_TICKS == 0:
                reap_outbox(self.db)
            if time.monotonic() - messages_reaped >= self.settings.message_reap_interval:
                messages_reaped = time.monotonic()
                reap_messages(self.db, self.settings)

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
