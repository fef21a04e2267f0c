"""Every row of docs/states.md, walked on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from ashbox.db.models import Backup, Task, Volume
from ashbox.errors import (
    BackupNotFound,
    Forbidden,
    InvalidBackupState,
    InvalidVolume,
    InvalidVolumeState,
)
from ashbox.records import ListQuery, RequestContext
from ashbox.statuses import BackupStatus, TaskState, VolumeStatus
from tests.harness import Harness

DATA = os.urandom(300_000) + b"\0" * 200_000 + b"log line 42\n" * 20_000


def _volume_status(h: Harness, volume_id: str) -> tuple[str, str | None]:
    v = h.service.get_volume(h.ctx, volume_id)
    return v.status, v.previous_status


def _sha(path: Path, length: int | None = None) -> str:
    data = path.read_bytes()
    return hashlib.sha256(data if length is None else data[:length]).hexdigest()


def test_b1_create_moves_backup_and_volume(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    backup = harness.service.create_backup(harness.ctx, volume_id=vid, name="b")
    assert backup.status == BackupStatus.CREATING
    assert _volume_status(harness, vid) == (VolumeStatus.BACKING_UP, VolumeStatus.AVAILABLE)


def test_b1_refusals_change_nothing(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    with pytest.raises(
        InvalidBackupState, match="No backups available to do an incremental backup"
    ):
        harness.service.create_backup(harness.ctx, volume_id=vid, incremental=True)
    harness.service.create_backup(harness.ctx, volume_id=vid)
    with pytest.raises(InvalidVolumeState) as err:
        harness.service.create_backup(harness.ctx, volume_id=vid)
    assert err.value.message == (
        "Invalid volume: Volume to be backed up must be available or in-use, "
        'but the current status is "backing-up".'
    )
    assert len(harness.service.list_backups(harness.ctx, _all())[0]) == 1
    harness.force_status(Volume, vid, VolumeStatus.IN_USE)
    with pytest.raises(
        InvalidVolumeState, match="Backing up an in-use volume must use the force flag"
    ):
        harness.service.create_backup(harness.ctx, volume_id=vid)
    assert harness.service.create_backup(harness.ctx, volume_id=vid, force=True).status == (
        BackupStatus.CREATING
    )


def test_b3_precheck_failure(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    backup = harness.service.create_backup(harness.ctx, volume_id=vid)
    harness.force_status(Volume, vid, VolumeStatus.ERROR)
    harness.run_tasks()
    done = harness.service.get_backup(harness.ctx, backup.id)
    assert done.status == BackupStatus.ERROR
    assert "backing-up" in (done.fail_reason or "")
    assert _volume_status(harness, vid)[0] == VolumeStatus.ERROR


def test_b4_backup_success(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    full = harness.backup(vid)
    incremental = harness.backup(vid, incremental=True)
    full_rec = harness.service.get_backup(harness.ctx, full)
    inc_rec = harness.service.get_backup(harness.ctx, incremental)
    assert full_rec.status == inc_rec.status == BackupStatus.AVAILABLE
    assert full_rec.object_count >= 1 and full_rec.stored_size > 0
    assert inc_rec.parent_id == full and inc_rec.stored_size == 0
    assert full_rec.num_dependent_backups == 1
    assert full_rec.container == "volumebackups"
    assert _volume_status(harness, vid) == (VolumeStatus.AVAILABLE, VolumeStatus.BACKING_UP)


def test_b5_backup_failure(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    vid = harness.import_image("v.raw", DATA)
    backup = harness.service.create_backup(harness.ctx, volume_id=vid)
    (harness.root / "v.raw").unlink()
    harness.run_tasks()
    failed = harness.service.get_backup(harness.ctx, backup.id)
    assert failed.status == BackupStatus.ERROR and failed.fail_reason
    # An expected failure is one line with its reason, never a traceback.
    [line] = [r for r in caplog.records if r.getMessage().startswith("task failed")]
    assert line.exc_info is None and failed.fail_reason in line.getMessage()
    assert _volume_status(harness, vid) == (VolumeStatus.AVAILABLE, VolumeStatus.ERROR_BACKING_UP)
    assert _packs(harness) == []


def test_r1_restore_request(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    bid = harness.backup(vid)
    target = harness.import_image("t.raw", b"", size=1 << 30)
    restore = harness.service.restore_backup(harness.ctx, bid)
    assert restore.volume_name == f"restore_backup_{bid}"
    assert harness.service.get_backup(harness.ctx, bid).status == BackupStatus.RESTORING
    assert _volume_status(harness, restore.volume_id)[0] == VolumeStatus.CREATING
    assert not Path(harness.service.get_volume(harness.ctx, restore.volume_id).path).exists()
    with pytest.raises(InvalidBackupState, match="Backup status must be available"):
        harness.service.restore_backup(harness.ctx, bid, volume_id=target)


def test_r1_refusals_change_nothing(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA, size=(1 << 30) + 1)
    bid = harness.backup(vid)
    small = harness.import_image("small.raw", b"", size=1 << 30)
    with pytest.raises(InvalidVolume) as err:
        harness.service.restore_backup(harness.ctx, bid, volume_id=small)
    assert err.value.message == (
        "Invalid volume: volume size 1 is too small to restore backup of size 2."
    )
    with pytest.raises(BackupNotFound, match="Backup nope could not be found"):
        harness.service.restore_backup(harness.ctx, "nope")
    assert harness.service.get_backup(harness.ctx, bid).status == BackupStatus.AVAILABLE
    assert _volume_status(harness, small)[0] == VolumeStatus.AVAILABLE


def test_r2_restore_success(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    bid = harness.backup(vid)
    target = harness.image("t.raw", b"\x01" * (len(DATA) + 4096))
    tid = harness.service.import_volume(harness.ctx, path=str(target)).id
    harness.run_tasks()
    harness.service.restore_backup(harness.ctx, bid, volume_id=tid)
    harness.run_tasks()
    assert harness.service.get_backup(harness.ctx, bid).status == BackupStatus.AVAILABLE
    volume = harness.service.get_volume(harness.ctx, tid)
    assert volume.status == VolumeStatus.AVAILABLE
    assert volume.metadata["src_backup_id"] == bid
    assert _sha(target, len(DATA)) == hashlib.sha256(DATA).hexdigest()
    assert target.read_bytes()[len(DATA) :] == b"\x01" * 4096
    restored = harness.service.restore_backup(harness.ctx, bid)
    harness.run_tasks()
    path = Path(harness.service.get_volume(harness.ctx, restored.volume_id).path)
    assert _sha(path) == hashlib.sha256(DATA).hexdigest()


def test_r3_restore_failure(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    bid = harness.backup(vid)
    for pack in _packs(harness):
        raw = bytearray(pack.read_bytes())
        raw[10] ^= 0xFF
        pack.write_bytes(bytes(raw))
    tid = harness.import_image("t.raw", b"", size=len(DATA))
    harness.service.restore_backup(harness.ctx, bid, volume_id=tid)
    harness.run_tasks()
    assert harness.service.get_backup(harness.ctx, bid).status == BackupStatus.AVAILABLE
    assert _volume_status(harness, tid)[0] == VolumeStatus.ERROR_RESTORING
    fresh = harness.service.restore_backup(harness.ctx, bid)
    harness.run_tasks()
    assert _volume_status(harness, fresh.volume_id)[0] == VolumeStatus.ERROR


def test_r5_target_in_wrong_state(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    bid = harness.backup(vid)
    tid = harness.import_image("t.raw", b"", size=len(DATA))
    harness.service.restore_backup(harness.ctx, bid, volume_id=tid)
    harness.force_status(Volume, tid, VolumeStatus.AVAILABLE)
    harness.run_tasks()
    assert harness.service.get_backup(harness.ctx, bid).status == BackupStatus.AVAILABLE
    assert _volume_status(harness, tid)[0] == VolumeStatus.AVAILABLE


def test_d1_delete_request(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    full = harness.backup(vid)
    incremental = harness.backup(vid, incremental=True)
    with pytest.raises(InvalidBackupState) as err:
        harness.service.delete_backup(harness.ctx, full)
    assert err.value.message == "Invalid backup: Incremental backups exist for this backup."
    harness.service.create_backup(harness.ctx, volume_id=vid)
    creating = harness.service.list_backups(harness.ctx, _all({"status": "creating"}))[0][0]
    with pytest.raises(InvalidBackupState, match="Backup status must be available or error"):
        harness.service.delete_backup(harness.ctx, creating.id)
    harness.service.delete_backup(harness.ctx, incremental)
    assert harness.service.get_backup(harness.ctx, incremental).status == BackupStatus.DELETING


def test_d2_delete_success(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    full = harness.backup(vid)
    incremental = harness.backup(vid, incremental=True)
    harness.service.delete_backup(harness.ctx, incremental)
    harness.run_tasks()
    with pytest.raises(BackupNotFound):
        harness.service.get_backup(harness.ctx, incremental)
    assert harness.service.get_backup(harness.ctx, full).num_dependent_backups == 0
    harness.service.delete_backup(harness.ctx, full)
    harness.run_tasks()
    assert _packs(harness) == []
    assert list((harness.data_dir / "store").rglob("backups/*")) == []


def test_d3_a_delete_task_leaves_a_backup_that_is_no_longer_deleting(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    bid = harness.backup(vid)
    harness.service.delete_backup(harness.ctx, bid)
    harness.force_status(Backup, bid, BackupStatus.AVAILABLE)
    harness.run_tasks()
    assert harness.service.get_backup(harness.ctx, bid).status == BackupStatus.AVAILABLE
    restore = harness.service.restore_backup(harness.ctx, bid)
    harness.run_tasks()
    path = Path(harness.service.get_volume(harness.ctx, restore.volume_id).path)
    assert _sha(path) == hashlib.sha256(DATA).hexdigest()


def test_d5_delete_failure(harness: Harness) -> None:
    """A store error defers the run (the store may be back soon); one still there
    after max_attempts runs fails the delete, saying what the store said."""
    quick = Harness(harness.db, harness.root, lease_seconds=0.05)
    vid = quick.import_image("v.raw", DATA)
    bid = quick.backup(vid)
    quick.service.delete_backup(quick.ctx, bid)
    # A directory where the manifest object lives cannot be unlinked: a real store error.
    manifest = next((quick.data_dir / "store").rglob(f"backups/{bid}"))
    manifest.unlink()
    manifest.mkdir()
    (manifest / "blocker").write_bytes(b"x")
    deadline = time.monotonic() + 30
    while quick.service.get_backup(quick.ctx, bid).status == "deleting":
        assert time.monotonic() < deadline
        quick.run_tasks()  # runs it again at once if the deferred run's lease lapsed already
        time.sleep(0.1)  # the deferred run's lease lapses
    failed = quick.service.get_backup(quick.ctx, bid)
    assert failed.status == BackupStatus.ERROR
    assert failed.fail_reason is not None
    assert failed.fail_reason.startswith("Gave up after 3 attempts: Backup store: cannot delete")


def _all(filters: dict[str, str] | None = None) -> ListQuery:
    return ListQuery(filters=filters or {})


def _packs(h: Harness) -> list[Path]:
    return [p for p in (h.data_dir / "store").rglob("data/*/*") if p.is_file()]


def test_b6_force_delete_cancels_a_running_create(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    creating = harness.service.create_backup(harness.ctx, volume_id=vid)
    harness.service.delete_backup(harness.ctx, creating.id, force=True)
    assert harness.service.get_backup(harness.ctx, creating.id).status == BackupStatus.DELETING
    assert _volume_status(harness, vid)[0] == VolumeStatus.AVAILABLE
    harness.run_tasks()
    with pytest.raises(BackupNotFound):
        harness.service.get_backup(harness.ctx, creating.id)
    assert _packs(harness) == []
    assert list((harness.data_dir / "store").rglob("backups/*")) == []


def test_a_rerun_of_a_finished_task_changes_nothing(harness: Harness) -> None:
    """A task whose end was lost (its worker died after the outcome committed, as
    an older version could) runs again, finds its work done, and ends."""
    vid = harness.import_image("v.raw", DATA)
    bid = harness.backup(vid)
    with harness.db.transaction() as s:
        s.execute(
            update(Task)
            .where(Task.resource_id == bid)
            .values(
                state=TaskState.RUNNING,
                lease_owner="gone",
                lease_expires_at=datetime.now(UTC) - timedelta(seconds=1),
            )
        )
    assert harness.run_tasks() == 1
    backup = harness.service.get_backup(harness.ctx, bid)
    assert backup.status == BackupStatus.AVAILABLE and backup.fail_reason is None
    assert _volume_status(harness, vid)[0] == VolumeStatus.AVAILABLE


def test_r3_the_reason_of_a_failed_restore_is_shown_on_the_backup(harness: Harness) -> None:
    """An imported 100 KiB file counts as a 1 GiB volume, so the API lets a restore of
    a 1 GiB backup onto it; the worker finds it too small and says so where users look."""
    vid = harness.import_image("v.raw", DATA, size=1 << 30)
    bid = harness.backup(vid)
    small = harness.import_image("small.raw", b"", size=100 * 1024)
    harness.service.restore_backup(harness.ctx, bid, volume_id=small)
    harness.run_tasks()
    backup = harness.service.get_backup(harness.ctx, bid)
    assert backup.status == BackupStatus.AVAILABLE
    assert backup.fail_reason is not None and "fewer than" in backup.fail_reason
    assert _volume_status(harness, small)[0] == VolumeStatus.ERROR_RESTORING


def test_r4_a_reset_cancels_a_restore_and_fails_its_target(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    bid = harness.backup(vid)
    restore = harness.service.restore_backup(harness.ctx, bid)
    harness.service.reset_backup_status(harness.ctx, bid, BackupStatus.ERROR)
    assert _volume_status(harness, restore.volume_id)[0] == VolumeStatus.ERROR
    harness.run_tasks()  # the restore task finds its backup moved on, and ends
    assert harness.service.get_backup(harness.ctx, bid).status == BackupStatus.ERROR
    assert _volume_status(harness, restore.volume_id)[0] == VolumeStatus.ERROR
    harness.service.reset_backup_status(harness.ctx, bid, BackupStatus.AVAILABLE)
    assert harness.service.get_backup(harness.ctx, bid).status == BackupStatus.AVAILABLE


def test_x1_a_reset_to_available_is_refused_without_a_complete_manifest(
    harness: Harness,
) -> None:
    vid = harness.import_image("v.raw", DATA)
    creating = harness.service.create_backup(harness.ctx, volume_id=vid)
    with pytest.raises(InvalidBackupState, match="cannot be available"):
        harness.service.reset_backup_status(harness.ctx, creating.id, BackupStatus.AVAILABLE)
    assert harness.service.get_backup(harness.ctx, creating.id).status == BackupStatus.CREATING
    harness.service.reset_backup_status(harness.ctx, creating.id, BackupStatus.ERROR)
    assert _volume_status(harness, vid) == (VolumeStatus.AVAILABLE, VolumeStatus.ERROR_BACKING_UP)
    harness.run_tasks()  # the create task finds its backup moved on, and ends
    assert harness.service.get_backup(harness.ctx, creating.id).status == BackupStatus.ERROR
    with pytest.raises(Forbidden):
        harness.service.reset_backup_status(
            RequestContext("u", "p1", roles=("member", "reader")),
            creating.id,
            BackupStatus.AVAILABLE,
        )


def _snapshots(h: Harness) -> list[str]:
    return [s.status for s in h.service.list_snapshots(h.ctx, _all())[0]]


def test_b1_an_in_use_volume_is_backed_up_from_a_temporary_snapshot(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    harness.service.attach_volume(harness.ctx, vid)
    bid = harness.service.create_backup(harness.ctx, volume_id=vid, force=True).id
    assert _snapshots(harness) == ["creating"]
    harness.run_tasks()
    assert harness.service.get_backup(harness.ctx, bid).status == BackupStatus.AVAILABLE
    assert _volume_status(harness, vid)[0] == VolumeStatus.IN_USE
    assert _snapshots(harness) == []
    assert not list((harness.data_dir / "volumes").glob("snapshot-*"))
    restore = harness.service.restore_backup(harness.ctx, bid)
    harness.run_tasks()
    path = Path(harness.service.get_volume(harness.ctx, restore.volume_id).path)
    assert _sha(path) == hashlib.sha256(DATA).hexdigest()


@pytest.mark.parametrize("ending", ["failure", "force delete", "reset"])
def test_a_temporary_snapshot_goes_on_every_ending(harness: Harness, ending: str) -> None:
    vid = harness.import_image("v.raw", DATA)
    harness.service.attach_volume(harness.ctx, vid)
    bid = harness.service.create_backup(harness.ctx, volume_id=vid, force=True).id
    if ending == "failure":
        (harness.root / "v.raw").unlink()
    elif ending == "force delete":
        harness.service.delete_backup(harness.ctx, bid, force=True)
    else:
        harness.service.reset_backup_status(harness.ctx, bid, BackupStatus.ERROR)
    harness.run_tasks()
    assert _snapshots(harness) == []
    assert not list((harness.data_dir / "volumes").glob("snapshot-*"))
    assert _volume_status(harness, vid)[0] == VolumeStatus.IN_USE
