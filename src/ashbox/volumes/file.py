"""The `file` volume backend: raw image files, and block devices by path.

A volume is read in data extents (SEEK_DATA/SEEK_HOLE), so the holes of a
sparse image are never read, and written with pwrite; zeroed ranges are
punched out (fallocate PUNCH_HOLE) where the filesystem or device allows.
Reads hint the kernel (posix_fadvise) not to keep the image in the page cache.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from ashbox.errors import InvalidVolume

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_ZERO_CHUNK = 1 << 20
_DROP_CACHE_EVERY = 64 << 20


def create_volume_file(path: Path, size: int) -> None:
    """Create a sparse file of `size` bytes; InvalidVolume if it already exists."""
    if size < 0:
        raise InvalidVolume(f"size {size} of {path} is negative")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError as e:
        raise InvalidVolume(f"volume file {path} already exists") from e
    except OSError as e:
        raise InvalidVolume(f"cannot create volume file {path}: {e.strerror}") from e
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def probe_size(path: Path) -> int:
    """Size in bytes of a regular file or block device; InvalidVolume otherwise."""
    with _open(path, os.O_RDONLY) as fd:
        return _size(fd.fd, path)


def remove_volume_file(path: Path) -> None:
    """Remove a volume file; a missing one is already removed."""
    try:
        path.unlink()
    except FileNotFoundError:
        return


class VolumeReader:
    """A volume open for reading. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = _open(path, os.O_RDONLY)
        self.fd = self._handle.fd
        try:
            self.size = _size(self.fd, path)
            self._regular = stat.S_ISREG(os.fstat(self.fd).st_mode)
            _fadvise(self.fd, 0, 0, "POSIX_FADV_SEQUENTIAL")
        except BaseException:
            self._handle.close()
            raise
        self._uncached_to = 0

    def data_extents(self) -> Iterator[tuple[int, int]]:
        """(offset, length) of the ranges that may hold data, in order. Holes are
        skipped; without SEEK_DATA support the whole volume is one extent."""
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
            yield start, end - start
            pos = end

    def readinto(self, buf: memoryview, offset: int) -> int:
        """Fill `buf` from `offset`; return the bytes read (short only at the end)."""
        done = 0
        while done < len(buf):
            n = os.preadv(self.fd, [buf[done:]], offset + done)
            if n == 0:
                break
            done += n
        if self._regular and offset + done - self._uncached_to >= _DROP_CACHE_EVERY:
            _fadvise(
                self.fd, self._uncached_to, offset + done - self._uncached_to, "POSIX_FADV_DONTNEED"
            )
            self._uncached_to = offset + done
        return done

    def close(self) -> None:
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
        """Write all of `data` at `offset`; InvalidVolume past the end of the volume."""
        view = memoryview(data).cast("B")
        self._check_range(offset, len(view))
        done = 0
        while done < len(view):
            done += os.pwrite(self.fd, view[done:], offset + done)

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
            raise InvalidVolume(
                f"write of {length} bytes at {offset} is outside {self.path} ({self.size} bytes)"
            )


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
        raise InvalidVolume(f"{path} does not exist") from e
    except IsADirectoryError as e:
        raise InvalidVolume(f"{path} is not a regular file or block device") from e
    except OSError as e:
        raise InvalidVolume(f"cannot open {path}: {e.strerror}") from e
    handle = _Fd(fd)
    try:
        mode_bits = os.fstat(fd).st_mode
    except OSError as e:
        handle.close()
        raise InvalidVolume(f"cannot stat {path}: {e.strerror}") from e
    if not (stat.S_ISREG(mode_bits) or stat.S_ISBLK(mode_bits)):
        handle.close()
        raise InvalidVolume(f"{path} is not a regular file or block device")
    return handle


def _size(fd: int, path: Path) -> int:
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    except OSError as e:
        raise InvalidVolume(f"cannot find the size of {path}: {e.strerror}") from e


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


def _load_fallocate() -> Callable[[int, int, int, int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        func = libc.fallocate
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    func.restype = ctypes.c_int
    fallocate: Callable[[int, int, int, int], int] = func
    return fallocate


_libc_fallocate = _load_fallocate()


def _fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    if _libc_fallocate is None:
        raise OSError(errno.ENOSYS, "fallocate is not available")
    if _libc_fallocate(fd, mode, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
