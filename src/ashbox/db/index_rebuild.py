"""The index rebuilt from what the store says: `ashbox repo rebuild-index`.

The packs' trailers and the manifests come in one at a time and are staged in
temporary tables of the rebuild's own connection, in short transactions, so
the rebuild holds one pack's entries and one manifest's ids, not a row per
blob or per reference of the repository, and the service's writers wait at
most one staging batch. Then one transaction swaps the container's rows for
the staged ones, in SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    delete,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ashbox.db.engine import Database
from ashbox.db.index_sql import (
    BLOBS,
    PACKS,
    REFS,
    chunks,
    lock,
    mark_dead,
    packs_with_referenced_blobs,
)
from ashbox.db.upsert import insert_ignore
from ashbox.repository.index import LIVE, PENDING, PackContents

_BATCH_ROWS = 20_000  # staged rows per transaction
_MAX_BASE_DEPTH = 16  # rounds of "reference the bases too"; chains are ≤ 3 deep

_STAGING = MetaData()
_STAGED_BLOBS = Table(
    "ashbox_rebuild_blobs",
    _STAGING,
    Column("blob_id", LargeBinary(32), nullable=False),
    Column("pack_id", String(64), nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("length", Integer, nullable=False),
    Column("raw_length", Integer, nullable=False),
    Column("flags", Integer, nullable=False),
    Column("base_blob_id", LargeBinary(32)),
    prefixes=["TEMPORARY"],
)
_STAGED_REFS = Table(
    "ashbox_rebuild_refs",
    _STAGING,
    Column("backup_id", String(36), nullable=False),
    Column("blob_id", LargeBinary(32), nullable=False),
    prefixes=["TEMPORARY"],
)


def rebuild_rows(
    db: Database,
    container: str,
    packs: Iterable[PackContents],
    references: Iterable[tuple[str, Collection[bytes]]],
    keep: Callable[[str], bool],
) -> int:
    """Replace the container's live and dead packs, its blobs and references
    with `packs` (all live; a blob listed by several packs is indexed in the
    first by pack id) and `references` (bases added). Pending packs are kept,
    and so are the references of each other backup for which `keep` is true,
    asked under the container's lock. Packs then left with no referenced blob
    die. Returns how many blobs are indexed."""
    with db.engine.connect() as conn:
        for table in _STAGING.tables.values():  # a killed rebuild's, on a pooled connection
            conn.execute(text(f"DROP TABLE IF EXISTS {table.name}"))
            table.create(conn, checkfirst=False)
        conn.commit()
        try:
            staged_packs = _stage_packs(conn, packs)
            rebuilt = _stage_references(conn, references)
            with conn.begin():
                return _swap(conn, container, staged_packs, rebuilt, keep)
        finally:
            if conn.in_transaction():
                conn.rollback()
            for table in _STAGING.tables.values():
                conn.execute(text(f"DROP TABLE IF EXISTS {table.name}"))
            conn.commit()


def _stage_packs(conn: Connection, packs: Iterable[PackContents]) -> dict[str, int]:
    """Stage every pack's entries; the size of each pack, by id."""
    sizes: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    for pack in packs:
        sizes[pack.pack_id] = pack.size
        rows += [
            {
                "blob_id": e.blob_id,
                "pack_id": pack.pack_id,
                "offset": e.offset,
                "length": e.length,
                "raw_length": e.raw_length,
                "flags": e.flags,
                "base_blob_id": e.base_id,
            }
            for e in pack.entries
        ]
        if len(rows) >= _BATCH_ROWS:
            _insert_batch(conn, _STAGED_BLOBS, rows)
            rows = []
    _insert_batch(conn, _STAGED_BLOBS, rows)
    return sizes


def _stage_references(
    conn: Connection, references: Iterable[tuple[str, Collection[bytes]]]
) -> set[str]:
    """Stage every backup's references; the backups staged."""
    backups: set[str] = set()
    rows: list[dict[str, Any]] = []
    for backup_id, blob_ids in references:
        backups.add(backup_id)
        rows += [{"backup_id": backup_id, "blob_id": b} for b in blob_ids]
        if len(rows) >= _BATCH_ROWS:
            _insert_batch(conn, _STAGED_REFS, rows)
            rows = []
    _insert_batch(conn, _STAGED_REFS, rows)
    return backups


def _insert_batch(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        with conn.begin():
            conn.execute(insert(table), rows)


def _swap(
    conn: Connection,
    container: str,
    sizes: dict[str, int],
    rebuilt: set[str],
    keep: Callable[[str], bool],
) -> int:
    lock(conn, container)
    pending = set(
        conn.scalars(
            select(PACKS.c.id).where(PACKS.c.container == container, PACKS.c.state == PENDING)
        )
    )
    holders = conn.scalars(
        select(REFS.c.backup_id).distinct().where(REFS.c.container == container)
    ).all()
    dropped = [b for b in holders if b in rebuilt or not keep(b)]
    for ids in chunks(dropped):
        conn.execute(delete(REFS).where(REFS.c.container == container, REFS.c.backup_id.in_(ids)))
    conn.execute(delete(BLOBS).where(BLOBS.c.container == container))
    conn.execute(delete(PACKS).where(PACKS.c.container == container, PACKS.c.state != PENDING))
    kept = sorted(set(sizes) - pending)
    insert_ignore(
        conn,
        PACKS,
        [{"container": container, "id": p, "state": LIVE, "size": sizes[p]} for p in kept],
    )
    _index_staged_blobs(conn, container)
    _reference_staged(conn, container)
    _reference_bases(conn, container)
    mark_dead(conn, container, sorted(set(kept) - packs_with_referenced_blobs(conn, container)))
    count = conn.scalar(
        select(func.count()).select_from(BLOBS).where(BLOBS.c.container == container)
    )
    return int(count or 0)


def _index_staged_blobs(conn: Connection, container: str) -> None:
    """Each staged blob, in the first of its packs by id that is live."""
    staged = _STAGED_BLOBS.c
    first = (
        select(staged.blob_id, func.min(staged.pack_id).label("pack_id"))
        .join(PACKS, and_(PACKS.c.container == container, PACKS.c.id == staged.pack_id))
        .where(PACKS.c.state == LIVE)
        .group_by(staged.blob_id)
        .subquery()
    )
    rows = select(
        literal(container),
        staged.blob_id,
        staged.pack_id,
        staged.offset,
        staged.length,
        staged.raw_length,
        staged.flags,
        staged.base_blob_id,
    ).join(first, and_(first.c.blob_id == staged.blob_id, first.c.pack_id == staged.pack_id))
    rows = rows.where(staged.blob_id.is_not(None))  # SQLite parses ON CONFLICT after a WHERE
    columns = ["container", "blob_id", "pack_id", "offset", "length", "raw_length", "flags"]
    conn.execute(_ignore(conn, BLOBS).from_select([*columns, "base_blob_id"], rows))


def _reference_staged(conn: Connection, container: str) -> None:
    staged = _STAGED_REFS.c
    rows = (
        select(staged.backup_id, literal(container), staged.blob_id)
        .distinct()
        .where(staged.backup_id.is_not(None))  # SQLite parses ON CONFLICT after a WHERE
    )
    conn.execute(_ignore(conn, REFS).from_select(["backup_id", "container", "blob_id"], rows))


def _reference_bases(conn: Connection, container: str) -> None:
    """Add the base of every referenced delta to the backup that references
    it, until no round adds one (a reference on a delta holds its base too)."""
    rows = (
        select(REFS.c.backup_id, REFS.c.container, BLOBS.c.base_blob_id)
        .distinct()
        .join(BLOBS, and_(BLOBS.c.container == REFS.c.container, BLOBS.c.blob_id == REFS.c.blob_id))
        .where(REFS.c.container == container, BLOBS.c.base_blob_id.is_not(None))
    )
    stmt = _ignore(conn, REFS).from_select(["backup_id", "container", "blob_id"], rows)
    for _ in range(_MAX_BASE_DEPTH):
        if not conn.execute(stmt).rowcount:
            return


def _ignore(conn: Connection, table: Table) -> Any:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()
