"""The repository index: which blobs exist, where, and which backups rely on them.

The index lives in the database for speed (`ashbox.db.index` implements this
protocol); this layer knows only the protocol, so it never imports the DB.
Its rules (DESIGN.md §3, docs/format.md "Index"):

- A backup *references* every blob its manifest needs. A blob with no
  reference is dead; a pack whose blobs are all dead can be deleted.
- `reuse` takes the references in the same transaction that decides a blob
  exists, so a concurrent `release` can never reclaim a blob being reused.
- A pack is `begin_pack`-ed (pending, owned by a backup) before its upload and
  `commit_pack`-ed after it, so a crash mid-upload leaves a pending row that
  names the orphan to delete, never an unknown object in the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """Where a blob lives: pack, byte range in the pack, its raw size and flags."""

    blob_id: bytes
    pack_id: str
    offset: int
    length: int
    raw_length: int
    flags: int
    base_id: bytes | None = None


class Index(Protocol):
    def ensure_container(self, container: str) -> None:
        """Create the container's index entry if missing (idempotent)."""

    def reuse(self, container: str, backup_id: str, blob_ids: Sequence[bytes]) -> set[bytes]:
        """Reference for `backup_id` those of `blob_ids` already stored in a live pack;
        return them. Idempotent."""

    def begin_pack(self, container: str, pack_id: str, backup_id: str) -> None:
        """Record a pack about to be uploaded, owned by `backup_id`."""

    def commit_pack(
        self,
        container: str,
        pack_id: str,
        size: int,
        entries: Sequence[BlobLocation],
        backup_id: str,
    ) -> None:
        """Mark the uploaded pack live, add its blobs (an id already indexed keeps
        its first location) and reference them all for `backup_id`."""

    def locate(self, container: str, blob_ids: Sequence[bytes]) -> dict[bytes, BlobLocation]:
        """Locations of the given blobs that are indexed."""

    def pending_packs(self, container: str, backup_id: str) -> list[str]:
        """Packs begun by `backup_id` and never committed (orphans of a crash)."""

    def release(self, container: str, backup_id: str) -> list[str]:
        """Drop every reference of `backup_id`; mark dead and return the packs
        left with no referenced blob. Their objects are then deleted from the store
        and `forget_packs` removes their rows."""

    def dead_packs(self, container: str) -> list[str]:
        """Packs marked dead whose objects may still be in the store."""

    def forget_packs(self, container: str, pack_ids: Sequence[str]) -> None:
        """Remove packs (and their blobs) whose objects are gone from the store."""
