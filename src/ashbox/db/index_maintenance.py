"""The database index's maintenance side: listing, sweep, repack and rebuild for
`ashbox repo check|stats|gc|rebuild-index` (docs/format.md §11). `DbIndex` inherits it.

`pack_blobs` and `usage` only read, without the write lock (on SQLite): `repo
check` asks for one pack's rows at a time and `repo stats` gets sums, so
neither holds a row per blob of the container."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence

from sqlalchemy import bindparam, delete, func, select, update

from ashbox.db.engine import Database
from ashbox.db.index_rebuild import rebuild_rows
from ashbox.db.index_sql import (
    BLOBS,
    LOCATION,
    PACK_BLOBS,
    PACKS,
    REFERENCED_TOTALS,
    REFERENCING_BACKUPS,
    REFS,
    UNIQUE_SIZES,
    chunks,
    find,
    has_live_blob,
    location,
    lock,
    mark_dead,
    packs_with_referenced_blobs,
    referenced_blobs,
    settle_pack,
)
from ashbox.repository.index import (
    LIVE,
    PENDING,
    BlobLocation,
    ContainerUsage,
    PackContents,
    PackInfo,
    PackUsage,
)

# Point a blob at its copy in a new pack.
_MOVE_BLOB = (
    update(BLOBS)
    .where(BLOBS.c.container == bindparam("b_container"), BLOBS.c.blob_id == bindparam("b_id"))
    .values(
        pack_id=bindparam("b_pack_id"),
        offset=bindparam("b_offset"),
        length=bindparam("b_length"),
        raw_length=bindparam("b_raw_length"),
        flags=bindparam("b_flags"),
        base_blob_id=bindparam("b_base_id"),
    )
)


class IndexMaintenance:
    _db: Database

    def packs(self, container: str) -> list[PackInfo]:
        query = (
            select(PACKS.c.id, PACKS.c.state, PACKS.c.size, PACKS.c.dead_at)
            .where(PACKS.c.container == container)
            .order_by(PACKS.c.id)
        )
        with self._db.connection() as conn:
            return [PackInfo(*row) for row in conn.execute(query)]

    def blobs(self, container: str) -> list[BlobLocation]:
        query = select(*LOCATION).where(BLOBS.c.container == container).order_by(BLOBS.c.blob_id)
        with self._db.connection() as conn:
            return [location(row) for row in conn.execute(query)]

    def pack_blobs(self, container: str, pack_id: str) -> list[BlobLocation]:
        with self._db.autocommit() as conn:
            params = {"container": container, "pack_id": pack_id}
            rows = [location(row) for row in conn.execute(PACK_BLOBS, params)]
        return sorted(rows, key=lambda loc: loc.blob_id)

    def references(self, container: str) -> dict[str, set[bytes]]:
        out: dict[str, set[bytes]] = {}
        query = select(REFS.c.backup_id, REFS.c.blob_id).where(REFS.c.container == container)
        with self._db.connection() as conn:
            for backup_id, blob_id in conn.execute(query):
                out.setdefault(backup_id, set()).add(blob_id)
        return out

    def usage(self, container: str) -> ContainerUsage:
        params = {"container": container}
        # One read transaction (on SQLite a snapshot that takes no write lock).
        with self._db.reading() as session:
            blobs, raw_size, blob_size = session.execute(REFERENCED_TOTALS, params).one()
            unique = {b: 0 for b in session.scalars(REFERENCING_BACKUPS, params)}
            for backup_id, size in session.execute(UNIQUE_SIZES, params):
                unique[backup_id] = int(size)
        return ContainerUsage(
            blobs=int(blobs),
            raw_size=int(raw_size),
            blob_size=int(blob_size),
            unique_sizes=unique,
        )

    def sweep(self, container: str) -> list[str]:
        with self._db.connection() as conn:
            lock(conn, container)
            live = list(
                conn.scalars(
                    select(PACKS.c.id).where(PACKS.c.container == container, PACKS.c.state == LIVE)
                )
            )
            referenced = packs_with_referenced_blobs(conn, container)
            dead = sorted(set(live) - referenced)
            mark_dead(conn, container, dead)
            return dead

    def pack_usage(self, container: str) -> list[PackUsage]:
        live_blobs = (
            select(BLOBS.c.pack_id, BLOBS.c.length)
            .where(BLOBS.c.container == container)
            .where(
                select(REFS.c.blob_id)
                .where(REFS.c.container == container, REFS.c.blob_id == BLOBS.c.blob_id)
                .exists()
            )
            .subquery()
        )
        totals = select(live_blobs.c.pack_id, func.sum(live_blobs.c.length)).group_by(
            live_blobs.c.pack_id
        )
        everything = (
            select(BLOBS.c.pack_id, func.count(), func.sum(BLOBS.c.length))
            .where(BLOBS.c.container == container)
            .group_by(BLOBS.c.pack_id)
        )
        live_packs = (
            select(PACKS.c.id, PACKS.c.size)
            .where(PACKS.c.container == container, PACKS.c.state == LIVE)
            .order_by(PACKS.c.id)
        )
        with self._db.connection() as conn:
            live_bytes: dict[str, int] = {
                pack_id: int(total or 0) for pack_id, total in conn.execute(totals)
            }
            indexed: dict[str, tuple[int, int]] = {
                pack_id: (int(count), int(total or 0))
                for pack_id, count, total in conn.execute(everything)
            }
            return [
                PackUsage(
                    pack_id=pack_id,
                    size=size,
                    live_bytes=live_bytes.get(pack_id, 0),
                    blobs=indexed.get(pack_id, (0, 0))[0],
                    blob_bytes=indexed.get(pack_id, (0, 0))[1],
                )
                for pack_id, size in conn.execute(live_packs)
            ]

    def begin_repack(
        self, container: str, pack_ids: Sequence[str]
    ) -> dict[str, list[BlobLocation]]:
        out: dict[str, list[BlobLocation]] = {}
        with self._db.connection() as conn:
            lock(conn, container)
            for chunk in chunks(sorted(pack_ids)):
                live = list(
                    conn.scalars(
                        select(PACKS.c.id).where(
                            PACKS.c.container == container,
                            PACKS.c.id.in_(chunk),
                            PACKS.c.state == LIVE,
                        )
                    )
                )
                for pack_id in live:
                    out[pack_id] = []
                blobs = [
                    location(row)
                    for row in conn.execute(
                        select(*LOCATION).where(
                            BLOBS.c.container == container, BLOBS.c.pack_id.in_(live)
                        )
                    )
                ]
                referenced = referenced_blobs(conn, container, [b.blob_id for b in blobs])
                garbage = [b.blob_id for b in blobs if b.blob_id not in referenced]
                for ids in chunks(garbage):
                    conn.execute(
                        delete(BLOBS).where(
                            BLOBS.c.container == container, BLOBS.c.blob_id.in_(ids)
                        )
                    )
                for b in blobs:
                    if b.blob_id in referenced:
                        out[b.pack_id].append(b)
            empty = [p for p, blobs_left in out.items() if not blobs_left]
            mark_dead(conn, container, empty)
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
        state = select(PACKS.c.state).where(PACKS.c.container == container, PACKS.c.id == pack_id)
        with self._db.connection() as conn:
            lock(conn, container)
            if conn.scalar(state) != PENDING:
                return []  # same bytes as a pack that already had a row: keep the old packs
            current = find(conn, container, [e.blob_id for e in entries]).packs
            # Not those released meanwhile, nor those moved by another repack.
            moves = [
                {
                    "b_container": container,
                    "b_id": e.blob_id,
                    "b_pack_id": pack_id,
                    "b_offset": e.offset,
                    "b_length": e.length,
                    "b_raw_length": e.raw_length,
                    "b_flags": e.flags,
                    "b_base_id": e.base_id,
                }
                for e in entries
                if current.get(e.blob_id) in old
            ]
            if moves:
                conn.execute(_MOVE_BLOB, moves)
            settle_pack(conn, container, pack_id, size=size, live=bool(moves))
            retired = [p for p in sorted(old) if not has_live_blob(conn, container, p)]
            mark_dead(conn, container, retired)
            return retired

    def rebuild(
        self,
        container: str,
        packs: Iterable[PackContents],
        references: Iterable[tuple[str, Collection[bytes]]],
        keep: Callable[[str], bool],
    ) -> int:
        return rebuild_rows(self._db, container, packs, references, keep)
