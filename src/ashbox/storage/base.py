"""The Store protocol: a flat namespace of immutable objects under string keys.

Keys are `/`-separated relative paths (`volumebackups/data/ab/<pack-id>`).
Implementations: `posix` now; `s3` and `swift` later. Every `put` is atomic:
a reader sees the whole object or none (docs/format.md, "Write order").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class Store(Protocol):
    def put(self, key: str, data: bytes | memoryview) -> None:
        """Write the whole object atomically and durably, replacing any previous one."""

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes [offset, offset+length) of the object (to its end if length is None).
        ObjectNotFound if the key does not exist."""

    def size(self, key: str) -> int:
        """Size in bytes of the object; ObjectNotFound if missing."""

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""

    def list(self, prefix: str) -> Iterator[str]:
        """Keys that start with `prefix`, in no particular order."""
