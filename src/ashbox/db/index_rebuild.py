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
    exists,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.engine import Connection

from ashbox.db.engine import Database
from ashbox.db.index_sql import (
    BLOBS,
    PACKS,
    REFS,
    chunks,
    driver_marker,
    lock,
    mark_dead,
    packs_with_referenced_blobs,
)
from ashbox.db.upsert import ignoring_insert, insert_ignore
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
    """`Index.rebuild` (repository/index.py) on the database: stage the packs
    and references, then swap them in; `keep` is asked under the container's
    lock. Returns how many blobs are indexed."""
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
    rows: list[tuple[Any, ...]] = []
    for pack in packs:
        sizes[pack.pack_id] = pack.size
        rows += [
            (e.blob_id, pack.pack_id, e.offset, e.length, e.raw_length, e.flags, e.base_id)
            for e in pack.entries
        ]
        if len(rows) >= _BATCH_ROWS:
            _insert_batch(conn, _STAGED_BLOBS, rows)
            rows = []
    _insert_batch(conn, _STAGED_BLOBS, rows)
    with conn.begin():  # built once all rows are in: faster than kept up
        conn.exec_driver_sql(
            f"CREATE INDEX {_STAGED_BLOBS.name}_first ON {_STAGED_BLOBS.name} (blob_id, pack_id)"
        )
    return sizes


def _stage_references(
    conn: Connection, references: Iterable[tuple[str, Collection[bytes]]]
) -> set[str]:
    """Stage every backup's references; the backups staged."""
    backups: set[str] = set()
    rows: list[tuple[Any, ...]] = []
    for backup_id, blob_ids in references:
        backups.add(backup_id)
        rows += [(backup_id, b) for b in blob_ids]
        if len(rows) >= _BATCH_ROWS:
            _insert_batch(conn, _STAGED_REFS, rows)
            rows = []
    _insert_batch(conn, _STAGED_REFS, rows)
    return backups


def _insert_batch(conn: Connection, table: Table, rows: list[tuple[Any, ...]]) -> None:
    """One executemany of the driver's. SQLAlchemy's own took a third of a
    rebuild; `index_sql.insert_rows` (multi-row INSERTs) took 33-34 s of a
    million-blob rebuild on PostgreSQL, against 24 s (bench/rebuild_index.py)."""
    if rows:
        quote = conn.dialect.identifier_preparer.quote
        names = ", ".join(quote(c.name) for c in table.columns)
        marks = ", ".join([driver_marker(conn)] * len(table.columns))
        with conn.begin():
            conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)


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
    """Each staged blob, in the first of its live packs by id: a probe of the
    staging index per row (a GROUP BY took 9 s for a million rows)."""
    staged = _STAGED_BLOBS
    other = staged.alias("other")
    live = select(PACKS.c.id).where(PACKS.c.container == container, PACKS.c.state == LIVE)
    earlier = select(other.c.pack_id).where(
        other.c.blob_id == staged.c.blob_id,
        other.c.pack_id < staged.c.pack_id,
        other.c.pack_id.in_(live),
    )
    rows = select(
        literal(container),
        staged.c.blob_id,
        staged.c.pack_id,
        staged.c.offset,
        staged.c.length,
        staged.c.raw_length,
        staged.c.flags,
        staged.c.base_blob_id,
    ).where(staged.c.pack_id.in_(live), ~exists(earlier))
    columns = ["container", "blob_id", "pack_id", "offset", "length", "raw_length", "flags"]
    conn.execute(
        ignoring_insert(conn.dialect.name, BLOBS).from_select([*columns, "base_blob_id"], rows)
    )


def _reference_staged(conn: Connection, container: str) -> None:
    staged = _STAGED_REFS.c
    rows = (
        select(staged.backup_id, literal(container), staged.blob_id)
        .distinct()
        .where(staged.backup_id.is_not(None))  # SQLite parses ON CONFLICT after a WHERE
    )
    conn.execute(
        ignoring_insert(conn.dialect.name, REFS).from_select(
            ["backup_id", "container", "blob_id"], rows
        )
    )


def _reference_bases(conn: Connection, container: str) -> None:
    """Add the base of every referenced delta to the backup that references
    it, until no round adds one (a reference on a delta holds its base too)."""
    rows = (
        select(REFS.c.backup_id, REFS.c.container, BLOBS.c.base_blob_id)
        .distinct()
        .join(BLOBS, and_(BLOBS.c.container == REFS.c.container, BLOBS.c.blob_id == REFS.c.blob_id))
        .where(REFS.c.container == container, BLOBS.c.base_blob_id.is_not(None))
    )
    stmt = ignoring_insert(conn.dialect.name, REFS).from_select(
        ["backup_id", "container", "blob_id"], rows
    )
    for _ in range(_MAX_BASE_DEPTH):
        if not conn.execute(stmt).rowcount:
            return
