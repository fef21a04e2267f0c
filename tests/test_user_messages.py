"""Every failure path of docs/states.md writes its user message, in the failure's
own transaction, with Cinder's resource type, action and detail (§3.7)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from ashbox import failure_messages, request_ids
from ashbox.db.models import Message, Service, Volume
from ashbox.statuses import BackupStatus, VolumeStatus
from ashbox.transitions import MACHINES
from tests.harness import Harness

DATA = os.urandom(256 * 1024)


def _messages(h: Harness) -> list[tuple[str, str | None, str]]:
    """(event_id, resource_uuid, project_id) of every message, oldest first."""
    with h.db.reading() as s:
        rows = s.scalars(select(Message).order_by(Message.created_at, Message.id))
        return [(m.event_id, m.resource_uuid, m.project_id) for m in rows]


def _wait_until(h: Harness, done: object) -> None:
    deadline = time.monotonic() + 30
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline
        h.run_tasks()
        time.sleep(0.1)


def test_every_failure_transition_has_its_message() -> None:
    failures = {
        (machine.resource, t.event)
        for machine in MACHINES.values()
        for t in machine
        if t.event.endswith("_failed")
    }
    told = set(failure_messages.MESSAGES) | failure_messages.TOLD_ELSEWHERE
    assert failures == told


def test_b3_a_source_in_the_wrong_status(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    backup = harness.service.create_backup(harness.ctx, volume_id=vid)
    harness.force_status(Volume, vid, VolumeStatus.ERROR)
    harness.run_tasks()
    assert _messages(harness) == [("VOLUME_VOLUME_BACKUP_013_017", backup.id, "p1")]


def test_b5_a_failed_create(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    backup = harness.service.create_backup(harness.ctx, volume_id=vid)
    (harness.root / "v.raw").unlink()
    harness.run_tasks()
    assert _messages(harness) == [("VOLUME_VOLUME_BACKUP_013_020", backup.id, "p1")]


def test_b2_no_service_to_create(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    with harness.db.transaction() as s:
        s.execute(delete(Service))
    backup = harness.service.create_backup(harness.ctx, volume_id=vid)
    assert backup.status == BackupStatus.ERROR
    assert _messages(harness) == [("VOLUME_VOLUME_BACKUP_013_024", backup.id, "p1")]


def test_r3_a_failed_restore(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    bid = harness.backup(vid)
    for pack in (harness.data_dir / "store").rglob("data/*/*"):
        raw = bytearray(pack.read_bytes())
        raw[10] ^= 0xFF
        pack.write_bytes(bytes(raw))
    harness.service.restore_backup(harness.ctx, bid)
    harness.run_tasks()
    assert _messages(harness) == [("VOLUME_VOLUME_BACKUP_015_026", bid, "p1")]


def test_r5_a_target_in_the_wrong_status_names_the_volume(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    bid = harness.backup(vid)
    tid = harness.import_image("t.raw", b"", size=len(DATA))
    harness.service.restore_backup(harness.ctx, bid, volume_id=tid)
    harness.force_status(Volume, tid, VolumeStatus.AVAILABLE)
    harness.run_tasks()
    assert _messages(harness) == [("VOLUME_VOLUME_BACKUP_015_027", tid, "p1")]


def test_d5_a_failed_delete(harness: Harness) -> None:
    quick = Harness(harness.db, harness.root, lease_seconds=0.05)
    vid = quick.import_image("v.raw", DATA)
    bid = quick.backup(vid)
    quick.service.delete_backup(quick.ctx, bid)
    manifest = next((quick.data_dir / "store").rglob(f"backups/{bid}"))
    manifest.unlink()
    manifest.mkdir()
    (manifest / "blocker").write_bytes(b"x")
    _wait_until(quick, lambda: quick.service.get_backup(quick.ctx, bid).status != "deleting")
    assert _messages(quick) == [("VOLUME_VOLUME_BACKUP_014_025", bid, "p1")]


def test_i1_a_failed_import(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    bid = harness.backup(vid)
    service, url = harness.service.export_record(harness.ctx, bid)
    fields = json.loads(base64.b64decode(url))
    fields["id"] = str(uuid.uuid4())
    copy_url = base64.b64encode(json.dumps(fields).encode()).decode()
    imported = harness.service.import_record(harness.ctx, service, copy_url)
    next((harness.data_dir / "store").rglob(f"backups/{bid}")).unlink()  # gone before the worker
    harness.run_tasks()
    assert harness.service.get_backup(harness.ctx, imported.id).status == BackupStatus.ERROR
    assert _messages(harness) == [("VOLUME_VOLUME_BACKUP_013_020", imported.id, "p1")]


def test_a_failed_volume_create(harness: Harness) -> None:
    volumes = harness.settings.resolved_volumes_dir
    volumes.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(volumes, ignore_errors=True)
    volumes.write_bytes(b"not a directory")
    volume = harness.service.create_volume(harness.ctx, size=1, name="v")
    harness.run_tasks()
    assert harness.service.get_volume(harness.ctx, volume.id).status == VolumeStatus.ERROR
    assert _messages(harness) == [("VOLUME_VOLUME_008_012", volume.id, "p1")]


def test_a_volume_no_backend_can_hold(harness: Harness) -> None:
    made = harness.service.create_volume_type(
        harness.ctx, name="iscsi", extra_specs={"storage_protocol": "iSCSI"}
    )
    volume = harness.service.create_volume(harness.ctx, size=1, name="v", volume_type=made.id)
    assert volume.status == VolumeStatus.ERROR
    assert harness.run_tasks() == 0  # nothing was queued
    assert _messages(harness) == [("VOLUME_VOLUME_001_003", volume.id, "p1")]


def test_a_failed_manage(harness: Harness) -> None:
    path = harness.image("gone.raw", DATA)
    volume = harness.service.import_volume(harness.ctx, path=str(path), name="gone")
    path.unlink()
    harness.run_tasks()
    assert harness.service.get_volume(harness.ctx, volume.id).status == VolumeStatus.ERROR_MANAGING
    assert _messages(harness) == [("VOLUME_VOLUME_008_012", volume.id, "p1")]


def test_a_failed_volume_delete(harness: Harness) -> None:
    volume_id = harness.create_volume("v")
    path = Path(harness.service.get_volume(harness.ctx, volume_id).path)
    path.unlink()
    path.mkdir()
    (path / "blocker").write_bytes(b"x")
    harness.service.delete_volume(harness.ctx, volume_id)
    harness.run_tasks()
    assert harness.service.get_volume(harness.ctx, volume_id).status == VolumeStatus.ERROR_DELETING
    assert _messages(harness) == [("VOLUME_VOLUME_900_001", volume_id, "p1")]


def test_a_failed_snapshot_create(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    snapshot = harness.service.create_snapshot(harness.ctx, volume_id=vid, name="s")
    (harness.root / "v.raw").unlink()
    harness.run_tasks()
    assert _messages(harness) == [("VOLUME_VOLUME_SNAPSHOT_009_013", snapshot.id, "p1")]


def test_a_failed_snapshot_delete(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    snapshot = harness.service.create_snapshot(harness.ctx, volume_id=vid, name="s")
    harness.run_tasks()
    path = harness.settings.resolved_volumes_dir / f"snapshot-{snapshot.id}.raw"
    path.unlink()
    path.mkdir()
    (path / "blocker").write_bytes(b"x")
    harness.service.delete_snapshot(harness.ctx, snapshot.id)
    harness.run_tasks()
    assert _messages(harness) == [("VOLUME_VOLUME_SNAPSHOT_010_016", snapshot.id, "p1")]


def test_a_message_names_the_request_that_queued_the_failed_work(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    with request_ids.acting_for("req-3f1c2a44-0000-4000-8000-000000000001"):
        harness.service.create_backup(harness.ctx, volume_id=vid)
    (harness.root / "v.raw").unlink()
    harness.run_tasks()
    with harness.db.reading() as s:
        [message] = s.scalars(select(Message))
        assert message.request_id == "req-3f1c2a44-0000-4000-8000-000000000001"


@pytest.mark.parametrize("status", ["available", "error"])
def test_a_success_or_an_admin_reset_writes_none(harness: Harness, status: str) -> None:
    vid = harness.import_image("v.raw", DATA)
    bid = harness.backup(vid)
    harness.service.reset_backup_status(harness.ctx, bid, status)
    assert _messages(harness) == []
