"""An in-memory `Index`: a fake at a seam we own, for fast repository tests.

It follows the protocol's semantics as `ashbox.db.index.DbIndex` implements
them (docs/format.md, "Index"): refs per backup, pending/live/dead packs, a
blob indexed at its first location, dead packs losing their blob rows at
once. It also records the thread of every call, so tests can check that the
repository only calls the index from the caller's thread.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ashbox.errors import PackAbandoned
from ashbox.repository.index import (
    ABANDONED,
    BlobLocation,
    ContainerUsage,
    PackInfo,
    PendingPack,
)

PENDING = "pending"
LIVE = "live"
DEAD = "dead"


@dataclass
class PackRow:
    state: str
    owner: str | None
    size: int = 0
    dead_at: datetime | None = None
    begun_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class ContainerRows:
    packs: dict[str, PackRow] = field(default_factory=dict)
    blobs: dict[bytes, BlobLocation] = field(default_factory=dict)
    refs: dict[str, set[bytes]] = field(default_factory=dict)


class MemoryIndex:
    def __init__(self) -> None:
        self.containers: dict[str, ContainerRows] = {}
        self.threads: set[int] = set()
        self._lock = threading.Lock()

    def ensure_container(self, container: str) -> None:
        with self._lock:
            self._touch()
            self.containers.setdefault(container, ContainerRows())

    def reuse(self, container: str, backup_id: str, blob_ids: Sequence[bytes]) -> set[bytes]:
        with self._lock:
            c = self._container(container)
            found = {
                b for b in blob_ids if b in c.blobs and c.packs[c.blobs[b].pack_id].state == LIVE
            }
            c.refs.setdefault(backup_id, set()).update(_with_bases(c, found))
            return found

    def begin_pack(self, container: str, pack_id: str, backup_id: str) -> bool:
        with self._lock:
            packs = self._container(container).packs
            if pack_id in packs:
                return False
            packs[pack_id] = PackRow(PENDING, backup_id)
            return True

    def commit_pack(
        self,
        container: str,
        pack_id: str,
        size: int,
        entries: Sequence[BlobLocation],
        backup_id: str,
    ) -> None:
        with self._lock:
            c = self._container(container)
            row = c.packs.get(pack_id)
            if row is None or row.state != PENDING:  # abandoned, and maybe forgotten since
                raise PackAbandoned(pack_id)
            for e in entries:
                if e.pack_id != pack_id:
                    raise AssertionError(f"entry of pack {e.pack_id} committed with {pack_id}")
                c.blobs.setdefault(e.blob_id, e)
            owns_a_blob = any(loc.pack_id == pack_id for loc in c.blobs.values())
            row.state = LIVE if owns_a_blob else DEAD
            row.dead_at = None if owns_a_blob else datetime.now(UTC)
            row.size = size
            row.owner = None
            c.refs.setdefault(backup_id, set()).update(_with_bases(c, {e.blob_id for e in entries}))

    def locate(self, container: str, blob_ids: Sequence[bytes]) -> dict[bytes, BlobLocation]:
        with self._lock:
            c = self._container(container)
            return {b: c.blobs[b] for b in blob_ids if b in c.blobs}

    def pending_packs(self, container: str, backup_id: str) -> list[str]:
        with self._lock:
            c = self._container(container)
            return [p for p, r in c.packs.items() if r.state == PENDING and r.owner == backup_id]

    def pending(self, container: str) -> list[PendingPack]:
        with self._lock:
            c = self._container(container)
            return [
                PendingPack(p, r.owner or "", r.begun_at)
                for p, r in sorted(c.packs.items())
                if r.state == PENDING
            ]

    def abandon_packs(self, container: str, pack_ids: Sequence[str]) -> list[str]:
        with self._lock:
            c = self._container(container)
            abandoned = sorted(p for p in set(pack_ids) if c.packs[p].state == PENDING)
            for p in abandoned:
                row = c.packs[p]
                row.state, row.owner, row.dead_at = ABANDONED, None, datetime.now(UTC)
            return abandoned

    def bury(self, container: str, pack_ids: Sequence[str]) -> None:
        with self._lock:
            c = self._container(container)
            for p in pack_ids:
                if c.packs[p].state == ABANDONED:
                    c.packs[p].state, c.packs[p].dead_at = DEAD, datetime.now(UTC)

    def references(self, container: str) -> dict[str, set[bytes]]:
        """Each backup's referenced blobs (as `DbIndex.references`)."""
        with self._lock:
            return {b: set(ids) for b, ids in self._container(container).refs.items() if ids}

    def packs(self, container: str) -> list[PackInfo]:
        with self._lock:
            c = self._container(container)
            return [
                PackInfo(pack_id=p, state=r.state, size=r.size, dead_at=r.dead_at)
                for p, r in sorted(c.packs.items())
            ]

    def blobs(self, container: str) -> list[BlobLocation]:
        with self._lock:
            return [loc for _, loc in sorted(self._container(container).blobs.items())]

    def pack_blobs(self, container: str, pack_id: str) -> list[BlobLocation]:
        with self._lock:
            c = self._container(container)
            return [loc for b, loc in sorted(c.blobs.items()) if loc.pack_id == pack_id]

    def usage(self, container: str) -> ContainerUsage:
        with self._lock:
            c = self._container(container)
            users: dict[bytes, list[str]] = {}
            for backup_id, ids in c.refs.items():
                for b in ids:
                    users.setdefault(b, []).append(backup_id)
            referenced = [c.blobs[b] for b in users if b in c.blobs]
            unique = {backup_id: 0 for backup_id, ids in c.refs.items() if ids}
            for b, holders in users.items():
                if len(holders) == 1 and b in c.blobs:
                    unique[holders[0]] += c.blobs[b].length
            return ContainerUsage(
                blobs=len(referenced),
                raw_size=sum(loc.raw_length for loc in referenced),
                blob_size=sum(loc.length for loc in referenced),
                unique_sizes=unique,
            )

    def keep_references(
        self, container: str, backup_id: str, blob_ids: Sequence[bytes]
    ) -> list[str]:
        with self._lock:
            c = self._container(container)
            held = c.refs.get(backup_id, set())
            needed = _with_bases(c, set(blob_ids))
            c.refs[backup_id] = held & needed
            return self._kill_unreferenced(c, held - needed)

    def release(self, container: str, backup_id: str) -> list[str]:
        with self._lock:
            c = self._container(container)
            return self._kill_unreferenced(c, c.refs.pop(backup_id, set()))

    def _kill_unreferenced(self, c: ContainerRows, released: set[bytes]) -> list[str]:
        """Mark dead the packs of `released` blobs that hold no referenced blob."""
        referenced = set().union(*c.refs.values())
        candidates = {c.blobs[b].pack_id for b in released if b in c.blobs}
        dead = sorted(
            p
            for p in candidates
            if not any(loc.pack_id == p and b in referenced for b, loc in c.blobs.items())
        )
        for p in dead:
            c.packs[p].state = DEAD
            c.packs[p].dead_at = datetime.now(UTC)
        c.blobs = {b: loc for b, loc in c.blobs.items() if loc.pack_id not in dead}
        return dead

    def dead_packs(
        self, container: str, *, dead_before: datetime | None = None, state: str = DEAD
    ) -> list[str]:
        with self._lock:
            c = self._container(container)
            return sorted(
                p
                for p, r in c.packs.items()
                if r.state == state
                and (dead_before is None or r.dead_at is None or r.dead_at <= dead_before)
            )

    def forget_packs(self, container: str, pack_ids: Sequence[str]) -> None:
        with self._lock:
            c = self._container(container)
            gone = set(pack_ids)
            c.blobs = {b: loc for b, loc in c.blobs.items() if loc.pack_id not in gone}
            for p in gone:
                c.packs.pop(p, None)

    def refs_of(self, container: str, backup_id: str) -> set[bytes]:
        with self._lock:
            return set(self._container(container).refs.get(backup_id, set()))

    def packs_in(self, container: str, state: str) -> set[str]:
        with self._lock:
            c = self._container(container)
            return {p for p, r in c.packs.items() if r.state == state}

    def _container(self, container: str) -> ContainerRows:
        self._touch()
        try:
            return self.containers[container]
        except KeyError:
            raise AssertionError(f"container {container} used before ensure_container") from None

    def _touch(self) -> None:
        self.threads.add(threading.get_ident())


def _with_bases(c: ContainerRows, blob_ids: set[bytes]) -> set[bytes]:
    """The blobs and, transitively, the bases of the indexed deltas among them."""
    out = set(blob_ids)
    frontier = set(blob_ids)
    while frontier:
        bases = {c.blobs[b].base_id for b in frontier if b in c.blobs}
        frontier = {b for b in bases if b is not None} - out
        out |= frontier
    return out
