"""A restored volume's bytes sent to the disk, and out of the page cache, behind the restore.

The restore calls `settled(end)` as the bytes before `end` are all written;
every 32 MiB, the bytes settled since the last time start going to the disk
(sync_file_range WRITE), and those before them, waited for, leave the page
cache (DONTNEED), so a restore neither fills the cache with a volume nor
leaves gigabytes for its closing fsync. This runs in a thread of its own:
done in the restore's caller thread, the waits for the disk held it up, and
with it the workers it feeds (18% of its time under py-spy, its workers idle
40%). Only hints: the volume's fsync still makes the restore durable.
"""

from __future__ import annotations

import ctypes
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

from ashbox import libc

log = logging.getLogger(__name__)

_WRITE_BEHIND_BYTES = 32 << 20  # written bytes sent to the disk at once
_SYNC_WAIT_BEFORE = 1
_SYNC_WRITE = 2
_SYNC_WAIT_AFTER = 4

_sync_file_range = libc.function(
    "sync_file_range", [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
)


class WriteBehind:
    """Use as a context manager: leaving it waits for the write-backs begun."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._asked = 0  # bytes before this were handed to the thread
        self._dropped = 0  # bytes before this are written back and dropped
        self._started = 0  # bytes before this have had their write-back started
        self._working = _sync_file_range is not None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ashbox-writeback")

    def settled(self, end: int) -> None:
        """Every write below `end` has returned (called with increasing ends)."""
        if self._working and end - self._asked >= _WRITE_BEHIND_BYTES:
            self._asked = end
            self._thread.submit(self._write_back, end)

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._thread.shutdown(wait=True)

    def _write_back(self, end: int) -> None:
        if not self._working:
            return
        try:
            if self._started > self._dropped:
                length = self._started - self._dropped
                flags = _SYNC_WAIT_BEFORE | _SYNC_WRITE | _SYNC_WAIT_AFTER
                _sync_range(self._fd, self._dropped, length, flags)
                os.posix_fadvise(self._fd, self._dropped, length, os.POSIX_FADV_DONTNEED)
            _sync_range(self._fd, self._started, end - self._started, _SYNC_WRITE)
        except OSError as e:  # a volume that cannot take the hints is written all the same
            log.debug("write-behind stopped: %s", e)
            self._working = False
            return
        self._dropped, self._started = self._started, end


def _sync_range(fd: int, offset: int, length: int, flags: int) -> None:
    libc.call(_sync_file_range, "sync_file_range", fd, offset, length, flags)
