"""SQL building blocks of the database index, shared by `index` and `index_maintenance`.

Callers own the transaction. Liveness rules: docs/format.md §7.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, aliased

from ashbox.db.models import Blob, BlobRef, Container, Pack
from ashbox.db.upsert import insert_ignore
from ashbox.repository.index import DEAD, BlobLocation

_BATCH = 500
_T = TypeVar("_T")


def lock(s: Session, container: str) -> None:
    insert_ignore(s, Container, [{"name": container}])
    s.execute(select(Container.name).where(Container.name == container).with_for_update())


def add_refs(s: Session, container: str, backup_id: str, blob_ids: Iterable[bytes]) -> None:
    """Reference the blobs for the backup, and the bases of the deltas among them."""
    rows: list[dict[str, Any]] = [
        {"backup_id": backup_id, "container": container, "blob_id": b}
        for b in sorted(with_bases(s, container, set(blob_ids)))
    ]
    for i in range(0, len(rows), _BATCH):
        insert_ignore(s, BlobRef, rows[i : i + _BATCH])


def has_live_blob(s: Session, container: str, pack_id: str) -> bool:
    ref = s.scalar(
        select(BlobRef.blob_id)
        .join(Blob, (Blob.container == BlobRef.container) & (Blob.blob_id == BlobRef.blob_id))
        .where(Blob.container == container, Blob.pack_id == pack_id)
        .limit(1)
    )
    return ref is not None


def with_bases(s: Session, container: str, blob_ids: set[bytes]) -> set[bytes]:
    """`blob_ids` and, transitively, the bases of the indexed deltas among them."""
    out = set(blob_ids)
    frontier = sorted(blob_ids)
    while frontier:
        bases: set[bytes] = set()
        for chunk in chunks(frontier):
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


def referenced_blobs(s: Session, container: str, blob_ids: Sequence[bytes]) -> set[bytes]:
    found: set[bytes] = set()
    for chunk in chunks(blob_ids):
        found.update(
            s.scalars(
                select(BlobRef.blob_id)
                .distinct()
                .where(BlobRef.container == container, BlobRef.blob_id.in_(chunk))
            )
        )
    return found


def mark_dead(s: Session, container: str, pack_ids: Sequence[str]) -> None:
    """Mark the packs dead as of now and drop their blobs from the index, and with
    them every delta left without its base: such a delta has no reference (a
    reference on a delta holds its base too), and reusing it could not restore."""
    now = utc_now()
    for ids in chunks(pack_ids):
        s.execute(
            update(Pack)
            .where(Pack.container == container, Pack.id.in_(ids))
            .values(state=DEAD, dead_at=now, owner_backup_id=None)
        )
        s.execute(delete(Blob).where(Blob.container == container, Blob.pack_id.in_(ids)))
    if pack_ids:
        drop_orphan_deltas(s, container)


def drop_orphan_deltas(s: Session, container: str) -> None:
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
        for chunk in chunks(orphans):
            s.execute(delete(Blob).where(Blob.container == container, Blob.blob_id.in_(chunk)))


def location(b: Blob) -> BlobLocation:
    return BlobLocation(
        blob_id=b.blob_id,
        pack_id=b.pack_id,
        offset=b.offset,
        length=b.length,
        raw_length=b.raw_length,
        flags=b.flags,
        base_id=b.base_blob_id,
    )


def blob_row(container: str, pack_id: str, e: BlobLocation) -> dict[str, Any]:
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


def utc_now() -> datetime:
    return datetime.now(UTC)


def chunks(items: Sequence[_T]) -> Iterable[Sequence[_T]]:
    for i in range(0, len(items), _BATCH):
        yield items[i : i + _BATCH]


def packs_with_referenced_blobs(s: Session, container: str) -> set[str]:
    """Packs holding at least one indexed blob that some backup references."""
    return set(
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
