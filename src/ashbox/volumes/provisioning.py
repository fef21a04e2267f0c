"""Making, sizing and removing the files of `file` volumes (the worker's side of
volume create, manage, restore to a new volume and delete); reading and writing
their bytes is ashbox.volumes.file's."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ashbox.errors import VolumeIOError

MAX_FILE_SIZE = 2**63 - 1  # off_t; past it ftruncate raises OverflowError, not EFBIG


def create_volume_file(path: Path, size: int) -> None:
    """Create a sparse file of `size` bytes; VolumeIOError if it already exists or
    cannot be that large (then no file is left)."""
    if not 0 <= size <= MAX_FILE_SIZE:
        raise VolumeIOError(f"size {size} of {path} is not between 0 and {MAX_FILE_SIZE}")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError as e:
        raise VolumeIOError(f"volume file {path} already exists") from e
    except OSError as e:
        raise VolumeIOError(f"cannot create volume file {path}: {e.strerror}") from e
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError as e:
        path.unlink(missing_ok=True)
        raise VolumeIOError(_resize_failed(path, size, e)) from e
    finally:
        os.close(fd)


def ensure_volume_file(path: Path, size: int) -> None:
    """A sparse file of `size` bytes at `path`: created, or, left by an earlier
    run of the same task, kept with its bytes and set to that size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        create_volume_file(path, size)
    except VolumeIOError:
        if not path.is_file():
            raise
        try:
            os.truncate(path, size)
        except OSError as e:
            raise VolumeIOError(_resize_failed(path, size, e)) from e


def remove_volume_file(path: Path) -> None:
    """Remove a volume file; a missing one is already removed."""
    try:
        path.unlink()
    except FileNotFoundError:
        return


def _resize_failed(path: Path, size: int, error: OSError) -> str:
    """Why `path` could not be made `size` bytes long; EFBIG said in words."""
    if error.errno == errno.EFBIG:
        gib = size / 2**30
        shown = f"{gib:.0f}" if gib.is_integer() else f"{gib:.1f}"
        return (
            f"volume file {path} cannot be {size} bytes ({shown} GiB) long: its "
            "filesystem, or the service's file size limit, allows no file that large"
        )
    return f"cannot make volume file {path} {size} bytes long: {error.strerror}"
