"""The Prometheus metrics move as the work is done, and are served (docs/metrics.md).

prometheus_client's registry is one per process and other tests move it too:
every assertion is on a difference, read before and after.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from sqlalchemy import func, select

from ashbox import metrics
from ashbox.api.app import create_app
from ashbox.cli.serve_command import pending_tasks
from ashbox.db import tasks as task_rows
from ashbox.db.models import Blob, Pack, Volume
from ashbox.errors import ObjectNotFound, StoreError
from ashbox.statuses import BackupStatus, TaskKind, VolumeStatus
from ashbox.storage.instrumented import InstrumentedStore
from ashbox.storage.posix import PosixStore
from tests.api.conftest import serving
from tests.conftest import free_port
from tests.harness import Harness

BLOCK = 64 * 1024  # the harness's block size
CREATE, RESTORE = TaskKind.CREATE_BACKUP.value, TaskKind.RESTORE_BACKUP.value


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Deltas:
    """Samples read now, to be compared with the same samples later."""

    def __init__(self, *samples: tuple[str, dict[str, str]]) -> None:
        self.samples = samples
        self.before = [value(name, **labels) for name, labels in samples]

    def __call__(self) -> dict[str, float]:
        """Each sample's change, keyed `name{label=value,...}`."""
        return {
            _key(name, labels): value(name, **labels) - before
            for (name, labels), before in zip(self.samples, self.before, strict=True)
        }


def _key(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


def test_a_backup_and_its_restore_move_the_operation_byte_and_store_counters(
    harness: Harness,
) -> None:
    first, other = os.urandom(BLOCK), os.urandom(BLOCK)
    # Blocks: data, the same data again (deduplicated), zeros (a hole), data, 4 sparse.
    image = first + first + bytes(BLOCK) + other
    volume_id = harness.import_image("v.raw", image, size=8 * BLOCK)
    deltas = Deltas(
        ("ashbox_operations_total", {"kind": CREATE, "outcome": "done"}),
        ("ashbox_operation_duration_seconds_count", {"kind": CREATE}),
        ("ashbox_backup_data_bytes_total", {}),
        ("ashbox_backup_stored_bytes_total", {}),
        ("ashbox_backup_deduplicated_bytes_total", {}),
        ("ashbox_store_requests_total", {"operation": "put"}),
        ("ashbox_store_sent_bytes_total", {}),
        ("ashbox_tasks_running", {"kind": CREATE}),
    )
    backup_id = harness.backup(volume_id)
    backup = harness.service.get_backup(harness.ctx, backup_id)
    assert backup.status == BackupStatus.AVAILABLE and backup.stored_size > 0
    moved = deltas()
    assert moved["ashbox_operations_total{kind=create_backup,outcome=done}"] == 1
    assert moved["ashbox_operation_duration_seconds_count{kind=create_backup}"] == 1
    assert moved["ashbox_backup_data_bytes_total{}"] == 3 * BLOCK
    # The counter is what the store took (packs whole); the backup's figure is its
    # blobs' bytes, counted within its project (ashbox.db.stored_bytes).
    with harness.db.reading() as s:
        pack_bytes = s.scalar(select(func.sum(Pack.size)))
        blob_bytes = s.scalar(select(func.sum(Blob.length)))
    assert moved["ashbox_backup_stored_bytes_total{}"] == pack_bytes
    assert backup.stored_size == blob_bytes < pack_bytes
    assert moved["ashbox_backup_deduplicated_bytes_total{}"] == BLOCK
    assert moved["ashbox_store_requests_total{operation=put}"] > 0
    assert moved["ashbox_store_sent_bytes_total{}"] >= backup.stored_size
    assert moved["ashbox_tasks_running{kind=create_backup}"] == 0

    deltas = Deltas(
        ("ashbox_operations_total", {"kind": RESTORE, "outcome": "done"}),
        ("ashbox_restore_data_bytes_total", {}),
        ("ashbox_store_requests_total", {"operation": "get"}),
        ("ashbox_store_received_bytes_total", {}),
    )
    restore = harness.service.restore_backup(harness.ctx, backup_id)
    harness.run_tasks()
    restored = Path(harness.service.get_volume(harness.ctx, restore.volume_id).path)
    assert restored.read_bytes()[: len(image)] == image
    moved = deltas()
    assert moved["ashbox_operations_total{kind=restore_backup,outcome=done}"] == 1
    assert moved["ashbox_restore_data_bytes_total{}"] == 3 * BLOCK
    assert moved["ashbox_store_requests_total{operation=get}"] > 0
    assert moved["ashbox_store_received_bytes_total{}"] > 0


def test_a_task_that_raises_and_one_that_ends_itself_failed_are_counted_failed(
    harness: Harness,
) -> None:
    failed = Deltas(
        ("ashbox_operations_total", {"kind": CREATE, "outcome": "failed"}),
        ("ashbox_operations_total", {"kind": CREATE, "outcome": "done"}),
    )
    # Raises: the volume's file is gone.
    volume_id = harness.import_image("gone.raw", os.urandom(BLOCK))
    gone = harness.service.create_backup(harness.ctx, volume_id=volume_id)
    (harness.root / "gone.raw").unlink()
    harness.run_tasks()
    # Ends itself failed (B3): the volume is no longer backing-up when the task runs.
    volume_id = harness.import_image("moved.raw", os.urandom(BLOCK))
    moved_on = harness.service.create_backup(harness.ctx, volume_id=volume_id)
    harness.force_status(Volume, volume_id, VolumeStatus.AVAILABLE)
    harness.run_tasks()
    for backup_id in (gone.id, moved_on.id):
        assert harness.service.get_backup(harness.ctx, backup_id).status == BackupStatus.ERROR
    assert list(failed().values()) == [2, 0]


def test_a_task_claimed_after_another_workers_lease_ran_out_is_a_take_over(
    harness: Harness,
) -> None:
    volume_id = harness.import_image("v.raw", os.urandom(BLOCK))
    backup_id = harness.service.create_backup(harness.ctx, volume_id=volume_id).id
    takeovers = Deltas(("ashbox_task_takeovers_total", {"kind": CREATE}))
    with harness.db.transaction() as s:
        zone = harness.settings.availability_zone
        assert task_rows.claim_task(s, "dead/1/x", harness.worker.host, 0.01, zone=zone)
    time.sleep(0.05)  # its lease runs out
    harness.run_tasks()
    assert harness.service.get_backup(harness.ctx, backup_id).status == BackupStatus.AVAILABLE
    assert list(takeovers().values()) == [1]


class _FailingStore:
    """A store (the seam we own) whose every call raises `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def put(self, key: str, data: bytes | memoryview) -> None:
        raise self.error

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        raise self.error

    def size(self, key: str) -> int:
        raise self.error

    def delete(self, key: str) -> None:
        raise self.error

    def list(self, prefix: str) -> Iterator[str]:
        raise self.error


def test_the_store_counts_requests_bytes_and_errors_by_kind(tmp_path: Path) -> None:
    store = InstrumentedStore(PosixStore(tmp_path))
    deltas = Deltas(
        ("ashbox_store_requests_total", {"operation": "put"}),
        ("ashbox_store_requests_total", {"operation": "get"}),
        ("ashbox_store_requests_total", {"operation": "list"}),
        ("ashbox_store_sent_bytes_total", {}),
        ("ashbox_store_received_bytes_total", {}),
        ("ashbox_store_errors_total", {"operation": "get", "error": "not_found"}),
        ("ashbox_store_errors_total", {"operation": "put", "error": "store_error"}),
        ("ashbox_store_errors_total", {"operation": "list", "error": "other"}),
    )
    store.put("c/a", memoryview(b"12345"))
    assert store.get("c/a", 1, 2) == b"23"
    assert list(store.list("c/")) == ["c/a"]
    with pytest.raises(ObjectNotFound):
        store.get("c/missing")
    with pytest.raises(StoreError):
        InstrumentedStore(_FailingStore(StoreError("down"))).put("c/b", b"x")
    with pytest.raises(OSError):
        list(InstrumentedStore(_FailingStore(OSError("bad"))).list("c/"))
    assert list(deltas().values()) == [2, 2, 2, 5, 2, 1, 1, 1]


def test_the_api_counts_requests_by_route_template_never_by_path(harness: Harness) -> None:
    app = create_app(harness.service, harness.settings)
    backup_id = str(uuid.uuid4())
    template = "/v3/{project_id}/backups/{backup_id}"
    deltas = Deltas(
        ("ashbox_api_requests_total", {"method": "GET", "route": template, "status": "4xx"}),
        ("ashbox_api_requests_total", {"method": "GET", "route": "/healthcheck", "status": "2xx"}),
        ("ashbox_api_requests_total", {"method": "GET", "route": "unmatched", "status": "4xx"}),
        ("ashbox_api_requests_total", {"method": "other", "route": template, "status": "4xx"}),
    )
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        token = {"X-Auth-Token": "u1:p1"}
        assert client.get(f"/v3/p1/backups/{backup_id}", headers=token).status_code == 404
        assert client.get(f"/v3/p1/backups/{backup_id}").status_code == 401  # before routing
        assert client.get("/healthcheck").status_code == 200
        assert client.get(f"/nowhere/{backup_id}", headers=token).status_code == 404
        assert client.request("BREW", f"/v3/p1/backups/{backup_id}", headers=token).status_code
    assert list(deltas().values()) == [2, 1, 1, 1]
    assert backup_id not in generate_latest(REGISTRY).decode()


def test_metrics_are_served_over_http_without_a_token_with_the_queue(harness: Harness) -> None:
    volume_id = harness.create_volume("v")
    harness.service.create_backup(harness.ctx, volume_id=volume_id)  # queued, not run
    metrics.watch_queue(functools.partial(pending_tasks, harness.db))
    try:
        with serving(create_app(harness.service, harness.settings)) as url:
            answer = httpx.get(f"{url}/metrics", timeout=10)
    finally:
        metrics.watch_queue(None)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    lines = answer.text.splitlines()
    assert 'ashbox_tasks_pending{kind="create_backup"} 1.0' in lines
    assert 'ashbox_tasks_pending{kind="restore_backup"} 0.0' in lines
    for name in ("ashbox_operations_total", "ashbox_store_requests_total"):
        assert any(line.startswith(name + "{") for line in lines), name
    assert volume_id not in answer.text


def test_without_metrics_enabled_the_api_has_no_metrics_route(harness: Harness) -> None:
    settings = dataclasses.replace(harness.settings, metrics_enabled=False)
    with serving(create_app(harness.service, settings)) as url:
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 404


@pytest.mark.integration
def test_a_worker_process_serves_its_metrics_on_its_metrics_port(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASHBOX_")}
    env.update(
        ASHBOX_DATA_DIR=str(tmp_path / "data"),
        ASHBOX_METRICS_PORT=str(port),
        ASHBOX_GC_INTERVAL_SECONDS="0",
    )
    command = [sys.executable, "-m", "ashbox.cli"]
    upgrade = subprocess.run([*command, "db", "upgrade"], env=env, capture_output=True, timeout=60)
    assert upgrade.returncode == 0, upgrade.stderr
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen([*command, "worker"], env=env, stdout=out, stderr=out)
    try:
        text = _scrape(f"http://127.0.0.1:{port}/metrics", log)
        assert 'ashbox_operations_total{kind="create_backup",outcome="done"} 0.0' in text
        assert "ashbox_tasks_running" in text and "ashbox_store_requests_total" in text
        assert "ashbox_tasks_pending" not in text  # the API's to report
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, log.read_text()[-3000:]


def _scrape(url: str, log: Path) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            answer = httpx.get(url, timeout=1)
            answer.raise_for_status()
            return answer.text
        except httpx.TransportError:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
