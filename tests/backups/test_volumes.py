"""Volumes: create sparse files, import files in place, delete as their origin says."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ashbox.errors import InvalidInput, InvalidVolume, VolumeNotFound
from ashbox.statuses import VolumeStatus
from tests.harness import Harness

GiB = 1 << 30


def test_a_created_volume_is_an_available_sparse_file(harness: Harness) -> None:
    volume = harness.service.create_volume(harness.ctx, size=2, name="v1")
    path = Path(volume.path)
    assert volume.status == VolumeStatus.AVAILABLE and volume.managed_file
    assert path.stat().st_size == 2 * GiB and path.stat().st_blocks == 0
    harness.service.delete_volume(harness.ctx, volume.id)
    assert not path.exists()
    with pytest.raises(VolumeNotFound):
        harness.service.get_volume(harness.ctx, volume.id)


def test_an_imported_volume_is_rounded_up_to_whole_gib_and_its_file_stays(
    harness: Harness,
) -> None:
    path = harness.image("disk.raw", os.urandom(1000), size=GiB + 1)
    volume = harness.service.import_volume(harness.ctx, path=str(path), name="disk")
    assert volume.size == 2 and not volume.managed_file and volume.path == str(path)
    harness.service.delete_volume(harness.ctx, volume.id)
    assert path.exists()


def test_importing_needs_an_absolute_path_to_an_unmanaged_file(harness: Harness) -> None:
    path = harness.image("disk.raw", b"x" * 10)
    with pytest.raises(InvalidInput, match="not an absolute path"):
        harness.service.import_volume(harness.ctx, path="disk.raw")
    with pytest.raises(InvalidVolume):
        harness.service.import_volume(harness.ctx, path=str(harness.root / "missing.raw"))
    harness.service.import_volume(harness.ctx, path=str(path))
    with pytest.raises(InvalidInput, match="already managed"):
        harness.service.import_volume(harness.ctx, path=str(path))


def test_a_volume_being_backed_up_cannot_be_deleted(harness: Harness) -> None:
    vid = harness.import_image("v.raw", os.urandom(4096))
    harness.service.create_backup(harness.ctx, volume_id=vid)
    with pytest.raises(InvalidVolume, match="Volume status must be available"):
        harness.service.delete_volume(harness.ctx, vid)
    assert harness.service.get_volume(harness.ctx, vid).status == VolumeStatus.BACKING_UP


def test_a_volume_size_below_one_gib_is_refused(harness: Harness) -> None:
    with pytest.raises(InvalidInput):
        harness.service.create_volume(harness.ctx, size=0)
