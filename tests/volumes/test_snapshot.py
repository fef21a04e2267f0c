"""Snapshot files: an exact copy of the volume, holes kept, replacing a partial one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ashbox.errors import VolumeIOError
from ashbox.volumes.snapshot import copy_volume

MiB = 1 << 20


def test_a_copy_has_the_same_bytes_and_keeps_the_holes(tmp_path: Path) -> None:
    source = tmp_path / "v.raw"
    with source.open("wb") as f:
        f.truncate(256 * MiB)
        f.seek(3 * MiB)
        f.write(os.urandom(MiB))
        f.seek(200 * MiB + 17)
        f.write(b"tail")
    target = tmp_path / "snap" / "s.raw"
    how = copy_volume(source, target)
    assert how in ("reflink", "sparse copy")
    assert target.read_bytes() == source.read_bytes()
    assert target.stat().st_blocks * 512 < 8 * MiB
    assert not list(tmp_path.rglob("*.partial"))


def test_a_copy_replaces_what_an_earlier_run_left(tmp_path: Path) -> None:
    source = tmp_path / "v.raw"
    source.write_bytes(b"new" * 1000)
    target = tmp_path / "s.raw"
    target.write_bytes(b"old" * 5000)
    copy_volume(source, target)
    assert target.read_bytes() == b"new" * 1000


def test_a_missing_source_is_a_volume_io_error(tmp_path: Path) -> None:
    with pytest.raises(VolumeIOError, match="cannot copy"):
        copy_volume(tmp_path / "missing", tmp_path / "s.raw")
