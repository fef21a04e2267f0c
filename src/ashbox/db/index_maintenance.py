"""The database index's maintenance side: listing, sweep, repack and rebuild for
`ashbox repo check|stats|gc|rebuild-index` (docs/format.md §11). `DbIndex` inherits it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, select

from ashbox.db.engine import Database
from ashbox.db.index_sql import (
    add_refs,
    blob_row,
    chunks,
    has_live_blob,
    location,
    lock,
    mark_dead,
    packs_with_referenced_blobs,
    referenced_blobs,
    utc_now,
)
from ashbox.db.models import Blob, BlobRef, Pack
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


class IndexMaintenance:
    _db: Database

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
                location(b)
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
            lock(s, container)
            live = list(
                s.scalars(select(Pack.id).where(Pack.container == container, Pack.state == LIVE))
            )
            referenced = packs_with_referenced_blobs(s, container)
            dead = sorted(set(live) - referenced)
            mark_dead(s, container, dead)
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
            lock(s, container)
            for chunk in chunks(sorted(pack_ids)):
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
                referenced = referenced_blobs(s, container, [b.blob_id for b in blobs])
                garbage = [b.blob_id for b in blobs if b.blob_id not in referenced]
                for ids in chunks(garbage):
                    s.execute(
                        delete(Blob).where(Blob.container == container, Blob.blob_id.in_(ids))
                    )
                for b in blobs:
                    if b.blob_id in referenced:
                        out[b.pack_id].append(location(b))
            empty = [p for p, blobs_left in out.items() if not blobs_left]
            mark_dead(s, container, empty)
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
            lock(s, container)
            row = s.get(Pack, (container, pack_id))
            if row is None or row.state != PENDING:
                return []  # same bytes as a pack that already had a row: keep the old packs
            current = {
                b.blob_id: b
                for chunk in chunks([e.blob_id for e in entries])
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
            row.dead_at = None if moved else utc_now()
            retired = [p for p in sorted(old) if not has_live_blob(s, container, p)]
            mark_dead(s, container, retired)
            return retired

    def rebuild(
        self,
        container: str,
        packs: Sequence[PackContents],
        references: Mapping[str, set[bytes]],
    ) -> None:
        with self._db.transaction() as s:
            lock(s, container)
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
            for rows in chunks(pack_rows):
                insert_ignore(s, Pack, rows)
            blob_rows: dict[bytes, dict[str, Any]] = {}
            for p in kept:
                for e in p.entries:
                    blob_rows.setdefault(e.blob_id, blob_row(container, p.pack_id, e))
            for rows in chunks(list(blob_rows.values())):
                insert_ignore(s, Blob, rows)
            for backup_id in sorted(references):
                add_refs(s, container, backup_id, references[backup_id])
            referenced = packs_with_referenced_blobs(s, container)
            mark_dead(s, container, sorted({p.pack_id for p in kept} - referenced))
