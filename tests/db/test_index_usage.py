"""The database index's reads for `repo check` and `repo stats`: one pack's blobs,
and the referenced blobs' sums, on SQLite and PostgreSQL."""

from __future__ import annotations

from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.repository.index import BlobLocation, ContainerUsage

C = "volumebackups"


def _loc(blob: bytes, offset: int, *, base: bytes | None = None) -> BlobLocation:
    return BlobLocation(
        blob_id=blob,
        pack_id="",
        offset=offset,
        length=10 + offset,
        raw_length=100 + offset,
        flags=1,
        base_id=base,
    )


def _commit(index: DbIndex, pack: str, backup: str, entries: list[BlobLocation]) -> None:
    index.begin_pack(C, pack, backup)
    index.commit_pack(C, pack, 1000, entries, backup)


def test_pack_blobs_gives_one_packs_blobs_by_id(db: Database) -> None:
    index = DbIndex(db)
    z, a, m = b"z" * 32, b"a" * 32, b"m" * 32
    _commit(index, "p1", "b1", [_loc(z, 0), _loc(a, 10)])
    _commit(index, "p2", "b1", [_loc(m, 0)])
    assert [loc.blob_id for loc in index.pack_blobs(C, "p1")] == [a, z]
    assert index.pack_blobs(C, "p1")[0] == BlobLocation(
        blob_id=a, pack_id="p1", offset=10, length=20, raw_length=110, flags=1
    )
    assert [loc.blob_id for loc in index.pack_blobs(C, "p2")] == [m]
    assert index.pack_blobs(C, "p3") == []
    assert index.pack_blobs("other", "p1") == []


def test_usage_counts_each_referenced_blob_once_and_what_only_one_backup_holds(
    db: Database,
) -> None:
    index = DbIndex(db)
    assert index.usage(C) == ContainerUsage(blobs=0, raw_size=0, blob_size=0, unique_sizes={})
    whole, delta, shared, own, spare = (bytes([i]) * 32 for i in range(5))
    # b1: whole (0), delta on it (10), shared (20); b2: shared, own (30) and,
    # reusing the delta, its base.
    _commit(index, "p1", "b1", [_loc(whole, 0), _loc(delta, 10, base=whole), _loc(shared, 20)])
    _commit(index, "p2", "b2", [_loc(own, 30), _loc(spare, 40)])
    assert index.reuse(C, "b2", [shared, delta]) == {shared, delta}
    assert index.keep_references(C, "b2", [own, shared, delta]) == []  # spare: unreferenced
    assert index.reuse(C, "b3", []) == set()  # holds nothing: not listed
    assert index.usage(C) == ContainerUsage(
        blobs=4,
        raw_size=100 + 110 + 120 + 130,
        blob_size=10 + 20 + 30 + 40,
        unique_sizes={"b1": 0, "b2": 40},
    )
    index.release(C, "b1")
    assert index.usage(C).unique_sizes == {"b2": 10 + 20 + 30 + 40}
    assert index.usage("other") == ContainerUsage(0, 0, 0, {})
