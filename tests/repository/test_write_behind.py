"""A restore's bytes go to the disk and out of the page cache a step behind it."""

from __future__ import annotations

import os
from pathlib import Path

from ashbox.repository.write_behind import WriteBehind
from ashbox.volumes.file import cached_pages
from tests.needs import unavailable

MiB = 1 << 20


def test_settled_bytes_leave_the_page_cache_a_step_behind(tmp_path: Path) -> None:
    path = tmp_path / "vol"
    chunk = os.urandom(8 * MiB)
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        with WriteBehind(fd) as behind:
            for n in range(10):  # 80 MiB, settled as they are written
                os.pwrite(fd, chunk, n * len(chunk))
                behind.settled((n + 1) * len(chunk))
        first, last = cached_pages(fd, 0, 32 * MiB), cached_pages(fd, 64 * MiB, 16 * MiB)
        if first is None or last is None:
            unavailable("cachestat (Linux 6.5), to tell what the page cache holds")
        assert first == 0, "the first 32 MiB, written back, stayed in the cache"
        assert last == 16 * MiB // 4096, "the last bytes, not yet settled twice, were dropped"
    finally:
        os.close(fd)
    assert path.read_bytes() == chunk * 10


def test_a_file_that_takes_no_hints_is_written_all_the_same(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()  # sync_file_range refuses a pipe
    try:
        with WriteBehind(write_end) as behind:
            os.write(write_end, b"x" * 4096)
            behind.settled(64 * MiB)
            behind.settled(128 * MiB)
        assert os.read(read_end, 8192) == b"x" * 4096
    finally:
        os.close(read_end)
        os.close(write_end)
