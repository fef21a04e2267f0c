"""The repository index in the database: implements `ashbox.repository.index.Index`.

Each method is one transaction, except `locate`, which only reads, and
`begin_pack`, one insert: they run without BEGIN (`Database.autocommit()`),
so on SQLite a `locate` does not wait for a writer. Those that decide liveness (`reuse`,
`commit_pack`, `release`, `sweep`, `begin_repack`, `commit_repack`, `rebuild`)
first lock the container's row (inserting the row first only when it is
missing), so a blob can never be reused by one backup while another backup's
delete or the garbage collector declares its pack dead (DESIGN.md §3). The
calls that only add blobs and references (`reuse`, `commit_pack`) take it FOR
SHARE, so the backups of many workers do not wait for each other; those that
may declare packs dead take it FOR UPDATE, which waits for every sharer and is
waited for (docs/scale.md measures why). On SQLite, BEGIN IMMEDIATE gives the
same order.

The backup calls `reuse`, `locate`, `begin_pack` and `commit_pack` for every
few blocks: they run prebuilt Core statements (`index_sql`) on a bare
connection, no ORM session (bench/index_calls.py measures them).

A reference to a page delta brings references to its bases with it
(`index_sql.add_refs`), so "referenced" alone decides whether a blob is live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update

from ashbox.db.engine import Database
from ashbox.db.index_maintenance import IndexMaintenance
from ashbox.db.index_sql import (
    BLOBS,
    CONTAINERS,
    PACKS,
    REFS,
    Found,
    add_refs,
    blob_row,
    chunks,
    find,
    has_blob,
    has_live_blob,
    indexed,
    insert_rows,
    lock,
    mark_dead,
    referenced_by,
    settle_pack,
    utc_now,
    with_bases,
)
from ashbox.db.index_sql import locate as locate_blobs
from ashbox.db.upsert import insert_ignore, insert_one_ignore
from ashbox.errors import PackAbandoned
from ashbox.repository.index import (
    ABANDONED,
    DEAD,
    LIVE,
    PENDING,
    BlobLocation,
    PendingPack,
)

__all__ = ["ABANDONED", "DEAD", "LIVE", "PENDING", "DbIndex"]


class DbIndex(IndexMaintenance):
    def __init__(self, db: Database) -> None:
        self._db = db

    def ensure_container(self, container: str) -> None:
        with self._db.connection() as conn:
            insert_ignore(conn, CONTAINERS, [{"name": container}])

    def containers(self) -> list[str]:
        """Every container the index knows (not part of the protocol: for the worker's gc)."""
        with self._db.connection() as conn:
            return list(conn.scalars(select(CONTAINERS.c.name).order_by(CONTAINERS.c.name)))

    def reuse(self, container: str, backup_id: str, blob_ids: Sequence[bytes]) -> set[bytes]:
        # Most blocks of a backup are new: a read without the lock finds which ids
        # are indexed at all, and only those are checked and referenced under it.
        # A blob indexed meanwhile by another backup is stored twice, harmlessly
        # (commit_pack keeps the first copy).
        if not blob_ids:
            return set()
        with self._db.autocommit() as conn:
            known = indexed(conn, container, blob_ids)
        if not known:
            return set()
        with self._db.connection() as conn:
            lock(conn, container, shared=True)
            found = find(conn, container, known, live=True)
            add_refs(conn, container, backup_id, found.packs.keys(), bases=found.bases)
        return set(found.packs)

    def begin_pack(self, container: str, pack_id: str, backup_id: str) -> bool:
        row = {
            "container": container,
            "id": pack_id,
            "state": PENDING,
            "owner_backup_id": backup_id,
        }
        with self._db.autocommit() as conn:
            return insert_one_ignore(conn, PACKS, row)

    def commit_pack(
        self,
        container: str,
        pack_id: str,
        size: int,
        entries: Sequence[BlobLocation],
        backup_id: str,
    ) -> None:
        # In blob id order: two commits of the same new blobs, which share the lock,
        # wait for each other's rows in one order instead of deadlocking.
        rows = sorted((blob_row(container, pack_id, e) for e in entries), key=_blob_id)
        with self._db.connection() as conn:
            lock(conn, container, shared=True)
            if insert_rows(conn, BLOBS, rows) == len(rows):
                # Each entry is indexed here, as the pack says (the usual case).
                packs = {e.blob_id: pack_id for e in entries}
                found = Found(packs, {e.blob_id: e.base_id for e in entries})
            else:
                # Some were indexed already: each where it was first stored.
                found = find(conn, container, [e.blob_id for e in entries])
            owns_a_blob = pack_id in found.packs.values() or has_blob(conn, container, pack_id)
            # A pack whose every blob was stored meanwhile by another backup holds
            # nothing the index points to: it is dead from birth. One abandoned
            # meanwhile (its writer had lost the task) is not committed at all.
            if not settle_pack(conn, container, pack_id, size=size, live=owns_a_blob):
                raise PackAbandoned(pack_id)
            add_refs(conn, container, backup_id, found.packs.keys(), bases=found.bases)

    def locate(self, container: str, blob_ids: Sequence[bytes]) -> dict[bytes, BlobLocation]:
        if not blob_ids:
            return {}
        with self._db.autocommit() as conn:
            return {loc.blob_id: loc for loc in locate_blobs(conn, container, blob_ids)}

    def pending_packs(self, container: str, backup_id: str) -> list[str]:
        with self._db.connection() as conn:
            return list(
                conn.scalars(
                    select(PACKS.c.id).where(
                        PACKS.c.container == container,
                        PACKS.c.state == PENDING,
                        PACKS.c.owner_backup_id == backup_id,
                    )
                )
            )

    def pending(self, container: str) -> list[PendingPack]:
        query = select(PACKS.c.id, PACKS.c.owner_backup_id, PACKS.c.created_at).where(
            PACKS.c.container == container, PACKS.c.state == PENDING
        )
        with self._db.connection() as conn:
            return [
                PendingPack(pack_id, owner or "", begun_at)
                for pack_id, owner, begun_at in conn.execute(query.order_by(PACKS.c.id))
            ]

    def abandon_packs(self, container: str, pack_ids: Sequence[str]) -> list[str]:
        if not pack_ids:
            return []  # every backup's start asks: most have nothing to abandon
        abandoned: list[str] = []
        with self._db.connection() as conn:
            for chunk in chunks(sorted(pack_ids)):
                abandoned += conn.scalars(
                    update(PACKS)
                    .where(
                        PACKS.c.container == container,
                        PACKS.c.id.in_(chunk),
                        PACKS.c.state == PENDING,
                    )
                    .values(state=ABANDONED, dead_at=utc_now(), owner_backup_id=None)
                    .returning(PACKS.c.id)
                )
        return sorted(abandoned)

    def keep_references(
        self, container: str, backup_id: str, blob_ids: Sequence[bytes]
    ) -> list[str]:
        mine = (REFS.c.container == container) & (REFS.c.backup_id == backup_id)
        # Only this backup changes its references, and the blobs it references
        # stay: an unlocked read tells whether any is to go. Usually none is, and
        # the exclusive lock, which waits for every sharer, is not taken at all.
        with self._db.autocommit() as conn:
            needed = with_bases(conn, container, set(blob_ids))
            if not referenced_by(conn, container, backup_id) - needed:
                return []
        with self._db.connection() as conn:
            lock(conn, container)
            needed = with_bases(conn, container, set(blob_ids))
            extra = sorted(referenced_by(conn, container, backup_id) - needed)
            for chunk in chunks(extra):
                conn.execute(delete(REFS).where(mine, REFS.c.blob_id.in_(chunk)))
            candidates = set(find(conn, container, extra).packs.values())
            dead = [p for p in sorted(candidates) if not has_live_blob(conn, container, p)]
            mark_dead(conn, container, dead)
            return dead

    def release(self, container: str, backup_id: str) -> list[str]:
        mine = (REFS.c.container == container) & (REFS.c.backup_id == backup_id)
        with self._db.connection() as conn:
            lock(conn, container)
            released = list(conn.scalars(select(REFS.c.blob_id).where(mine)))
            conn.execute(delete(REFS).where(mine))
            candidates = set(find(conn, container, released).packs.values())
            dead = [p for p in sorted(candidates) if not has_live_blob(conn, container, p)]
            mark_dead(conn, container, dead)
            return dead

    def bury(self, container: str, pack_ids: Sequence[str]) -> None:
        if not pack_ids:
            return
        with self._db.connection() as conn:
            for chunk in chunks(pack_ids):
                conn.execute(
                    update(PACKS)
                    .where(
                        PACKS.c.container == container,
                        PACKS.c.id.in_(chunk),
                        PACKS.c.state == ABANDONED,
                    )
                    .values(state=DEAD, dead_at=utc_now())
                )

    def dead_packs(
        self, container: str, *, dead_before: datetime | None = None, state: str = DEAD
    ) -> list[str]:
        query = select(PACKS.c.id).where(PACKS.c.container == container, PACKS.c.state == state)
        if dead_before is not None:
            query = query.where(or_(PACKS.c.dead_at.is_(None), PACKS.c.dead_at <= dead_before))
        with self._db.connection() as conn:
            return list(conn.scalars(query.order_by(PACKS.c.id)))

    def forget_packs(self, container: str, pack_ids: Sequence[str]) -> None:
        with self._db.connection() as conn:
            for chunk in chunks(pack_ids):
                conn.execute(
                    delete(BLOBS).where(BLOBS.c.container == container, BLOBS.c.pack_id.in_(chunk))
                )
                conn.execute(
                    delete(PACKS).where(PACKS.c.container == container, PACKS.c.id.in_(chunk))
                )


def _blob_id(row: Mapping[str, Any]) -> bytes:
    return bytes(row["blob_id"])
