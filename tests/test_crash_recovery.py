"""SIGKILL of `ashbox serve` in the middle of a 1 GiB backup, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.server import Server
from tests.test_acceptance import assert_no_orphans, mixed_image, pack_files, sha256

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GiB = 1 << 30


def _kill_mid_backup(server: Server, image: Path) -> tuple[str, str]:
    """SIGKILL the service once the backup's first pack is being written (a
    1 GiB backup takes well under a second), and check it was still running."""
    volume = server.import_volume(image)["id"]
    bid = server.create_backup(volume)
    deadline = time.monotonic() + 120
    while not pack_files(server):
        assert time.monotonic() < deadline, "the backup never wrote a pack"
        time.sleep(0.005)
    server.kill()
    assert f"backup written backup_id={bid}" not in server.log.read_text(), (
        "the backup finished before the kill: the test needs a bigger image"
    )
    return volume, bid


def test_a_killed_backup_completes_after_restart(tmp_path: Path, database_url: str) -> None:
    image = mixed_image(tmp_path / "big.raw", GiB, seed=7)
    server = Server(tmp_path / "data", database_url)
    server.start()
    try:
        volume, bid = _kill_mid_backup(server, image)
        server.start()
        assert server.wait_backup(bid)["status"] == "available"
        assert server.volume(volume)["status"] == "available"
        target = server.restore(bid)
        assert server.wait_backup(bid)["status"] == "available"
        assert sha256(server.path_of(target)) == sha256(image)
        assert_no_orphans(server, database_url)
    finally:
        server.stop()


def test_a_backup_killed_past_max_attempts_ends_in_error(tmp_path: Path, database_url: str) -> None:
    image = mixed_image(tmp_path / "big.raw", GiB, seed=8)
    server = Server(tmp_path / "data", database_url, ASHBOX_MAX_ATTEMPTS="1")
    server.start()
    try:
        volume, bid = _kill_mid_backup(server, image)
        server.start()
        failed = server.wait_backup(bid)
        assert failed["status"] == "error"
        assert "Gave up after 1 attempts" in failed["fail_reason"]
        assert server.volume(volume)["status"] == "available"
        # The failed backup's storage is reclaimed right after its status changes.
        deadline = time.monotonic() + 20
        while pack_files(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pack_files(server) == []
        assert_no_orphans(server, database_url)
    finally:
        server.stop()


def test_a_restore_killed_midway_completes_after_restart(tmp_path: Path, database_url: str) -> None:
    image = mixed_image(tmp_path / "big.raw", GiB, seed=9)
    server = Server(tmp_path / "data", database_url)
    server.start()
    try:
        volume = server.import_volume(image)["id"]
        bid = server.create_backup(volume)
        assert server.wait_backup(bid)["status"] == "available"
        target = server.restore(bid)
        path = server.path_of(target)
        deadline = time.monotonic() + 30
        while not path.exists() or path.stat().st_blocks == 0:  # nothing written yet
            assert time.monotonic() < deadline, "the restore never wrote"
            time.sleep(0.005)
        server.kill()
        assert f"backup restored backup_id={bid}" not in server.log.read_text(), (
            "the restore finished before the kill: the test needs a bigger image"
        )
        server.start()
        assert server.wait_backup(bid)["status"] == "available"
        assert server.volume(target)["status"] == "available"
        assert sha256(server.path_of(target)) == sha256(image)
        # The restarted worker ran the restore a second time: the kill was mid-task.
        assert f"kind=restore_backup resource_id={bid} attempt=2" in server.log.read_text()
    finally:
        server.stop()
