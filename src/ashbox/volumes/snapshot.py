"""A snapshot's file: a point-in-time copy of a volume's file, beside the volumes.

A reflink (FICLONE) where the filesystem shares blocks between files (XFS,
Btrfs): instant, and no space until either side changes. Elsewhere a sparse
copy: only the source's data extents are copied (copy_file_range, which a
filesystem may still turn into a clone), so holes stay holes.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from ashbox.errors import VolumeIOError

_FICLONE = 0x40049409  # _IOW(0x94, 9, int)
_COPY_CHUNK = 64 << 20
_NOT_CLONEABLE = (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS)


def copy_volume(source: Path, target: Path) -> str:
    """Copy `source` to a new file at `target`, replacing what an earlier run left
    there; how (`reflink` or `sparse copy`). VolumeIOError when it cannot."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with source.open("rb") as src, partial.open("wb") as dst:
            how = _clone_or_copy(src.fileno(), dst.fileno())
            os.fsync(dst.fileno())
        os.replace(partial, target)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise VolumeIOError(f"cannot copy {source} to {target}: {e.strerror or e}") from e
    return how


def _clone_or_copy(src: int, dst: int) -> str:
    try:
        fcntl.ioctl(dst, _FICLONE, src)
        return "reflink"
    except OSError as e:
        if e.errno not in _NOT_CLONEABLE:
            raise
    size = os.fstat(src).st_size
    os.ftruncate(dst, size)
    for start, end in _extents(src, size):
        offset = start
        while offset < end:
            copied = os.copy_file_range(
                src, dst, min(_COPY_CHUNK, end - offset), offset_src=offset, offset_dst=offset
            )
            if copied == 0:
                raise OSError(errno.EIO, f"the source ended at {offset} while copying")
            offset += copied
    return "sparse copy"


def _extents(fd: int, size: int) -> list[tuple[int, int]]:
    """The data extents of the file; all of it where SEEK_DATA is not supported."""
    extents: list[tuple[int, int]] = []
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                break
            return [(0, size)]
        end = os.lseek(fd, start, os.SEEK_HOLE)
        extents.append((start, min(end, size)))
        pos = end
    return extents
