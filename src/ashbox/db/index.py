"""The repository index in the database: implements `ashbox.repository.index.Index`.

Each method is one transaction. Those that decide liveness (`reuse`,
`commit_pack`, `release`, `sweep`, `begin_repack`, `commit_repack`, `rebuild`)
first lock the container's row, so a blob can never be reused by one backup
while another backup's delete or the garbage collector declares its pack dead
(DESIGN.md §3). On SQLite, BEGIN IMMEDIATE gives the same order.

A reference to a page delta brings references to its bases with it
(`_add_refs`), so "referenced" alone decides whether a blob is live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from ashbox.db.engine import Database
from ashbox.db.models import Blob, BlobRef, Container, Pack
from ashbox.db.upsert import insert_ignore
from ashbox.repository.index import (
    DEAD,
    LIVE,
    PENDING,
    BlobLocation,
    PackContents,
    PackInfo,
    PackUsage,
)

_BATCH = 500
_T = TypeVar("_T")

__all__ = ["DEAD", "LIVE", "PENDING", "DbIndex"]


class DbIndex:
    def __init__(self, db: Database) -> None:
        self._db = db

    def ensure_container(self, container: str) -> None:
        with self._db.transaction() as s:
            insert_ignore(s, Container, [{"name": container}])

    def containers(self) -> list[str]:
        """Every container the index knows (not part of the protocol: for the worker's gc)."""
        with self._db.transaction() as s:
            return list(s.scalars(select(Container.name).order_by(Container.name)))

    def reuse(self, container: str, backup_id: str, blob_ids: Sequence[bytes]) -> set[bytes]:
        found: set[bytes] = set()
        with self._db.transaction() as s:
            _lock(s, container)
            for chunk in _chunks(blob_ids):
                rows = s.scalars(
                    select(Blob.blob_id)
                    .join(Pack, (Pack.container == Blob.container) & (Pack.id == Blob.pack_id))
                    .where(Blob.container == container, Blob.blob_id.in_(chunk))
                    .where(Pack.state == LIVE)
                )
                found.update(rows)
            _add_refs(s, container, backup_id, found)
        return found

    def begin_pack(self, container: str, pack_id: str, backup_id: str) -> None:
        with self._db.transaction() as s:
            insert_ignore(
                s,
                Pack,
                [
                    {
                        "container": container,
                        "id": pack_id,
                        "state": PENDING,
                        "owner_backup_id": backup_id,
                    }
                ],
            )

    def commit_pack(
        self,
        container: str,
        pack_id: str,
        size: int,
        entries: Sequence[BlobLocation],
        backup_id: str,
    ) -> None:
        with self._db.transaction() as s:
            _lock(s, container)
            insert_ignore(
                s,
                Blob,
                [
                    {
                        "container": container,
                        "blob_id": e.blob_id,
                        "pack_id": pack_id,
                        "offset": e.offset,
                        "length": e.length,
                        "raw_length": e.raw_length,
                        "flags": e.flags,
                        "base_blob_id": e.base_id,
                    }
                    for e in entries
                ],
            )
            owns_a_blob = s.scalar(
                select(Blob.blob_id)
                .where(Blob.container == container, Blob.pack_id == pack_id)
                .limit(1)
            )
            # A pack whose every blob was stored meanwhile by another backup holds
            # nothing the index points to: it is dead from birth.
            s.execute(
                update(Pack)
                .where(Pack.container == container, Pack.id == pack_id)
                .values(
                    state=LIVE if owns_a_blob is not None else DEAD,
                    size=size,
                    owner_backup_id=None,
                    dead_at=None if owns_a_blob is not None else _now(),
                )
            )
            _add_refs(s, container, backup_id, {e.blob_id for e in entries})

    def locate(self, container: str, blob_ids: Sequence[bytes]) -> dict[bytes, BlobLocation]:
        out: dict[bytes, BlobLocation] = {}
        with self._db.transaction() as s:
            for chunk in _chunks(blob_ids):
                for b in s.scalars(
                    select(Blob).where(Blob.container == container, Blob.blob_id.in_(chunk))
                ):
                    out[b.blob_id] = _location(b)
        return out

    def pending_packs(self, container: str, backup_id: str) -> list[str]:
        with self._db.transaction() as s:
            return list(
                s.scalars(
                    select(Pack.id).where(
                        Pack.container == container,
                        Pack.state == PENDING,
                        Pack.owner_backup_id == backup_id,
                    )
                )
            )

    def abandoned_packs(
        self, container: str, owner_prefix: str, begun_before: datetime
    ) -> list[str]:
        with self._db.transaction() as s:
            return list(
                s.scalars(
                    select(Pack.id).where(
                        Pack.container == container,
                        Pack.state == PENDING,
                        Pack.owner_backup_id.startswith(owner_prefix, autoescape=True),
                        Pack.created_at < begun_before,
                    )
                )
            )

    def release(self, container: str, backup_id: str) -> list[str]:
        with self._db.transaction() as s:
            _lock(s, container)
            released = list(
                s.scalars(
                    select(BlobRef.blob_id).where(
                        BlobRef.container == container, BlobRef.backup_id == backup_id
                    )
                )
            )
            s.execute(
                delete(BlobRef).where(
                    BlobRef.container == container, BlobRef.backup_id == backup_id
                )
            )
            candidates: set[str] = set()
            for chunk in _chunks(released):
                candidates.update(
                    s.scalars(
                        select(Blob.pack_id).where(
                            Blob.container == container, Blob.blob_id.in_(chunk)
                        )
                    )
                )
            dead = [p for p in sorted(candidates) if not _has_live_blob(s, container, p)]
            _mark_dead(s, container, dead)
            return dead

    def dead_packs(self, container: str, *, dead_before: datetime | None = None) -> list[str]:
        query = select(Pack.id).where(Pack.container == container, Pack.state == DEAD)
        if dead_before is not None:
            query = query.where(or_(Pack.dead_at.is_(None), Pack.dead_at <= dead_before))
        with self._db.transaction() as s:
            return list(s.scalars(query.order_by(Pack.id)))

    def forget_packs(self, container: str, pack_ids: Sequence[str]) -> None:
        with self._db.transaction() as s:
            for chunk in _chunks(pack_ids):
                s.execute(delete(Blob).where(Blob.container == container, Blob.pack_id.in_(chunk)))
                s.execute(delete(Pack).where(Pack.container == container, Pack.id.in_(chunk)))

    def packs(self, container: str) -> list[PackInfo]:
        with self._db.transaction() as s:
            return [
                PackInfo(pack_id=p.id, state=p.state, size=p.size, dead_at=p.dead_at)
                for p in s.scalars(
                    select(Pack).where(Pack.container == container).order_by(Pack.id)
                )
            ]

    def blobs(self, container: str) -> list[BlobLocation]:
        with self._db.transaction() as s:
            return [
                _location(b)
                for b in s.scalars(
                    select(Blob).where(Blob.container == container).order_by(Blob.blob_id)
                )
            ]

    def references(self, container: str) -> dict[str, set[bytes]]:
        out: dict[str, set[bytes]] = {}
        with self._db.transaction() as s:
            for backup_id, blob_id in s.execute(
                select(BlobRef.backup_id, BlobRef.blob_id).where(BlobRef.container == container)
            ):
                out.setdefault(backup_id, set()).add(blob_id)
        return out

    def sweep(self, container: str) -> list[str]:
        with self._db.transaction() as s:
            _lock(s, container)
            live = list(
                s.scalars(select(Pack.id).where(Pack.container == container, Pack.state == LIVE))
            )
            referenced = set(
                s.scalars(
                    select(Blob.pack_id)
                    .distinct()
                    .join(
                        BlobRef,
                        (BlobRef.container == Blob.container) & (BlobRef.blob_id == Blob.blob_id),
                    )
                    .where(Blob.container == container)
                )
            )
            dead = sorted(set(live) - referenced)
            _mark_dead(s, container, dead)
            return dead

    def pack_usage(self, container: str) -> list[PackUsage]:
        with self._db.transaction() as s:
            live_blobs = (
                select(Blob.pack_id, Blob.length)
                .where(Blob.container == container)
                .where(
                    select(BlobRef.blob_id)
                    .where(BlobRef.container == container, BlobRef.blob_id == Blob.blob_id)
                    .exists()
                )
                .subquery()
            )
            totals = select(live_blobs.c.pack_id, func.sum(live_blobs.c.length)).group_by(
                live_blobs.c.pack_id
            )
            live_bytes: dict[str, int] = {
                pack_id: int(total or 0) for pack_id, total in s.execute(totals)
            }
            everything = (
                select(Blob.pack_id, func.count(), func.sum(Blob.length))
                .where(Blob.container == container)
                .group_by(Blob.pack_id)
            )
            indexed: dict[str, tuple[int, int]] = {
                pack_id: (int(count), int(total or 0))
                for pack_id, count, total in s.execute(everything)
            }
            return [
                PackUsage(
                    pack_id=p.id,
                    size=p.size,
                    live_bytes=live_bytes.get(p.id, 0),
                    blobs=indexed.get(p.id, (0, 0))[0],
                    blob_bytes=indexed.get(p.id, (0, 0))[1],
                )
                for p in s.scalars(
                    select(Pack)
                    .where(Pack.container == container, Pack.state == LIVE)
                    .order_by(Pack.id)
                )
            ]

    def begin_repack(
        self, container: str, pack_ids: Sequence[str]
    ) -> dict[str, list[BlobLocation]]:
        out: dict[str, list[BlobLocation]] = {}
        with self._db.transaction() as s:
            _lock(s, container)
            for chunk in _chunks(sorted(pack_ids)):
                live = list(
                    s.scalars(
                        select(Pack.id).where(
                            Pack.container == container, Pack.id.in_(chunk), Pack.state == LIVE
                        )
                    )
                )
                for pack_id in live:
                    out[pack_id] = []
                blobs = list(
                    s.scalars(
                        select(Blob).where(Blob.container == container, Blob.pack_id.in_(live))
                    )
                )
                referenced = _referenced(s, container, [b.blob_id for b in blobs])
                garbage = [b.blob_id for b in blobs if b.blob_id not in referenced]
                for ids in _chunks(garbage):
                    s.execute(
                        delete(Blob).where(Blob.container == container, Blob.blob_id.in_(ids))
                    )
                for b in blobs:
                    if b.blob_id in referenced:
                        out[b.pack_id].append(_location(b))
            empty = [p for p, blobs_left in out.items() if not blobs_left]
            _mark_dead(s, container, empty)
            for p in empty:
                del out[p]
            for locations in out.values():
                locations.sort(key=lambda loc: loc.offset)
        return out

    def commit_repack(
        self,
        container: str,
        pack_id: str,
        size: int,
        entries: Sequence[BlobLocation],
        old_pack_ids: Sequence[str],
    ) -> list[str]:
        old = set(old_pack_ids)
        with self._db.transaction() as s:
            _lock(s, container)
            row = s.get(Pack, (container, pack_id))
            if row is None or row.state != PENDING:
                return []  # same bytes as a pack that already had a row: keep the old packs
            current = {
                b.blob_id: b
                for chunk in _chunks([e.blob_id for e in entries])
                for b in s.scalars(
                    select(Blob).where(Blob.container == container, Blob.blob_id.in_(chunk))
                )
            }
            moved = 0
            for e in entries:
                b = current.get(e.blob_id)
                if b is None or b.pack_id not in old:
                    continue  # released meanwhile, or moved by another repack
                b.pack_id, b.offset, b.length = pack_id, e.offset, e.length
                b.raw_length, b.flags, b.base_blob_id = e.raw_length, e.flags, e.base_id
                moved += 1
            s.flush()
            row.state = LIVE if moved else DEAD
            row.size = size
            row.owner_backup_id = None
            row.dead_at = None if moved else _now()
            retired = [p for p in sorted(old) if not _has_live_blob(s, container, p)]
            _mark_dead(s, container, retired)
            return retired

    def rebuild(
        self,
        container: str,
        packs: Sequence[PackContents],
        references: Mapping[str, set[bytes]],
    ) -> None:
        with self._db.transaction() as s:
            _lock(s, container)
            pending = set(
                s.scalars(select(Pack.id).where(Pack.container == container, Pack.state == PENDING))
            )
            s.execute(delete(BlobRef).where(BlobRef.container == container))
            s.execute(delete(Blob).where(Blob.container == container))
            s.execute(delete(Pack).where(Pack.container == container, Pack.state != PENDING))
            kept = [p for p in packs if p.pack_id not in pending]
            pack_rows: list[dict[str, Any]] = [
                {"container": container, "id": p.pack_id, "state": LIVE, "size": p.size}
                for p in kept
            ]
            for rows in _chunks(pack_rows):
                insert_ignore(s, Pack, rows)
            blob_rows: dict[bytes, dict[str, Any]] = {}
            for p in kept:
                for e in p.entries:
                    blob_rows.setdefault(e.blob_id, _blob_row(container, p.pack_id, e))
            for rows in _chunks(list(blob_rows.values())):
                insert_ignore(s, Blob, rows)
            for backup_id in sorted(references):
                _add_refs(s, container, backup_id, references[backup_id])
            referenced = set(
                s.scalars(
                    select(Blob.pack_id)
                    .distinct()
                    .join(
                        BlobRef,
                        (BlobRef.container == Blob.container) & (BlobRef.blob_id == Blob.blob_id),
                    )
                    .where(Blob.container == container)
                )
            )
            _mark_dead(s, container, sorted({p.pack_id for p in kept} - referenced))


def _lock(s: Session, container: str) -> None:
    insert_ignore(s, Container, [{"name": container}])
    s.execute(select(Container.name).where(Container.name == container).with_for_update())


def _add_refs(s: Session, container: str, backup_id: str, blob_ids: Iterable[bytes]) -> None:
    """Reference the blobs for the backup, and the bases of the deltas among them."""
    rows: list[dict[str, Any]] = [
        {"backup_id": backup_id, "container": container, "blob_id": b}
        for b in sorted(_with_bases(s, container, set(blob_ids)))
    ]
    for i in range(0, len(rows), _BATCH):
        insert_ignore(s, BlobRef, rows[i : i + _BATCH])


def _has_live_blob(s: Session, container: str, pack_id: str) -> bool:
    ref = s.scalar(
        select(BlobRef.blob_id)
        .join(Blob, (Blob.container == BlobRef.container) & (Blob.blob_id == BlobRef.blob_id))
        .where(Blob.container == container, Blob.pack_id == pack_id)
        .limit(1)
    )
    return ref is not None


def _with_bases(s: Session, container: str, blob_ids: set[bytes]) -> set[bytes]:
    """`blob_ids` and, transitively, the bases of the indexed deltas among them."""
    out = set(blob_ids)
    frontier = sorted(blob_ids)
    while frontier:
        bases: set[bytes] = set()
        for chunk in _chunks(frontier):
            bases.update(
                b
                for b in s.scalars(
                    select(Blob.base_blob_id).where(
                        Blob.container == container,
                        Blob.blob_id.in_(chunk),
                        Blob.base_blob_id.is_not(None),
                    )
                )
                if b is not None
            )
        frontier = sorted(bases - out)
        out.update(frontier)
    return out


def _referenced(s: Session, container: str, blob_ids: Sequence[bytes]) -> set[bytes]:
    found: set[bytes] = set()
    for chunk in _chunks(blob_ids):
        found.update(
            s.scalars(
                select(BlobRef.blob_id)
                .distinct()
                .where(BlobRef.container == container, BlobRef.blob_id.in_(chunk))
            )
        )
    return found


def _mark_dead(s: Session, container: str, pack_ids: Sequence[str]) -> None:
    """Mark the packs dead as of now and drop their blobs from the index, and with
    them every delta left without its base: such a delta has no reference (a
    reference on a delta holds its base too), and reusing it could not restore."""
    now = _now()
    for ids in _chunks(pack_ids):
        s.execute(
            update(Pack)
            .where(Pack.container == container, Pack.id.in_(ids))
            .values(state=DEAD, dead_at=now, owner_backup_id=None)
        )
        s.execute(delete(Blob).where(Blob.container == container, Blob.pack_id.in_(ids)))
    if pack_ids:
        _drop_orphan_deltas(s, container)


def _drop_orphan_deltas(s: Session, container: str) -> None:
    base = aliased(Blob)
    indexed = select(base.blob_id).where(base.container == container)
    while True:
        orphans = list(
            s.scalars(
                select(Blob.blob_id).where(
                    Blob.container == container,
                    Blob.base_blob_id.is_not(None),
                    Blob.base_blob_id.not_in(indexed),
                )
            )
        )
        if not orphans:
            return
        for chunk in _chunks(orphans):
            s.execute(delete(Blob).where(Blob.container == container, Blob.blob_id.in_(chunk)))


def _location(b: Blob) -> BlobLocation:
    return BlobLocation(
        blob_id=b.blob_id,
        pack_id=b.pack_id,
        offset=b.offset,
        length=b.length,
        raw_length=b.raw_length,
        flags=b.flags,
        base_id=b.base_blob_id,
    )


def _blob_row(container: str, pack_id: str, e: BlobLocation) -> dict[str, Any]:
    return {
        "container": container,
        "blob_id": e.blob_id,
        "pack_id": pack_id,
        "offset": e.offset,
        "length": e.length,
        "raw_length": e.raw_length,
        "flags": e.flags,
        "base_blob_id": e.base_id,
    }


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[_T]) -> Iterable[Sequence[_T]]:
    for i in range(0, len(items), _BATCH):
        yield items[i : i + _BATCH]
