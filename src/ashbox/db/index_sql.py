"""SQL building blocks of the database index, shared by `index` and `index_maintenance`.

Callers own the transaction (`Database.connection()`). Liveness rules:
docs/format.md §7. The statements of the backup's hot path (`reuse`,
`locate`, `begin_pack`, `commit_pack`) are SQLAlchemy Core, built once here, so
each call costs a cache lookup rather than an ORM compile; `reuse`'s first
look (`indexed`) goes to the driver's cursor. Measured by bench/index_calls.py.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import BindParameter

from ashbox.db.models import Blob, BlobRef, Container, Pack
from ashbox.db.upsert import insert_ignore
from ashbox.repository.index import DEAD, LIVE, PENDING, BlobLocation

CONTAINERS = cast(Table, Container.__table__)
PACKS = cast(Table, Pack.__table__)
BLOBS = cast(Table, Blob.__table__)
REFS = cast(Table, BlobRef.__table__)
# A blob's location, in `BlobLocation`'s order (`location`).
LOCATION = (
    BLOBS.c.blob_id,
    BLOBS.c.pack_id,
    BLOBS.c.offset,
    BLOBS.c.length,
    BLOBS.c.raw_length,
    BLOBS.c.flags,
    BLOBS.c.base_blob_id,
)

_BATCH = 500
_ROW_VALUES = 8000  # parameters of one multi-row INSERT (SQLite allows 32766 and more)
_T = TypeVar("_T")

_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_CONTAINER: BindParameter[str] = bindparam("container")
# SQLite leaves out FOR UPDATE: its BEGIN IMMEDIATE holds the lock already.
_LOCK = select(CONTAINERS.c.name).where(CONTAINERS.c.name == _CONTAINER).with_for_update()
_SHARE = select(CONTAINERS.c.name).where(CONTAINERS.c.name == _CONTAINER).with_for_update(read=True)
_BASE = BLOBS.alias("base")
# Indexed blobs among `ids`: pack, base and base's base (what `with_bases` needs).
_INDEXED = (
    select(BLOBS.c.blob_id, BLOBS.c.pack_id, BLOBS.c.base_blob_id, _BASE.c.base_blob_id)
    .join_from(
        BLOBS,
        _BASE,
        (_BASE.c.container == BLOBS.c.container) & (_BASE.c.blob_id == BLOBS.c.base_blob_id),
        isouter=True,
    )
    .where(BLOBS.c.container == _CONTAINER, BLOBS.c.blob_id.in_(_IDS))
)
_LIVE = _INDEXED.join_from(
    BLOBS,
    PACKS,
    (PACKS.c.container == BLOBS.c.container) & (PACKS.c.id == BLOBS.c.pack_id),
).where(PACKS.c.state == LIVE)
_PACK_HAS_BLOB = (
    select(BLOBS.c.blob_id)
    .where(BLOBS.c.container == _CONTAINER, BLOBS.c.pack_id == bindparam("pack_id"))
    .limit(1)
)
_PACK_HAS_REFERENCED_BLOB = (
    select(REFS.c.blob_id)
    .join_from(
        REFS,
        BLOBS,
        (BLOBS.c.container == REFS.c.container) & (BLOBS.c.blob_id == REFS.c.blob_id),
    )
    .where(BLOBS.c.container == _CONTAINER, BLOBS.c.pack_id == bindparam("pack_id"))
    .limit(1)
)
_SETTLE_PACK = (
    update(PACKS)
    .where(
        PACKS.c.container == bindparam("p_container"),
        PACKS.c.id == bindparam("p_id"),
        PACKS.c.state == PENDING,
    )
    .values(
        state=bindparam("new_state"),
        size=bindparam("new_size"),
        owner_backup_id=None,
        dead_at=bindparam("new_dead_at", type_=PACKS.c.dead_at.type),
    )
)

# `repo check` and `repo stats` (index_maintenance): one pack's rows, or sums,
# never a row per blob of the container. Parameters: `container` (and `pack_id`).
# No ORDER BY: on SQLite, ordering by blob id picks the primary key and scans
# every blob of the container instead of ix_blobs_pack; the caller sorts.
PACK_BLOBS = select(*LOCATION).where(
    BLOBS.c.container == _CONTAINER, BLOBS.c.pack_id == bindparam("pack_id")
)
# Indexed blobs some backup references, each once: how many, raw and stored bytes.
REFERENCED_TOTALS = select(
    func.count(),
    func.coalesce(func.sum(BLOBS.c.raw_length), 0),
    func.coalesce(func.sum(BLOBS.c.length), 0),
).where(
    BLOBS.c.container == _CONTAINER,
    select(REFS.c.blob_id)
    .where(REFS.c.container == BLOBS.c.container, REFS.c.blob_id == BLOBS.c.blob_id)
    .exists(),
)
# Backups holding a reference.
REFERENCING_BACKUPS = select(REFS.c.backup_id).where(REFS.c.container == _CONTAINER).distinct()
# Blobs one backup alone references (the min of one backup id is that id).
_ONLY_ONE = (
    select(REFS.c.blob_id, func.min(REFS.c.backup_id).label("backup_id"))
    .where(REFS.c.container == _CONTAINER)
    .group_by(REFS.c.blob_id)
    .having(func.count() == 1)
    .subquery("only_one")
)
# Per backup, the stored bytes of the indexed blobs only it references.
UNIQUE_SIZES = (
    select(_ONLY_ONE.c.backup_id, func.sum(BLOBS.c.length))
    .join_from(
        _ONLY_ONE,
        BLOBS,
        (BLOBS.c.container == _CONTAINER) & (BLOBS.c.blob_id == _ONLY_ONE.c.blob_id),
    )
    .group_by(_ONLY_ONE.c.backup_id)
)


def lock(conn: Connection, container: str, *, shared: bool = False) -> None:
    """Lock the container's row, creating it first if missing. `shared` (FOR SHARE)
    is for the calls that only add blobs and references: they do not wait for each
    other, only for the exclusive holders, which declare packs dead."""
    statement = _SHARE if shared else _LOCK
    if conn.execute(statement, {"container": container}).first() is None:
        insert_ignore(conn, CONTAINERS, [{"name": container}])
        conn.execute(statement, {"container": container})


def locate(conn: Connection, container: str, blob_ids: Sequence[bytes]) -> list[BlobLocation]:
    """Locations of the indexed blobs among `blob_ids`, read through the driver's
    cursor: a restore asks for every block's, and their rows processed by
    SQLAlchemy took a quarter of its caller thread, which its workers waited on."""
    offset = conn.dialect.identifier_preparer.quote("offset")
    query = (
        f"SELECT blob_id, pack_id, {offset}, length, raw_length, flags, base_blob_id "  # LOCATION
        "FROM blobs WHERE container = {m} AND blob_id IN ({ids})"
    )
    return [location(row) for row in _rows_in(conn, query, [container], blob_ids)]


@dataclass(frozen=True, slots=True)
class Found:
    """Blobs found in the index: the pack of each, and the base (None: whole) of
    each and of each of their bases, so `with_bases` need not ask for those."""

    packs: dict[bytes, str]
    bases: dict[bytes, bytes | None]


def find(
    conn: Connection, container: str, blob_ids: Sequence[bytes], *, live: bool = False
) -> Found:
    """The indexed blobs among `blob_ids`; with `live`, only those in a live pack."""
    found = Found({}, {})
    stmt = _LIVE if live else _INDEXED
    for chunk in chunks(blob_ids):
        for blob_id, pack_id, base_id, base_base_id in conn.execute(
            stmt, {"container": container, "ids": chunk}
        ):
            found.packs[blob_id] = pack_id
            found.bases[blob_id] = base_id
            if base_id is not None:
                found.bases[base_id] = base_base_id
    return found


def indexed(conn: Connection, container: str, blob_ids: Sequence[bytes]) -> list[bytes]:
    """The indexed blobs among `blob_ids`, read through the driver's own cursor.
    `reuse` asks this for every batch of every backup, whose blocks are mostly
    new; through SQLAlchemy (an expanding IN, bound and processed per call) it
    cost five times the query (bench/index_calls.py)."""
    query = "SELECT blob_id FROM blobs WHERE container = {m} AND blob_id IN ({ids})"
    return _ids_in(conn, query, [container], blob_ids)


def bases_of(conn: Connection, container: str, blob_ids: Sequence[bytes]) -> list[bytes]:
    """The bases of the indexed deltas among `blob_ids`, through the driver's cursor
    (the end of each backup asks for thousands: `keep_references`)."""
    query = (
        "SELECT base_blob_id FROM blobs WHERE container = {m} "
        "AND base_blob_id IS NOT NULL AND blob_id IN ({ids})"
    )
    return _ids_in(conn, query, [container], blob_ids)


def referenced_by(conn: Connection, container: str, backup_id: str) -> set[bytes]:
    """Every blob `backup_id` references, through the driver's cursor."""
    query = "SELECT blob_id FROM blob_refs WHERE container = {m} AND backup_id = {m}"
    return set(_ids_in(conn, query, [container, backup_id], None))


def _ids_in(
    conn: Connection, query: str, params: Sequence[Any], ids: Sequence[bytes] | None
) -> list[bytes]:
    """The first column of `query`'s rows, as bytes (`_rows_in`)."""
    return [bytes(row[0]) for row in _rows_in(conn, query, params, ids)]


def _rows_in(
    conn: Connection, query: str, params: Sequence[Any], ids: Sequence[bytes] | None
) -> list[tuple[Any, ...]]:
    """The rows of `query` run through the driver's cursor: once, or, with
    `ids`, once per chunk of them in its `IN ({ids})`. `{m}` in `query` marks
    each of `params`. SQLAlchemy processed each row in Python, which cost the
    end of every backup thousands of rows' worth."""
    marker = driver_marker(conn)
    rows: list[tuple[Any, ...]] = []
    cursor = _driver_cursor(conn)
    try:
        for chunk in [None] if ids is None else chunks(ids):
            marks = "" if chunk is None else ", ".join([marker] * len(chunk))
            cursor.execute(query.format(m=marker, ids=marks), [*params, *(chunk or ())])
            rows.extend(cursor.fetchall())
    finally:
        cursor.close()
    return rows


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING of blob or reference rows (each with the
    same keys) through the driver's cursor; how many were new. A backup writes
    them by the thousand. Many rows go in one statement: executemany steps
    SQLite once a row, each step giving up and taking back the GIL, which the
    backup's workers hold in between (3.3 ms a pack commit inside a full
    backup, against 0.9 ms alone). Only for tables whose columns need none of
    SQLAlchemy's conversions (bytes, text, integers) and have no defaults."""
    if table is not BLOBS and table is not REFS:
        raise ValueError(f"{table.name} rows may need SQLAlchemy's conversions")
    if not rows:
        return 0
    columns = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote
    marker = driver_marker(conn)
    row_marks = f"({', '.join([marker] * len(columns))})"
    head = f"INSERT INTO {table.name} ({', '.join(quote(c) for c in columns)}) VALUES "
    inserted = 0
    cursor = _driver_cursor(conn)
    try:
        for chunk in chunks(rows, _ROW_VALUES // len(columns)):
            values = [row[c] for row in chunk for c in columns]
            cursor.execute(
                head + ", ".join([row_marks] * len(chunk)) + " ON CONFLICT DO NOTHING", values
            )
            inserted += cursor.rowcount
    finally:
        cursor.close()
    return inserted


def driver_marker(conn: Connection) -> str:
    """The driver's positional parameter: `?` for sqlite3, `%s` for psycopg."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _driver_cursor(conn: Connection) -> Any:
    """A cursor of the driver's connection, in the transaction `conn` is in."""
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


def add_refs(
    conn: Connection,
    container: str,
    backup_id: str,
    blob_ids: Collection[bytes],
    *,
    bases: Mapping[bytes, bytes | None] | None = None,
) -> None:
    """Reference the blobs for the backup, and the bases of the deltas among
    them. `bases`: the base of some indexed blobs, read already (`Found.bases`)."""
    rows = [
        {"backup_id": backup_id, "container": container, "blob_id": b}
        for b in sorted(with_bases(conn, container, blob_ids, bases=bases))
    ]
    insert_rows(conn, REFS, rows)


def has_live_blob(conn: Connection, container: str, pack_id: str) -> bool:
    """Whether some backup references a blob indexed in the pack."""
    params = {"container": container, "pack_id": pack_id}
    return conn.execute(_PACK_HAS_REFERENCED_BLOB, params).first() is not None


def has_blob(conn: Connection, container: str, pack_id: str) -> bool:
    """Whether some blob is indexed in the pack."""
    params = {"container": container, "pack_id": pack_id}
    return conn.execute(_PACK_HAS_BLOB, params).first() is not None


def with_bases(
    conn: Connection,
    container: str,
    blob_ids: Collection[bytes],
    *,
    bases: Mapping[bytes, bytes | None] | None = None,
) -> set[bytes]:
    """`blob_ids` and, transitively, the bases of the indexed deltas among them.
    `bases`: the base (None: none) of some indexed blobs, known already; the
    others' are asked."""
    known = bases or {}
    out = set(blob_ids)
    frontier = out
    while frontier:
        found = {b for b in (known.get(f) for f in frontier if f in known) if b is not None}
        found.update(bases_of(conn, container, sorted(f for f in frontier if f not in known)))
        frontier = found - out
        out |= frontier
    return out


def referenced_blobs(conn: Connection, container: str, blob_ids: Sequence[bytes]) -> set[bytes]:
    found: set[bytes] = set()
    for chunk in chunks(blob_ids):
        found.update(
            conn.scalars(
                select(REFS.c.blob_id)
                .distinct()
                .where(REFS.c.container == container, REFS.c.blob_id.in_(chunk))
            )
        )
    return found


def mark_dead(conn: Connection, container: str, pack_ids: Sequence[str]) -> None:
    """Mark the packs dead as of now and drop their blobs from the index, and with
    them every delta left without its base: such a delta has no reference (a
    reference on a delta holds its base too), and reusing it could not restore."""
    now = utc_now()
    for ids in chunks(pack_ids):
        conn.execute(
            update(PACKS)
            .where(PACKS.c.container == container, PACKS.c.id.in_(ids))
            .values(state=DEAD, dead_at=now, owner_backup_id=None)
        )
        conn.execute(delete(BLOBS).where(BLOBS.c.container == container, BLOBS.c.pack_id.in_(ids)))
    if pack_ids:
        drop_orphan_deltas(conn, container)


def drop_orphan_deltas(conn: Connection, container: str) -> None:
    base = BLOBS.alias("base")
    indexed = select(base.c.blob_id).where(base.c.container == container)
    while True:
        orphans = list(
            conn.scalars(
                select(BLOBS.c.blob_id).where(
                    BLOBS.c.container == container,
                    BLOBS.c.base_blob_id.is_not(None),
                    BLOBS.c.base_blob_id.not_in(indexed),
                )
            )
        )
        if not orphans:
            return
        for chunk in chunks(orphans):
            conn.execute(
                delete(BLOBS).where(BLOBS.c.container == container, BLOBS.c.blob_id.in_(chunk))
            )


def location(row: Sequence[Any]) -> BlobLocation:
    """The location in a row of `LOCATION` columns."""
    return BlobLocation(*row)


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


def settle_pack(conn: Connection, container: str, pack_id: str, *, size: int, live: bool) -> bool:
    """A pending pack is uploaded: live, or dead from birth (now) if it holds no
    indexed blob. False, and nothing changed, if it is no longer pending."""
    params: Mapping[str, Any] = {
        "p_container": container,
        "p_id": pack_id,
        "new_state": LIVE if live else DEAD,
        "new_size": size,
        "new_dead_at": None if live else utc_now(),
    }
    return conn.execute(_SETTLE_PACK, params).rowcount == 1


def utc_now() -> datetime:
    return datetime.now(UTC)


def chunks(items: Sequence[_T], size: int = _BATCH) -> Iterable[Sequence[_T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def packs_with_referenced_blobs(conn: Connection, container: str) -> set[str]:
    """Packs holding at least one indexed blob that some backup references."""
    return set(
        conn.scalars(
            select(BLOBS.c.pack_id)
            .distinct()
            .join_from(
                BLOBS,
                REFS,
                (REFS.c.container == BLOBS.c.container) & (REFS.c.blob_id == BLOBS.c.blob_id),
            )
            .where(BLOBS.c.container == container)
        )
    )
