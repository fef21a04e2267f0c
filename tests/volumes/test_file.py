"""The file volume backend against real sparse files."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ashbox.errors import VolumeIOError
from ashbox.volumes import (
    aligned_buffer,
    create_volume_file,
    open_for_read,
    open_for_write,
    probe_size,
    remove_volume_file,
)
from ashbox.volumes.file import cached_pages, close_later
from tests.file_size import file_size_limit
from tests.needs import unavailable

MiB = 1 << 20


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def test_a_created_volume_file_is_sparse_and_has_the_size_asked(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    create_volume_file(path, 64 * MiB)
    assert probe_size(path) == 64 * MiB
    assert allocated(path) == 0


def test_creating_a_volume_file_that_exists_fails(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    path.write_bytes(b"keep me")
    with pytest.raises(VolumeIOError, match="already exists"):
        create_volume_file(path, MiB)
    assert path.read_bytes() == b"keep me"


def test_a_volume_file_larger_than_the_filesystem_allows_is_refused_and_not_left(
    tmp_path: Path,
) -> None:
    path = tmp_path / "vol"
    with (
        file_size_limit(MiB),
        pytest.raises(VolumeIOError, match=r"cannot be 3221225472 bytes \(3 GiB\) long"),
    ):
        create_volume_file(path, 3 << 30)
    assert not path.exists()


def test_a_volume_file_past_the_largest_off_t_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VolumeIOError, match="not between 0 and"):
        create_volume_file(tmp_path / "vol", 2**63)
    assert not (tmp_path / "vol").exists()


def test_probe_size_of_a_missing_path_is_a_volume_io_error(tmp_path: Path) -> None:
    with pytest.raises(VolumeIOError, match="does not exist"):
        probe_size(tmp_path / "missing")


def test_probe_size_of_a_directory_is_a_volume_io_error(tmp_path: Path) -> None:
    with pytest.raises(VolumeIOError, match="not a regular file or block device"):
        probe_size(tmp_path)


def test_probe_size_of_a_character_device_is_a_volume_io_error() -> None:
    with pytest.raises(VolumeIOError, match="not a regular file or block device"):
        probe_size(Path("/dev/null"))


def test_removing_a_volume_file_twice_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    create_volume_file(path, MiB)
    remove_volume_file(path)
    assert not path.exists()
    remove_volume_file(path)


def test_data_extents_skip_the_holes_of_a_sparse_file(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    create_volume_file(path, 16 * MiB)
    with open_for_write(path) as w:
        w.write(b"a" * MiB, 2 * MiB)
        w.write(b"b" * 4096, 10 * MiB)
    with open_for_read(path) as r:
        extents = list(r.data_extents())
    assert extents == [(2 * MiB, MiB), (10 * MiB, 4096)]


def test_data_extents_widened_to_blocks_skip_only_whole_blocks_of_holes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "vol"
    create_volume_file(path, 16 * MiB + 100)
    with open_for_write(path) as w:
        for offset in (MiB + 4096, MiB + 512 * 1024, 2 * MiB - 4096, 3 * MiB, 9 * MiB + 8192):
            w.write(b"x" * 4096, offset)  # scattered pages: one extent each
        w.write(b"y" * 50, 16 * MiB + 10)
    with open_for_read(path) as r:
        assert list(r.data_extents(MiB)) == [
            (MiB, MiB),  # three pages: one range
            (3 * MiB, MiB),
            (9 * MiB, MiB),
            (16 * MiB, 100),  # the short last block
        ]


def test_a_file_without_holes_is_one_extent(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    path.write_bytes(os.urandom(3 * MiB + 17))
    with open_for_read(path) as r:
        assert list(r.data_extents()) == [(0, 3 * MiB + 17)]


def test_an_empty_or_all_hole_file_has_no_extents(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    create_volume_file(path, 5 * MiB)
    with open_for_read(path) as r:
        assert list(r.data_extents()) == []
    empty = tmp_path / "empty"
    create_volume_file(empty, 0)
    with open_for_read(empty) as r:
        assert r.size == 0
        assert list(r.data_extents()) == []


def test_data_at_the_end_of_a_file_is_its_last_extent(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    create_volume_file(path, 8 * MiB + 100)
    with open_for_write(path) as w:
        w.write(b"z" * 100, 8 * MiB)
    with open_for_read(path) as r:
        assert list(r.data_extents()) == [(8 * MiB, 100)]


def test_read_fills_a_range_and_is_short_only_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    data = os.urandom(MiB + 10)
    path.write_bytes(data)
    buf = aligned_buffer(MiB)
    with open_for_read(path) as r:
        assert r.read(buf, 8192, 4096) == 4096
        assert buf[:4096] == data[8192 : 8192 + 4096]
        assert r.read(buf, MiB, MiB) == 10
        assert buf[:10] == data[MiB:]
        assert r.read(buf, MiB + 10, 4096) == 0
        assert r.read(buf, 100, 5000) == 5000  # unaligned: through the cache
        assert buf[:5000] == data[100:5100]


def _cached(path: Path, offset: int, length: int) -> bool:
    """Whether the page cache holds all of the range."""
    return _cached_pages(path, offset, length) * 4096 >= length


def _drop_from_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_reads_leave_the_page_cache_as_they_found_it(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    data = os.urandom(4 * MiB + 4096 + 10)
    path.write_bytes(data)
    _drop_from_cache(path)
    with path.open("rb") as f:  # the volume's user reads block 1
        f.seek(MiB)
        f.read(MiB)
    assert _cached(path, MiB, MiB) and not _cached(path, 0, 4096)
    buf = aligned_buffer(MiB)
    with open_for_read(path) as r:
        for offset in range(0, len(data), MiB):
            n = r.read(buf, offset, MiB)
            assert buf[:n] == data[offset : offset + MiB]
    assert _cached(path, MiB, MiB), "a cached block was dropped"
    for offset in (0, 2 * MiB, 3 * MiB, 4 * MiB):
        assert not _cached(path, offset, 4096), f"the block at {offset} stayed in the cache"


def test_a_block_of_cached_data_and_holes_is_read_leaving_the_holes_uncached(
    tmp_path: Path,
) -> None:
    path = tmp_path / "vol"
    create_volume_file(path, 2 * MiB)
    data = os.urandom(256 * 1024)
    with open_for_write(path) as w:  # as `cp --sparse` leaves an image: data, then holes
        w.write(data, 0)
        w.write(data, MiB + 512 * 1024)
    cached_before = _cached_pages(path, 0, 2 * MiB)
    buf = aligned_buffer(MiB)
    with open_for_read(path) as r:
        assert r.read(buf, 0, MiB) == MiB
        assert buf[: len(data)] == data and buf[len(data) : MiB] == bytes(MiB - len(data))
        assert r.read(buf, MiB, MiB) == MiB
        assert buf[512 * 1024 : 768 * 1024] == data
    assert _cached_pages(path, 0, 2 * MiB) == cached_before == 2 * len(data) // 4096
    assert not _cached(path, 512 * 1024, 4096), "a hole's zero pages stayed in the cache"


def _cached_pages(path: Path, offset: int, length: int) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        pages = cached_pages(fd, offset, length)
    finally:
        os.close(fd)
    if pages is None:
        unavailable("cachestat (Linux 6.5), to tell what the page cache holds")
    return pages


def test_a_range_read_through_the_cache_is_dropped_unless_it_was_cached(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    data = os.urandom(2 * MiB)
    path.write_bytes(data)
    _drop_from_cache(path)
    buf = aligned_buffer(MiB)
    with open_for_read(path) as r:
        assert r.read(buf, 512, 8192) == 8192  # unaligned: O_DIRECT cannot read it
        assert buf[:8192] == data[512 : 512 + 8192]
    assert not _cached(path, 4096, 4096)


def test_writes_land_at_their_offsets(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    create_volume_file(path, 3 * MiB)
    with open_for_write(path) as w:
        assert w.size == 3 * MiB
        w.write(b"hello", 7)
        w.write(memoryview(b"xxworldxx")[2:7], MiB)
        w.flush()
    content = path.read_bytes()
    assert content[7:12] == b"hello"
    assert content[MiB : MiB + 5] == b"world"
    assert content.count(0) == len(content) - 10


def test_a_write_past_the_end_of_the_volume_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    create_volume_file(path, 4096)
    with open_for_write(path) as w, pytest.raises(VolumeIOError, match="outside"):
        w.write(b"x" * 10, 4090)
    assert probe_size(path) == 4096


def test_zero_punches_a_hole_and_reads_back_as_zeros(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    path.write_bytes(b"\xff" * (4 * MiB))
    with open_for_write(path) as w:
        w.zero(MiB, 2 * MiB)
        w.zero(100, 50)
        w.zero(0, 0)
        w.flush()
    content = path.read_bytes()
    assert len(content) == 4 * MiB
    assert content[:100] == b"\xff" * 100
    assert content[100:150] == bytes(50)
    assert content[150:MiB] == b"\xff" * (MiB - 150)
    assert content[MiB : 3 * MiB] == bytes(2 * MiB)
    assert content[3 * MiB :] == b"\xff" * MiB
    assert allocated(path) <= 2 * MiB + 8192
    with open_for_read(path) as r:
        assert list(r.data_extents()) == [(0, MiB), (3 * MiB, MiB)]


def test_opening_a_missing_volume_for_writing_is_a_volume_io_error(tmp_path: Path) -> None:
    with pytest.raises(VolumeIOError, match="does not exist"):
        open_for_write(tmp_path / "missing")


def test_zero_without_punching_writes_zeros(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    path.write_bytes(b"\xff" * (3 * MiB))
    with open_for_write(path, punch_holes=False) as w:
        w.zero(10, 2 * MiB + 5)
    content = path.read_bytes()
    assert content[:10] == b"\xff" * 10
    assert content[10 : 2 * MiB + 15] == bytes(2 * MiB + 5)
    assert content[2 * MiB + 15 :] == b"\xff" * (MiB - 15)
    assert allocated(path) >= 3 * MiB


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[Path]:
    """A real block device: a loop device over a sparse file, detached afterwards."""
    losetup = shutil.which("losetup")
    if losetup is None or os.geteuid() != 0:
        unavailable("block device tests need root and losetup")
    image = tmp_path / "backing.img"
    image.write_bytes(b"\xaa" * (4 * MiB))
    found = subprocess.run(
        [losetup, "--find", "--show", str(image)], capture_output=True, text=True, check=False
    )
    if found.returncode != 0:
        unavailable(f"no loop device available: {found.stderr.strip()}")
    device = Path(found.stdout.strip())
    try:
        yield device
    finally:
        subprocess.run([losetup, "--detach", str(device)], check=True)


def test_a_block_device_is_one_extent_and_can_be_written_and_zeroed(loop_device: Path) -> None:
    assert probe_size(loop_device) == 4 * MiB
    with open_for_read(loop_device) as r:
        assert r.size == 4 * MiB
        assert list(r.data_extents()) == [(0, 4 * MiB)]
    with open_for_write(loop_device) as w:
        w.write(b"hello", MiB)
        w.zero(2 * MiB, MiB)
        w.flush()
    buf = aligned_buffer(4 * MiB)
    with open_for_read(loop_device) as r:
        assert r.read(buf, 0, 4 * MiB) == 4 * MiB
    assert buf[MiB : MiB + 5] == b"hello"
    assert buf[2 * MiB : 3 * MiB] == bytes(MiB)
    assert buf[3 * MiB :] == b"\xaa" * MiB


def test_a_sparse_write_leaves_the_pages_of_zeros_unwritten(tmp_path: Path) -> None:
    page = 4096
    pages = [
        os.urandom(page),
        bytes(page),
        b"\0" + os.urandom(page - 1),  # starts like a page of zeros, is not one
        bytes(page - 1) + b"\1",
        bytes(page),
        bytes(page),
        os.urandom(page),
        bytes(100),  # a short last page of zeros
    ]
    data = b"".join(pages)
    path = tmp_path / "vol"
    create_volume_file(path, 16 * page)
    with open_for_write(path) as volume:
        volume.write_sparse(data, 8 * page)
    content = path.read_bytes()
    assert content == bytes(8 * page) + data + bytes(8 * page - len(data))
    assert allocated(path) == 4 * page  # pages 0, 2, 3 and 6


def test_close_later_unmaps_in_a_thread_and_leaves_a_viewed_buffer_to_the_collector() -> None:
    free, viewed = aligned_buffer(MiB), aligned_buffer(MiB)
    view = memoryview(viewed)
    close_later([free, viewed])
    for thread in threading.enumerate():
        if thread.name == "ashbox-unmap":
            thread.join()
    assert free.closed
    assert not viewed.closed
    view.release()
