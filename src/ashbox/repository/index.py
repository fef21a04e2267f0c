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
  names the orphan to delete, never an unknown object in the store. A pending
  pack whose writer is gone is `abandon_packs`-ed: marked abandoned, so a
  writer that was only late can no longer commit it (its commit raises
  PackAbandoned). Its writer may still be uploading it, so the collector
  deletes its object twice, a grace period apart: once it is abandoned for
  longer than the grace period (it is then `bury`-ed: dead as of then), and
  again when it has been dead that long, before it is forgotten; an upload
  that outlasted the first grace period leaves no object behind.
- A page delta needs its base: a backup that references a delta also
  references its base (and the base's base), so a base lives as long as any
  delta on it.
- A pack that dies records when (`dead_at`); its object is deleted only a
  grace period later, so a reader that located a blob just before a repack
  moved it still finds the old pack.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

PENDING = "pending"
LIVE = "live"
DEAD = "dead"
ABANDONED = "abandoned"  # was pending, its writer gone: its upload may still land


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


@dataclass(frozen=True, slots=True)
class PackInfo:
    """A pack row: its state (PENDING, LIVE, DEAD or ABANDONED), size, and when
    it died (was abandoned)."""

    pack_id: str
    state: str
    size: int
    dead_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PendingPack:
    """A pack begun and not committed: who began it (a backup id, or a
    collector's own name) and when."""

    pack_id: str
    owner: str
    begun_at: datetime


@dataclass(frozen=True, slots=True)
class PackUsage:
    """A live pack, its size, its indexed blobs and their stored bytes, and the
    stored bytes of those referenced."""

    pack_id: str
    size: int
    live_bytes: int
    blobs: int = 0
    blob_bytes: int = 0


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    """What the referenced blobs of a container hold (`ashbox repo stats`): how
    many are indexed, their raw and stored bytes, each counted once, and per
    backup holding a reference the stored bytes of the indexed blobs only it
    references (0 if none)."""

    blobs: int
    raw_size: int
    blob_size: int
    unique_sizes: dict[str, int]


@dataclass(frozen=True, slots=True)
class PackContents:
    """A pack as its trailer describes it: what `rebuild` indexes."""

    pack_id: str
    size: int
    entries: Sequence[BlobLocation]


class Index(Protocol):
    def ensure_container(self, container: str) -> None:
        """Create the container's index entry if missing (idempotent)."""

    def reuse(self, container: str, backup_id: str, blob_ids: Sequence[bytes]) -> set[bytes]:
        """Reference for `backup_id` those of `blob_ids` already stored in a live pack,
        and, transitively, the bases of the deltas among them; return them (the
        bases not included). Idempotent."""

    def begin_pack(self, container: str, pack_id: str, backup_id: str) -> bool:
        """Record a pack about to be uploaded, owned by `backup_id`. False, and
        nothing recorded, if the index knows a pack of that id already, in any
        state: its object may be a dead pack's that the collector is deleting,
        so the writer must give its pack another id (`pack.begin_upload`)."""

    def commit_pack(
        self,
        container: str,
        pack_id: str,
        size: int,
        entries: Sequence[BlobLocation],
        backup_id: str,
    ) -> None:
        """Mark the uploaded pack live, add its blobs (an id already indexed keeps
        its first location) and reference them all for `backup_id`. PackAbandoned,
        and nothing changed, if the pack is no longer pending."""

    def locate(self, container: str, blob_ids: Sequence[bytes]) -> dict[bytes, BlobLocation]:
        """Locations of the given blobs that are indexed."""

    def pending_packs(self, container: str, backup_id: str) -> list[str]:
        """Packs begun by `backup_id` and never committed (orphans of a crash)."""

    def pending(self, container: str) -> list[PendingPack]:
        """Every pending pack of the container: for the collector to find those
        whose writer is gone."""

    def abandon_packs(self, container: str, pack_ids: Sequence[str]) -> list[str]:
        """Mark abandoned, as of now, those of `pack_ids` still pending (their
        writer is gone, or late); return them."""

    def bury(self, container: str, pack_ids: Sequence[str]) -> None:
        """Mark dead, as of now, the abandoned `pack_ids` whose objects were just
        deleted: deleted again a grace period later (a late upload may have made
        them anew), then forgotten."""

    def keep_references(
        self, container: str, backup_id: str, blob_ids: Sequence[bytes]
    ) -> list[str]:
        """Drop the references of `backup_id` to blobs that are neither among
        `blob_ids` nor, transitively, bases of deltas among them (a writer may
        reference more than it ends up needing); mark dead and return the packs
        left with no referenced blob, as `release` does."""

    def release(self, container: str, backup_id: str) -> list[str]:
        """Drop every reference of `backup_id`; mark dead and return the packs
        left with no referenced blob. Their objects are then deleted from the store
        and `forget_packs` removes their rows."""

    def dead_packs(
        self, container: str, *, dead_before: datetime | None = None, state: str = DEAD
    ) -> list[str]:
        """Packs marked dead (or `state`: ABANDONED) whose objects may still be in
        the store; with `dead_before`, only those that died at or before it."""

    def forget_packs(self, container: str, pack_ids: Sequence[str]) -> None:
        """Remove packs (and their blobs) whose objects are gone from the store."""

    def packs(self, container: str) -> list[PackInfo]:
        """Every pack row of the container, in any state."""

    def blobs(self, container: str) -> list[BlobLocation]:
        """Every indexed blob of the container (one row per blob: for tests and
        small repositories only; `pack_blobs` and `usage` scale)."""

    def pack_blobs(self, container: str, pack_id: str) -> list[BlobLocation]:
        """The blobs indexed in one pack, by blob id: `repo check` asks pack by
        pack, so it holds one pack's rows at a time, never the whole index."""

    def references(self, container: str) -> dict[str, set[bytes]]:
        """For every backup holding a reference, the blob ids it references."""

    def usage(self, container: str) -> ContainerUsage:
        """The referenced blobs' counts and bytes, summed by the index (`repo
        stats`), so no caller holds a row per blob or per reference."""

    def sweep(self, container: str) -> list[str]:
        """Mark dead (now) the live packs left with no referenced blob; return them."""

    def pack_usage(self, container: str) -> list[PackUsage]:
        """Size and live bytes of every live pack."""

    def begin_repack(
        self, container: str, pack_ids: Sequence[str]
    ) -> dict[str, list[BlobLocation]]:
        """Drop the unreferenced blobs of these live packs from the index (so no
        backup can reuse them any more) and return the referenced blobs left in
        each, to be copied into new packs. A pack left with none is marked dead."""

    def commit_repack(
        self,
        container: str,
        pack_id: str,
        size: int,
        entries: Sequence[BlobLocation],
        old_pack_ids: Sequence[str],
    ) -> list[str]:
        """The pending pack `pack_id` (begun by the repack) is uploaded: point the
        entries still indexed in `old_pack_ids` at it, mark it live, and mark dead
        (now) the old packs left with no referenced blob; return those. If
        `pack_id` is not pending (a pack of the same bytes already had a row),
        nothing changes and nothing is returned."""

    def rebuild(
        self,
        container: str,
        packs: Iterable[PackContents],
        references: Iterable[tuple[str, Collection[bytes]]],
        keep: Callable[[str], bool],
    ) -> int:
        """Replace the container's live and dead pack rows, blobs and references
        with `packs` (all live; a blob listed by several packs is indexed in the
        first by pack id) and `references` (bases added), taken one at a time
        (the store's trailers and manifests, read as they are asked for).
        Pending packs are kept, and so are the references of each other backup
        for which `keep` is true. Packs then left with no referenced blob are
        marked dead. Returns how many blobs are indexed."""
