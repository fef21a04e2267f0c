"""Volumes: the API records, a worker creates, manages in place and deletes files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ashbox.errors import InvalidInput, InvalidVolume, InvalidVolumeState, VolumeNotFound
from ashbox.statuses import VolumeStatus
from tests.harness import Harness

GiB = 1 << 30


def test_a_created_volume_is_a_sparse_file_made_by_the_worker(harness: Harness) -> None:
    volume = harness.service.create_volume(harness.ctx, size=2, name="v1")
    path = Path(volume.path)
    assert volume.status == VolumeStatus.CREATING and volume.managed_file
    assert not path.exists()  # the API records; only a worker touches files
    harness.run_tasks()
    assert harness.service.get_volume(harness.ctx, volume.id).status == VolumeStatus.AVAILABLE
    assert path.stat().st_size == 2 * GiB and path.stat().st_blocks == 0
    harness.service.delete_volume(harness.ctx, volume.id)
    assert path.exists()
    harness.run_tasks()
    assert not path.exists()
    with pytest.raises(VolumeNotFound):
        harness.service.get_volume(harness.ctx, volume.id)


def test_an_imported_volume_is_rounded_up_to_whole_gib_and_its_file_stays(
    harness: Harness,
) -> None:
    path = harness.image("disk.raw", os.urandom(1000), size=GiB + 1)
    volume = harness.service.import_volume(harness.ctx, path=str(path), name="disk")
    assert volume.status == VolumeStatus.MANAGING
    harness.run_tasks()
    volume = harness.service.get_volume(harness.ctx, volume.id)
    assert volume.status == VolumeStatus.AVAILABLE
    assert volume.size == 2 and not volume.managed_file and volume.path == str(path)
    harness.service.delete_volume(harness.ctx, volume.id)
    harness.run_tasks()
    assert path.exists()


def test_importing_needs_an_absolute_path_to_an_unmanaged_file(harness: Harness) -> None:
    path = harness.image("disk.raw", b"x" * 10)
    with pytest.raises(InvalidInput, match="not an absolute path"):
        harness.service.import_volume(harness.ctx, path="disk.raw")
    missing = harness.service.import_volume(harness.ctx, path=str(harness.root / "missing.raw"))
    harness.run_tasks()
    failed = harness.service.get_volume(harness.ctx, missing.id)
    assert failed.status == VolumeStatus.ERROR_MANAGING
    harness.import_image("disk.raw", b"x" * 10)
    with pytest.raises(InvalidVolume, match="already managed"):
        harness.service.import_volume(harness.ctx, path=str(path))


def test_a_link_to_an_image_is_managed_as_the_image(harness: Harness) -> None:
    path = harness.image("disk.raw", b"x" * 10)
    link = harness.root / "link.raw"
    link.symlink_to(path)
    volume_id = harness.service.import_volume(harness.ctx, path=str(link)).id
    harness.run_tasks()
    assert harness.service.get_volume(harness.ctx, volume_id).path == str(path)
    with pytest.raises(InvalidVolume, match="already managed"):
        harness.service.import_volume(harness.ctx, path=str(path))


@pytest.mark.parametrize(
    "where",
    [
        "data/ashbox.db",
        "data/ashbox.db-wal",
        "data/store/x",
        "data",
        "/etc/shadow",
        "/proc/self/mem",
        "/sys/kernel/notes",
        "/dev/zero",
        "/usr/bin/env",
    ],
)
def test_the_services_own_files_and_system_paths_cannot_be_managed(
    harness: Harness, where: str
) -> None:
    path = where if where.startswith("/") else str(harness.root / where)
    with pytest.raises(InvalidVolume):
        harness.service.import_volume(harness.ctx, path=path)


def test_a_link_cannot_lead_out_of_the_volume_roots(harness: Harness) -> None:
    link = harness.root / "shadow.raw"
    link.symlink_to("/etc/shadow")
    with pytest.raises(InvalidVolume):
        harness.service.import_volume(harness.ctx, path=str(link))


def test_a_volume_being_backed_up_cannot_be_deleted(harness: Harness) -> None:
    vid = harness.import_image("v.raw", os.urandom(4096))
    harness.service.create_backup(harness.ctx, volume_id=vid)
    with pytest.raises(InvalidVolumeState, match="Volume status must be available"):
        harness.service.delete_volume(harness.ctx, vid)
    assert harness.service.get_volume(harness.ctx, vid).status == VolumeStatus.BACKING_UP


def test_a_volume_size_below_one_gib_is_refused(harness: Harness) -> None:
    with pytest.raises(InvalidInput):
        harness.service.create_volume(harness.ctx, size=0)
