"""The repository index in the database: implements `ashbox.repository.index.Index`.

Each method is one transaction. Those that decide liveness (`reuse`,
`commit_pack`, `release`, `sweep`, `begin_repack`, `commit_repack`, `rebuild`)
first lock the container's row, so a blob can never be reused by one backup
while another backup's delete or the garbage collector declares its pack dead
(DESIGN.md §3). On SQLite, BEGIN IMMEDIATE gives the same order.

A reference to a page delta brings references to its bases with it
(`index_sql.add_refs`), so "referenced" alone decides whether a blob is live.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import delete, or_, select, update

from ashbox.db.engine import Database
from ashbox.db.index_maintenance import IndexMaintenance
from ashbox.db.index_sql import (
    add_refs,
    blob_row,
    chunks,
    has_live_blob,
    location,
    lock,
    mark_dead,
    utc_now,
)
from ashbox.db.models import Blob, BlobRef, Container, Pack
from ashbox.db.upsert import insert_ignore
from ashbox.repository.index import (
    DEAD,
    LIVE,
    PENDING,
    BlobLocation,
)

_BATCH = 500
_T = TypeVar("_T")

__all__ = ["DEAD", "LIVE", "PENDING", "DbIndex"]


class DbIndex(IndexMaintenance):
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
            lock(s, container)
            for chunk in chunks(blob_ids):
                rows = s.scalars(
                    select(Blob.blob_id)
                    .join(Pack, (Pack.container == Blob.container) & (Pack.id == Blob.pack_id))
                    .where(Blob.container == container, Blob.blob_id.in_(chunk))
                    .where(Pack.state == LIVE)
                )
                found.update(rows)
            add_refs(s, container, backup_id, found)
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
            lock(s, container)
            insert_ignore(
                s,
                Blob,
                [blob_row(container, pack_id, e) for e in entries],
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
                    dead_at=None if owns_a_blob is not None else utc_now(),
                )
            )
            add_refs(s, container, backup_id, {e.blob_id for e in entries})

    def locate(self, container: str, blob_ids: Sequence[bytes]) -> dict[bytes, BlobLocation]:
        out: dict[bytes, BlobLocation] = {}
        with self._db.transaction() as s:
            for chunk in chunks(blob_ids):
                for b in s.scalars(
                    select(Blob).where(Blob.container == container, Blob.blob_id.in_(chunk))
                ):
                    out[b.blob_id] = location(b)
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
            lock(s, container)
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
            for chunk in chunks(released):
                candidates.update(
                    s.scalars(
                        select(Blob.pack_id).where(
                            Blob.container == container, Blob.blob_id.in_(chunk)
                        )
                    )
                )
            dead = [p for p in sorted(candidates) if not has_live_blob(s, container, p)]
            mark_dead(s, container, dead)
            return dead

    def dead_packs(self, container: str, *, dead_before: datetime | None = None) -> list[str]:
        query = select(Pack.id).where(Pack.container == container, Pack.state == DEAD)
        if dead_before is not None:
            query = query.where(or_(Pack.dead_at.is_(None), Pack.dead_at <= dead_before))
        with self._db.transaction() as s:
            return list(s.scalars(query.order_by(Pack.id)))

    def forget_packs(self, container: str, pack_ids: Sequence[str]) -> None:
        with self._db.transaction() as s:
            for chunk in chunks(pack_ids):
                s.execute(delete(Blob).where(Blob.container == container, Blob.pack_id.in_(chunk)))
                s.execute(delete(Pack).where(Pack.container == container, Pack.id.in_(chunk)))
