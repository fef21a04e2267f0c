"""The repository index in the database: implements `ashbox.repository.index.Index`.

Each method is one transaction. Those that decide liveness (`reuse`,
`commit_pack`, `release`) first lock the container's row, so a blob can never
be reused by one backup while another backup's delete declares its pack dead
(DESIGN.md §3). On SQLite, BEGIN IMMEDIATE gives the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ashbox.db.engine import Database
from ashbox.db.models import Blob, BlobRef, Container, Pack
from ashbox.db.upsert import insert_ignore
from ashbox.repository.index import BlobLocation

_BATCH = 500
_T = TypeVar("_T")

PENDING = "pending"
LIVE = "live"
DEAD = "dead"


class DbIndex:
    def __init__(self, db: Database) -> None:
        self._db = db

    def ensure_container(self, container: str) -> None:
        with self._db.transaction() as s:
            insert_ignore(s, Container, [{"name": container}])

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
                    out[b.blob_id] = BlobLocation(
                        blob_id=b.blob_id,
                        pack_id=b.pack_id,
                        offset=b.offset,
                        length=b.length,
                        raw_length=b.raw_length,
                        flags=b.flags,
                        base_id=b.base_blob_id,
                    )
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
            for ids in _chunks(dead):
                s.execute(
                    update(Pack)
                    .where(Pack.container == container, Pack.id.in_(ids))
                    .values(state=DEAD)
                )
                s.execute(delete(Blob).where(Blob.container == container, Blob.pack_id.in_(ids)))
            return dead

    def dead_packs(self, container: str) -> list[str]:
        with self._db.transaction() as s:
            return list(
                s.scalars(select(Pack.id).where(Pack.container == container, Pack.state == DEAD))
            )

    def forget_packs(self, container: str, pack_ids: Sequence[str]) -> None:
        with self._db.transaction() as s:
            for chunk in _chunks(pack_ids):
                s.execute(delete(Blob).where(Blob.container == container, Blob.pack_id.in_(chunk)))
                s.execute(delete(Pack).where(Pack.container == container, Pack.id.in_(chunk)))


def _lock(s: Session, container: str) -> None:
    insert_ignore(s, Container, [{"name": container}])
    s.execute(select(Container.name).where(Container.name == container).with_for_update())


def _add_refs(s: Session, container: str, backup_id: str, blob_ids: Iterable[bytes]) -> None:
    rows: list[dict[str, Any]] = [
        {"backup_id": backup_id, "container": container, "blob_id": b} for b in blob_ids
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


def _chunks(items: Sequence[_T]) -> Iterable[Sequence[_T]]:
    for i in range(0, len(items), _BATCH):
        yield items[i : i + _BATCH]
