"""The `file` volume backend: raw image files, and block devices by path.

A volume is read in data extents (SEEK_DATA/SEEK_HOLE), so the holes of a
sparse image are never read, and written with pwrite; zeroed ranges are
punched out (fallocate PUNCH_HOLE) where the filesystem or device allows.
Into a new sparse volume, the pages of zeros inside written blocks are not
written at all (`write_sparse`): holes stay holes at page granularity, as in
the source.

Reads leave the page cache as they found it: a range wholly cached (the
volume of a running VM, an image just written) is copied from the cache, and
so is one whose other pages are holes (the zero pages the read makes of them
are then dropped); any other range is read with O_DIRECT into the caller's
aligned buffer, so a
backup neither evicts what the host uses nor fills the cache with what it
will not read again (and pays no page-cache set-up for it). The kernel says
what is cached without side effects (cachestat, Linux 6.5; a read with
RWF_NOWAIT would start readahead). Where O_DIRECT is refused, the range is
read through the cache and, unless it was cached, dropped from it
(posix_fadvise DONTNEED).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import os
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from ashbox import libc
from ashbox.errors import VolumeIOError

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_ZERO_CHUNK = 1 << 20
_PAGE = 4096
_SPAN = 16 * _PAGE  # pages of zeros are looked for this many at a time, then one by one
DIRECT_ALIGNMENT = 4096  # offsets, lengths and buffer addresses of O_DIRECT reads


def probe_size(path: Path) -> int:
    """Size in bytes of a regular file or block device; VolumeIOError otherwise."""
    with _open(path, os.O_RDONLY) as fd:
        return _size(fd.fd, path)


def aligned_buffer(size: int, *, populate: bool = False) -> mmap.mmap:
    """A zeroed, writable buffer at a page boundary, as `VolumeReader.read` needs.
    With `populate` its pages are allocated at once, in a system call made
    without the GIL, instead of one fault at a time in whatever first writes
    them: a fresh 16 MiB pack buffer took 5.5 ms to fill by copying, the GIL
    held, against 0.45 ms once its pages were there."""
    if not populate:
        return mmap.mmap(-1, size)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
    return mmap.mmap(-1, size, flags=flags)


def close_later(buffers: Iterable[mmap.mmap]) -> None:
    """Unmap `buffers` in a thread of their own. Giving a backup's ~60 MiB of
    buffers back to the kernel took 12 ms (its page tables are torn down) that
    the end of the backup waited for. A buffer something still views is left
    to the garbage collector."""
    held = list(buffers)
    if held:
        threading.Thread(target=_close_all, args=(held,), name="ashbox-unmap").start()


def _close_all(buffers: list[mmap.mmap]) -> None:
    for buffer in buffers:
        with contextlib.suppress(BufferError):  # viewed still: the collector will
            buffer.close()


class VolumeReader:
    """A volume open for reading. Use as a context manager; `read` may be called
    from several threads at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = _open(path, os.O_RDONLY)
        self.fd = self._handle.fd
        self._direct: _Fd | None = None
        try:
            self.size = _size(self.fd, path)
            self._regular = stat.S_ISREG(os.fstat(self.fd).st_mode)
            self._direct = _open_direct(path)
        except BaseException:
            self._handle.close()
            raise

    def data_extents(self, granularity: int = 1) -> Iterator[tuple[int, int]]:
        """(offset, length) of the ranges that may hold data, in order, each
        widened to `granularity` boundaries (the block size: once a range
        reaches into a block, the whole block is read, so the holes and data
        inside it need no more `lseek`s). Holes are skipped; without
        SEEK_DATA support the whole volume is one extent."""
        if not self._regular:
            if self.size:
                yield 0, self.size
            return
        pos = 0
        while pos < self.size:
            try:
                start = os.lseek(self.fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:  # no data past pos
                    return
                if e.errno in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
                    yield pos, self.size - pos
                    return
                raise
            if start >= self.size:
                return
            end = min(os.lseek(self.fd, start, os.SEEK_HOLE), self.size)
            start -= start % granularity
            end = min(-(-end // granularity) * granularity, self.size)
            yield start, end - start
            pos = end

    def read(self, buf: mmap.mmap, offset: int, length: int) -> int:
        """Fill buf[:length] from `offset`, leaving the page cache as it was (see
        the module docstring); return the bytes read, short only at the end of
        the volume. `buf` comes from `aligned_buffer` and, for O_DIRECT, holds
        `length` rounded up to DIRECT_ALIGNMENT."""
        view = memoryview(buf)
        length = max(0, min(length, self.size - offset))
        cached = cached_pages(self.fd, offset, length)
        if cached is not None and cached * mmap.PAGESIZE >= length:
            return self._read_all(self.fd, view[:length], offset)
        holes = self._holes_if_rest(offset, length, cached)
        if holes is not None:
            done = self._read_all(self.fd, view[:length], offset)
            for start, end in holes:  # the zero pages the read made of them
                _fadvise(self.fd, start, end - start, "POSIX_FADV_DONTNEED")
            return done
        padded = -(-length // DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT
        if self._direct is not None and offset % DIRECT_ALIGNMENT == 0 and padded <= len(buf):
            try:
                return min(length, self._read_all(self._direct.fd, view[:padded], offset))
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
                self._direct = None  # this file or device refuses it: buffered from now on
        done = self._read_all(self.fd, view[:length], offset)
        if cached == 0:
            _fadvise(self.fd, offset, done, "POSIX_FADV_DONTNEED")
        return done

    def _holes_if_rest(
        self, offset: int, length: int, cached: int | None
    ) -> list[tuple[int, int]] | None:
        """The holes of a range some of whose pages are cached, if its other
        pages are all holes (a block where data and holes meet, as in an image
        copied with `cp --sparse`): such a range reads no disk through the cache,
        where O_DIRECT read its data from the disk again (the bench's work image
        has 227 of them). None otherwise."""
        if not cached or not self._regular:
            return None
        holes = _holes(self.fd, offset, offset + length)
        in_holes = sum(cached_pages(self.fd, s, e - s) or 0 for s, e in holes)
        hole_pages = sum(-(-(e - s) // mmap.PAGESIZE) for s, e in holes)
        pages = -(-length // mmap.PAGESIZE)
        return holes if holes and cached - in_holes + hole_pages >= pages else None

    @staticmethod
    def _read_all(fd: int, view: memoryview, offset: int) -> int:
        done = 0
        while done < len(view):
            n = os.preadv(fd, [view[done:]], offset + done)
            if n == 0:
                break
            done += n
        return done

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
        self._handle.close()

    def __enter__(self) -> VolumeReader:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class VolumeWriter:
    """A volume open for writing (it must exist). Use as a context manager.

    With `punch_holes` False, `zero` always writes zeros (for devices where a
    discard is slow or does not read back as zeros)."""

    def __init__(self, path: Path, *, punch_holes: bool = True) -> None:
        self.path = path
        self._handle = _open(path, os.O_WRONLY)
        self.fd = self._handle.fd
        try:
            self.size = _size(self.fd, path)
        except BaseException:
            self._handle.close()
            raise
        self._punch = punch_holes

    def write(self, data: bytes | bytearray | memoryview, offset: int) -> None:
        """Write all of `data` at `offset`; VolumeIOError past the end of the volume."""
        view = memoryview(data).cast("B")
        self._check_range(offset, len(view))
        done = 0
        while done < len(view):
            done += os.pwrite(self.fd, view[done:], offset + done)

    def write_sparse(self, data: bytes | bytearray | memoryview, offset: int) -> None:
        """Write `data` at `offset` (a multiple of 4096) but for its pages of
        zeros, which must read as zeros already (a new sparse volume)."""
        view = memoryview(data).cast("B")
        start = 0  # where the bytes still to write begin
        for at, end in _zero_spans(view):
            if at > start:
                self.write(view[start:at], offset + start)
            start = end
        if start < len(view):
            self.write(view[start:], offset + start)

    def zero(self, offset: int, length: int) -> None:
        """Make [offset, offset+length) read as zeros: punch a hole if possible,
        else write zeros."""
        self._check_range(offset, length)
        if length == 0:
            return
        if self._punch:
            try:
                _fallocate(self.fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length)
                return
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL):
                    raise
                self._punch = False
        zeros = bytes(min(length, _ZERO_CHUNK))
        end = offset + length
        while offset < end:
            n = min(len(zeros), end - offset)
            self.write(memoryview(zeros)[:n], offset)
            offset += n

    def flush(self) -> None:
        """Make every write durable (fsync)."""
        os.fsync(self.fd)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> VolumeWriter:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_range(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise VolumeIOError(
                f"write of {length} bytes at {offset} is outside {self.path} ({self.size} bytes)"
            )


def _zero_spans(view: memoryview) -> list[tuple[int, int]]:
    """The page-aligned spans of `view` that hold only zeros, in order. Only
    pages whose first byte is zero are compared, 16 at a time first, so data
    without pages of zeros costs one 256-byte gather per MiB."""
    firsts = bytes(view[::_PAGE])
    if 0 not in firsts:
        return []
    spans: list[tuple[int, int]] = []
    for chunk in range(0, len(view), _SPAN):
        end = min(chunk + _SPAN, len(view))
        if 0 not in firsts[chunk // _PAGE : -(-end // _PAGE)]:
            continue
        if _all_zero(view[chunk:end]):
            spans.append((chunk, end))
            continue
        for page in range(chunk, end, _PAGE):
            stop = min(page + _PAGE, end)
            if firsts[page // _PAGE] == 0 and _all_zero(view[page:stop]):
                spans.append((page, stop))
    return spans


def _all_zero(view: memoryview) -> bool:
    # bytes compare with memcmp; memoryviews compare item by item, 50 times slower
    return view.tobytes() == bytes(len(view))


def open_for_read(path: Path) -> VolumeReader:
    return VolumeReader(path)


def open_for_write(path: Path, *, punch_holes: bool = True) -> VolumeWriter:
    return VolumeWriter(path, punch_holes=punch_holes)


class _Fd:
    """An open descriptor closed exactly once."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            os.close(self.fd)

    def __enter__(self) -> _Fd:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _open(path: Path, mode: int) -> _Fd:
    try:
        fd = os.open(path, mode | os.O_CLOEXEC)
    except FileNotFoundError as e:
        raise VolumeIOError(f"{path} does not exist") from e
    except IsADirectoryError as e:
        raise VolumeIOError(f"{path} is not a regular file or block device") from e
    except OSError as e:
        raise VolumeIOError(f"cannot open {path}: {e.strerror}") from e
    handle = _Fd(fd)
    try:
        mode_bits = os.fstat(fd).st_mode
    except OSError as e:
        handle.close()
        raise VolumeIOError(f"cannot stat {path}: {e.strerror}") from e
    if not (stat.S_ISREG(mode_bits) or stat.S_ISBLK(mode_bits)):
        handle.close()
        raise VolumeIOError(f"{path} is not a regular file or block device")
    return handle


class _CachestatRange(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Cachestat(ctypes.Structure):
    _fields_ = [
        ("nr_cache", ctypes.c_uint64),
        ("nr_dirty", ctypes.c_uint64),
        ("nr_writeback", ctypes.c_uint64),
        ("nr_evicted", ctypes.c_uint64),
        ("nr_recently_evicted", ctypes.c_uint64),
    ]


_SYS_CACHESTAT = 451  # the same number on every architecture


def cached_pages(fd: int, offset: int, length: int) -> int | None:
    """How many pages of [offset, offset+length) the page cache holds, or None
    where the kernel cannot tell (before Linux 6.5)."""
    global _cachestat_works
    if not _cachestat_works or _syscall is None:
        return None
    if length <= 0:
        return 0
    span = _CachestatRange(offset, length)
    found = _Cachestat()
    if _syscall(_SYS_CACHESTAT, fd, ctypes.byref(span), ctypes.byref(found), 0) != 0:
        if ctypes.get_errno() in (errno.ENOSYS, errno.EPERM):
            _cachestat_works = False
        return None
    return int(found.nr_cache)


def _open_direct(path: Path) -> _Fd | None:
    """A second descriptor with O_DIRECT, or None where the filesystem refuses it."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        return _Fd(os.open(path, os.O_RDONLY | os.O_CLOEXEC | flag))
    except OSError:
        return None


def _size(fd: int, path: Path) -> int:
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    except OSError as e:
        raise VolumeIOError(f"cannot find the size of {path}: {e.strerror}") from e


def _holes(fd: int, start: int, end: int) -> list[tuple[int, int]]:
    """The holes of [start, end) as (start, end) ranges; none where the file
    system cannot tell (SEEK_HOLE unsupported)."""
    holes: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        try:
            hole = os.lseek(fd, pos, os.SEEK_HOLE)
        except OSError:
            return []
        if hole >= end:
            break
        try:
            data = min(os.lseek(fd, hole, os.SEEK_DATA), end)
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: no data after the hole
                return []
            data = end
        holes.append((hole, data))
        pos = data
    return holes


def _fadvise(fd: int, offset: int, length: int, advice: str) -> None:
    """A page-cache hint; a platform or filesystem without it just ignores it."""
    value = getattr(os, advice, None)
    if value is None or not hasattr(os, "posix_fadvise"):
        return
    try:
        os.posix_fadvise(fd, offset, length, value)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOSYS, errno.ESPIPE, errno.EOPNOTSUPP):
            raise


_cachestat_works = True
_syscall = libc.function("syscall", None)
_fallocate_call = libc.function(
    "fallocate", [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
)


def _fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    libc.call(_fallocate_call, "fallocate", fd, mode, offset, length)
