"""Which paths may be managed as volumes (ashbox.volumes.paths)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ashbox.errors import InvalidVolume
from ashbox.volumes.paths import manageable_path


@pytest.mark.parametrize("name", ["disk.raw\x00", "\x00disk.raw", "disk.raw\x00/../x"])
def test_a_path_with_a_nul_is_refused_saying_so(tmp_path: Path, name: str) -> None:
    (tmp_path / "disk.raw").write_bytes(b"x")
    path = name if name.startswith("\x00") else str(tmp_path / name)
    with pytest.raises(InvalidVolume, match="contains a NUL character"):
        manageable_path(path, roots=[tmp_path], reserved=[])


def test_a_relative_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidVolume, match="not an absolute path"):
        manageable_path("disk.raw", roots=[tmp_path], reserved=[])
