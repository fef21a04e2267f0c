"""Placement: work on a volume runs on the host that holds it, or on any worker
when it lies under a shared root; creates follow zones; store-only work runs
anywhere; with no live worker able to take it, a create fails as Cinder's
scheduler fails it (CINDER-CONTRACT §2.2)."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy.orm import Session

from ashbox.db import services as service_rows
from ashbox.db import volumes as volume_rows
from ashbox.errors import InvalidInput
from ashbox.statuses import BackupStatus, VolumeStatus
from ashbox.worker.runner import Worker
from tests.harness import Harness


def _worker(harness: Harness, name: str, **overrides: object) -> Worker:
    """A worker of another host, on the same database and store."""
    settings = dataclasses.replace(harness.settings, worker_name=name, **overrides)  # type: ignore[arg-type]
    worker = Worker(harness.db, settings)
    worker.health.report_alive()
    return worker


def _run(worker: Worker) -> int:
    count = 0
    while worker.run_one():
        count += 1
    return count


def test_a_volume_made_by_a_worker_belongs_to_its_host(harness: Harness) -> None:
    volume_id = harness.create_volume("v")
    with harness.db.reading() as s:
        assert _host_of(s, volume_id) == harness.worker.host


def test_a_volume_under_a_shared_root_belongs_to_no_host(harness: Harness) -> None:
    shared = Harness(harness.db, harness.root, shared_volume_roots=str(harness.root))
    volume_id = shared.import_image("img", b"x" * 4096)
    other = _worker(shared, "other")
    backup = shared.service.create_backup(shared.ctx, volume_id=volume_id)
    assert _run(other) == 1  # any worker reaches it
    assert shared.service.get_backup(shared.ctx, backup.id).status == BackupStatus.AVAILABLE
    with harness.db.reading() as s:
        assert _host_of(s, volume_id) is None


def test_a_volume_managed_on_another_host_is_worked_on_there_only(harness: Harness) -> None:
    path = harness.image("img", b"y" * 4096)
    with pytest.raises(InvalidInput, match="no backup service is up on host other"):
        harness.service.import_volume(harness.ctx, path=str(path), host="other@ashbox#pool")
    other = _worker(harness, "other")
    volume_id = harness.service.import_volume(
        harness.ctx, path=str(path), host="other@ashbox#pool"
    ).id
    assert harness.run_tasks() == 0
    assert _run(other) == 1
    assert harness.service.get_volume(harness.ctx, volume_id).status == VolumeStatus.AVAILABLE
    backup = harness.service.create_backup(harness.ctx, volume_id=volume_id)
    assert harness.run_tasks() == 0
    assert _run(other) == 1
    # Deleting the backup touches the store only: this host's worker may do it.
    harness.service.delete_backup(harness.ctx, backup.id)
    assert harness.run_tasks() == 1


def test_a_create_no_live_worker_can_take_fails_at_once(harness: Harness) -> None:
    path = harness.image("img", b"z" * 4096)
    other = _worker(harness, "other")
    volume_id = harness.service.import_volume(harness.ctx, path=str(path), host="other").id
    assert _run(other) == 1
    with harness.db.transaction() as s:
        row = service_rows.get_service(s, "other", service_rows.BACKUP_BINARY)
        assert row is not None
        service_rows.set_disabled(s, row, True, None)
    backup = harness.service.create_backup(harness.ctx, volume_id=volume_id)
    assert (backup.status, backup.fail_reason) == (
        BackupStatus.ERROR,
        "Service not found for creating backup.",
    )
    assert harness.service.get_volume(harness.ctx, volume_id).status == VolumeStatus.AVAILABLE
    assert harness.run_tasks() == 0


def test_a_create_in_a_zone_without_workers_fails(harness: Harness) -> None:
    volume_id = harness.create_volume("v")
    backup = harness.service.create_backup(
        harness.ctx, volume_id=volume_id, availability_zone="az2"
    )
    assert backup.fail_reason == "Service not found for creating backup."
    _worker(harness, harness.worker.host, availability_zone="az2")  # the host moves to az2
    backup = harness.service.create_backup(
        harness.ctx, volume_id=volume_id, availability_zone="az2"
    )
    assert backup.status == BackupStatus.CREATING
    assert harness.run_tasks() == 0  # this worker is configured in nova still
    az2 = _worker(harness, harness.worker.host, availability_zone="az2")
    assert _run(az2) == 1


def _host_of(s: Session, volume_id: str) -> str | None:
    volume = volume_rows.get_volume(s, volume_id)
    assert volume is not None
    return volume.host
