"""The posix backup store: one file per object under a root directory.

Works on local filesystems and NFS mounts. Keys map to relative paths; every
`put` writes a temporary file in the target directory, fsyncs it, renames it
over the key and fsyncs the directory, so a reader (or a crash) sees the whole
object or none (docs/format.md, "Write order").

A backup writes gigabytes it will not read back soon, and fresh page-cache
pages are costly (bench/store_put.py), so a large object whose memory is
page-aligned (the writer's pack buffers are) is written with O_DIRECT up to
its last whole page; the rest, and any object the filesystem or the memory
does not allow it for, goes through the cache and is dropped from it once
durable.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from ashbox.errors import InvalidInput, ObjectNotFound, StoreError

_TMP_PREFIX = ".tmp-"
_DIRECT_ALIGNMENT = 4096
_DIRECT_MIN = 1 << 20  # smaller objects are not worth a second open
_O_DIRECT = getattr(os, "O_DIRECT", 0)


class PosixStore:
    """A `Store` rooted at the directory `root` (created if missing).

    Key components may not be empty, `.` or `..`, nor start with a dot: names
    starting with a dot are reserved for temporary files and never listed.
    """

    def __init__(self, root: Path) -> None:
        if not root.is_absolute():
            raise InvalidInput(f"The posix store root {root} is not an absolute path.")
        self.root = root
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _store_error(f"cannot create the store directory {root}", e) from e

    def __repr__(self) -> str:
        return f"PosixStore({str(self.root)!r})"

    def put(self, key: str, data: bytes | memoryview) -> None:
        path = self._path(key)
        tmp = path.with_name(f"{_TMP_PREFIX}{path.name}.{secrets.token_hex(8)}")
        view = memoryview(data).cast("B")
        direct = _O_DIRECT if len(view) >= _DIRECT_MIN else 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = _create(tmp, direct)
        except OSError as e:
            raise _store_error(f"cannot write object {key}", e) from e
        try:
            try:
                written = _write_direct(fd, view) if direct else 0
                while written < len(view):
                    written += os.pwrite(fd, view[written:], written)
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            os.rename(tmp, path)
            _fsync_dir(path.parent)
        except OSError as e:
            _unlink_quietly(tmp)
            raise _store_error(f"cannot write object {key}", e) from e

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if offset < 0 or (length is not None and length < 0):
            raise InvalidInput(f"Invalid range offset={offset} length={length} for {key}.")
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as e:
            raise ObjectNotFound(key) from e
        except OSError as e:
            raise _store_error(f"cannot open object {key}", e) from e
        try:
            end = os.fstat(fd).st_size
            if length is not None:
                end = min(end, offset + length)
            return _pread_all(fd, max(0, end - offset), offset)
        except OSError as e:
            raise _store_error(f"cannot read object {key}", e) from e
        finally:
            os.close(fd)

    def size(self, key: str) -> int:
        try:
            return os.stat(self._path(key)).st_size
        except FileNotFoundError as e:
            raise ObjectNotFound(key) from e
        except OSError as e:
            raise _store_error(f"cannot stat object {key}", e) from e

    def delete(self, key: str) -> None:
        """Remove the object and any partial write of it a killed `put` left behind."""
        path = self._path(key)
        try:
            for partial in path.parent.glob(f"{_TMP_PREFIX}{path.name}.*"):
                partial.unlink(missing_ok=True)
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as e:
            raise _store_error(f"cannot delete object {key}", e) from e
        try:
            _fsync_dir(path.parent)
        except OSError as e:
            raise _store_error(f"cannot sync the directory of deleted object {key}", e) from e

    def list(self, prefix: str) -> Iterator[str]:
        head, _, tail = prefix.rpartition("/")
        start = self.root / head if head else self.root
        if head:
            self._path(head)  # validates the directory part of the prefix
        try:
            yield from self._walk(start, head, tail)
        except OSError as e:
            raise _store_error(f"cannot list objects under {prefix!r}", e) from e

    def _walk(self, directory: Path, key_dir: str, name_prefix: str) -> Iterator[str]:
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.startswith(name_prefix):
                continue
            key = f"{key_dir}/{entry.name}" if key_dir else entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path), key, "")
            elif entry.is_file(follow_symlinks=False):
                yield key

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(not p or p.startswith(".") for p in parts) or "\0" in key:
            raise InvalidInput(f"Invalid object key {key!r}.")
        return self.root.joinpath(*parts)


def _create(path: Path, direct: int) -> int:
    """A new file open for writing, with O_DIRECT (`direct`) if the filesystem allows."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    if not direct:
        return os.open(path, flags, 0o644)
    try:
        return os.open(path, flags | direct, 0o644)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
    # The refusal may come after the file was created: open it as it is.
    return os.open(path, flags & ~os.O_EXCL, 0o644)


def _write_direct(fd: int, view: memoryview) -> int:
    """Write the whole pages at the start of `view` through `fd` if it has
    O_DIRECT and the memory is aligned; the bytes written. Clears O_DIRECT
    from `fd` for the rest."""
    status = fcntl.fcntl(fd, fcntl.F_GETFL)
    if not status & _O_DIRECT:
        return 0
    pages = len(view) - len(view) % _DIRECT_ALIGNMENT
    written = 0
    try:
        while written < pages:
            written += os.pwrite(fd, view[written:pages], written)
    except OSError as e:
        if e.errno != errno.EINVAL:  # memory not aligned: write it all through the cache
            raise
    fcntl.fcntl(fd, fcntl.F_SETFL, status & ~_O_DIRECT)
    return written


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) == length or not data:
        return data
    parts = [data]
    done = len(data)
    while done < length:
        more = os.pread(fd, length - done, offset + done)
        if not more:
            break
        parts.append(more)
        done += len(more)
    return b"".join(parts)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):  # some filesystems cannot
            raise
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    """Remove a temporary file after a failed put; a missing one is already gone."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as e:
        raise _store_error(f"cannot remove temporary file {path}", e) from e


def _store_error(what: str, e: OSError) -> StoreError:
    reason = e.strerror or str(e)
    return StoreError(f"Backup store: {what}: {reason}.")
