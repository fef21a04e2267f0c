"""Volumes: open a volume or snapshot for reading or writing (DESIGN.md §1).

Only the `file` backend exists: raw image files and block devices by path.
"""

from __future__ import annotations

from ashbox.volumes.file import (
    VolumeReader,
    VolumeWriter,
    aligned_buffer,
    open_for_read,
    open_for_write,
    probe_size,
)
from ashbox.volumes.provisioning import create_volume_file, remove_volume_file

__all__ = [
    "VolumeReader",
    "VolumeWriter",
    "aligned_buffer",
    "create_volume_file",
    "open_for_read",
    "open_for_write",
    "probe_size",
    "remove_volume_file",
]
