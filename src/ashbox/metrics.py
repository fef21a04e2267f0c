"""Prometheus metrics of the API and the workers, defined once (docs/metrics.md).

Every metric lives in prometheus_client's process-wide default registry, so
`ashbox serve` (the API and a worker in one process) shows both on its
`/metrics`; an `ashbox worker` serves them on `metrics_port`. Labels only
ever hold bounded, public values: task kinds, outcomes, store operations,
error kinds, HTTP methods, route templates and status classes; never a
project, backup or volume id, a name or a path.

The queue depth is read from the database at scrape time (`watch_queue`),
at most once a second, by the processes that serve the API.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric

from ashbox.statuses import TaskKind

if TYPE_CHECKING:
    from ashbox.repository.writer import BackupStats

log = logging.getLogger(__name__)

# How a task's run ended: see docs/metrics.md.
DONE, FAILED, CANCELLED, GIVEN_BACK, LOST = "done", "failed", "cancelled", "given_back", "lost"
DEFERRED = "deferred"
OUTCOMES = (DONE, FAILED, CANCELLED, GIVEN_BACK, LOST, DEFERRED)
STORE_OPERATIONS = ("put", "get", "size", "delete", "list")
NOT_FOUND, STORE_ERROR, OTHER = "not_found", "store_error", "other"
STORE_ERRORS = (NOT_FOUND, STORE_ERROR, OTHER)
# From a gc of an empty container (well under a second) to a large volume's backup.
DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200)
QUEUE_CACHE_SECONDS = 1.0  # scrapes in between are answered from the last count

# No `_created` series: they double the text for no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]

OPERATIONS = Counter(
    "ashbox_operations",
    "Task runs that ended, by task kind and outcome.",
    ["kind", "outcome"],
)
OPERATION_DURATION = Histogram(
    "ashbox_operation_duration_seconds",
    "Time a task run took, from its start in a worker to its end, by task kind.",
    ["kind"],
    buckets=DURATION_BUCKETS,
)
TASKS_RUNNING = Gauge(
    "ashbox_tasks_running", "Tasks this process is running now, by task kind.", ["kind"]
)
TASK_TAKEOVERS = Counter(
    "ashbox_task_takeovers",
    "Tasks claimed after another worker held them (its lease ran out), by task kind.",
    ["kind"],
)
BACKUP_DATA_BYTES = Counter(
    "ashbox_backup_data_bytes",
    "Volume bytes that finished backups read as data: blocks neither holes nor all zeros.",
)
BACKUP_STORED_BYTES = Counter(
    "ashbox_backup_stored_bytes",
    "Bytes finished backups wrote to the store as packs, after dedup and compression.",
)
BACKUP_DEDUPLICATED_BYTES = Counter(
    "ashbox_backup_deduplicated_bytes",
    "Data bytes finished backups did not store again: their block was already stored.",
)
RESTORE_DATA_BYTES = Counter(
    "ashbox_restore_data_bytes",
    "Data bytes (blocks that are not holes) finished restores wrote to volumes.",
)
STORE_REQUESTS = Counter(
    "ashbox_store_requests",
    "Calls to the backup store, by operation.",
    ["operation"],
)
STORE_FAILURES = Counter(
    "ashbox_store_errors",
    "Calls to the backup store that raised, by operation and error kind.",
    ["operation", "error"],
)
STORE_SENT_BYTES = Counter("ashbox_store_sent_bytes", "Bytes put into the backup store.")
STORE_RECEIVED_BYTES = Counter("ashbox_store_received_bytes", "Bytes read from the backup store.")
API_REQUESTS = Counter(
    "ashbox_api_requests",
    "HTTP requests the API answered, by method, route template and status class.",
    ["method", "route", "status"],
)

for _kind in TaskKind:  # every series exists from the start, at 0
    OPERATION_DURATION.labels(_kind.value)
    TASKS_RUNNING.labels(_kind.value)
    TASK_TAKEOVERS.labels(_kind.value)
    for _outcome in OUTCOMES:
        OPERATIONS.labels(_kind.value, _outcome)
for _operation in STORE_OPERATIONS:
    STORE_REQUESTS.labels(_operation)
    for _error in STORE_ERRORS:
        STORE_FAILURES.labels(_operation, _error)


def count_backup(stats: BackupStats, block_size: int) -> None:
    """Count a finished backup's bytes. Blocks count whole, so the figures are
    exact when the volume's size is a multiple of the block size (every Cinder
    volume is whole GiB), else off by at most one block."""
    data = min(stats.volume_size, (stats.new_blobs + stats.reused_blobs) * block_size)
    BACKUP_DATA_BYTES.inc(data)
    BACKUP_STORED_BYTES.inc(stats.stored_bytes)
    BACKUP_DEDUPLICATED_BYTES.inc(min(data, stats.reused_blobs * block_size))


def watch_queue(pending: Callable[[], Mapping[str, int]] | None) -> None:
    """Report `ashbox_tasks_pending` from `pending()` (pending tasks by kind),
    called at scrape time; None stops reporting it."""
    _QUEUE.watch(pending)


class _QueueCollector:
    """`ashbox_tasks_pending`: one count per task kind, read at most once per
    QUEUE_CACHE_SECONDS. A failing read is logged and leaves the metric out."""

    NAME = "ashbox_tasks_pending"
    HELP = "Tasks waiting in the queue for a worker, by task kind."

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Callable[[], Mapping[str, int]] | None = None
        self._read_at = -QUEUE_CACHE_SECONDS
        self._counts: Mapping[str, int] = {}

    def watch(self, pending: Callable[[], Mapping[str, int]] | None) -> None:
        with self._lock:
            self._pending, self._read_at = pending, -QUEUE_CACHE_SECONDS

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.NAME, self.HELP, labels=["kind"])

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if self._pending is None:
                return
            if time.monotonic() - self._read_at >= QUEUE_CACHE_SECONDS:
                try:
                    self._counts = self._pending()
                except Exception:
                    # A scrape while the database is away: the other metrics still answer.
                    log.exception("could not count the pending tasks")
                    return
                self._read_at = time.monotonic()
            counts = self._counts
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["kind"])
        for kind in TaskKind:
            family.add_metric([kind.value], counts.get(kind.value, 0))
        yield family


_QUEUE = _QueueCollector()
REGISTRY.register(_QUEUE)
