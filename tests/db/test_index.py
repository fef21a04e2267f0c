"""The database index keeps the rules of repository/index.py on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.errors import PackAbandoned
from ashbox.repository.index import BlobLocation

C = "volumebackups"


def _loc(blob: bytes, offset: int = 0) -> BlobLocation:
    return BlobLocation(blob_id=blob, pack_id="", offset=offset, length=10, raw_length=20, flags=1)


def _commit(index: DbIndex, pack: str, backup: str, blobs: list[bytes]) -> None:
    index.begin_pack(C, pack, backup)
    index.commit_pack(C, pack, 100, [_loc(b, i * 10) for i, b in enumerate(blobs)], backup)


def test_committed_blobs_are_located_and_reused(db: Database) -> None:
    index = DbIndex(db)
    index.ensure_container(C)
    _commit(index, "p1", "b1", [b"a" * 32, b"b" * 32])
    assert set(index.locate(C, [b"a" * 32, b"c" * 32])) == {b"a" * 32}
    assert index.locate(C, [b"b" * 32])[b"b" * 32].offset == 10
    assert index.reuse(C, "b2", [b"a" * 32, b"c" * 32]) == {b"a" * 32}


def test_begin_pack_records_an_id_once_whatever_its_state(db: Database) -> None:
    index = DbIndex(db)
    index.ensure_container(C)
    assert index.begin_pack(C, "p1", "b1")
    assert not index.begin_pack(C, "p1", "b2")  # pending
    index.commit_pack(C, "p1", 100, [_loc(b"a" * 32)], "b1")
    assert not index.begin_pack(C, "p1", "b2")  # live
    index.release(C, "b1")
    assert not index.begin_pack(C, "p1", "b2")  # dead, maybe being deleted
    assert index.pending_packs(C, "b2") == []


def test_a_pending_pack_is_listed_until_forgotten(db: Database) -> None:
    index = DbIndex(db)
    index.begin_pack(C, "p1", "b1")
    assert index.pending_packs(C, "b1") == ["p1"]
    assert index.reuse(C, "b2", [b"a" * 32]) == set()
    index.forget_packs(C, ["p1"])
    assert index.pending_packs(C, "b1") == []


def test_an_abandoned_pack_is_never_committed_and_a_committed_one_never_abandoned(
    db: Database,
) -> None:
    index = DbIndex(db)
    index.ensure_container(C)
    index.begin_pack(C, "p1", "b1")
    _commit(index, "p2", "b1", [b"b" * 32])
    assert [(p.pack_id, p.owner) for p in index.pending(C)] == [("p1", "b1")]

    assert index.abandon_packs(C, ["p1", "p2"]) == ["p1"]

    with pytest.raises(PackAbandoned):
        index.commit_pack(C, "p1", 100, [_loc(b"a" * 32)], "b1")
    assert index.locate(C, [b"a" * 32]) == {}  # the refused commit added nothing
    assert {p.pack_id: p.state for p in index.packs(C)} == {"p1": "abandoned", "p2": "live"}
    assert index.dead_packs(C, state="abandoned") == ["p1"] and index.pending(C) == []
    assert index.dead_packs(C) == []
    assert index.abandon_packs(C, ["p1"]) == []
    # Its object deleted, it is buried: dead as of now, deleted once more before it goes.
    index.bury(C, ["p1", "p2"])
    assert {p.pack_id: p.state for p in index.packs(C)} == {"p1": "dead", "p2": "live"}
    assert index.dead_packs(C) == ["p1"]


def test_a_pack_dies_only_when_its_last_reference_goes(db: Database) -> None:
    index = DbIndex(db)
    _commit(index, "p1", "b1", [b"a" * 32, b"b" * 32])
    index.reuse(C, "b2", [b"a" * 32])
    assert index.release(C, "b1") == []
    assert index.release(C, "b2") == ["p1"]
    assert index.dead_packs(C) == ["p1"]
    assert index.reuse(C, "b3", [b"a" * 32]) == set()
    index.forget_packs(C, ["p1"])
    assert index.dead_packs(C) == []


def test_a_pack_holding_only_duplicates_is_dead_from_birth(db: Database) -> None:
    index = DbIndex(db)
    _commit(index, "p1", "b1", [b"a" * 32])
    _commit(index, "p2", "b2", [b"a" * 32])
    assert index.dead_packs(C) == ["p2"]
    assert index.locate(C, [b"a" * 32])[b"a" * 32].pack_id == "p1"


def test_reuse_racing_release_never_keeps_a_reference_into_a_dead_pack(db: Database) -> None:
    index = DbIndex(db)
    blob = b"x" * 32
    for round_ in range(15):
        _commit(index, f"p{round_}", f"old{round_}", [blob])
        reused, dead = _race(index, f"new{round_}", f"old{round_}", blob)
        # Either the reuse won (pack stays live) or the release did (nothing reused).
        assert (reused == {blob}) != (dead == [f"p{round_}"])
        index.release(C, f"new{round_}")
        index.forget_packs(C, index.dead_packs(C))


def _race(index: DbIndex, new: str, old: str, blob: bytes) -> tuple[set[bytes], list[str]]:
    """`new` reuses `blob` while `old` releases it, in two threads at once."""
    reused: list[set[bytes]] = []
    dead: list[list[str]] = []
    t1 = threading.Thread(target=lambda: reused.append(index.reuse(C, new, [blob])))
    t2 = threading.Thread(target=lambda: dead.append(index.release(C, old)))
    t1.start()
    t2.start()
    t1.join()
    t2.join()
    return reused[0], dead[0]


def test_a_dead_pack_is_listed_for_deletion_only_after_it_died(db: Database) -> None:
    from datetime import UTC, datetime, timedelta

    index = DbIndex(db)
    _commit(index, "p1", "b1", [b"a" * 32])
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert index.release(C, "b1") == ["p1"]
    assert index.dead_packs(C, dead_before=before) == []
    assert index.dead_packs(C, dead_before=datetime.now(UTC)) == ["p1"]
    assert [(p.pack_id, p.state) for p in index.packs(C)] == [("p1", "dead")]
    assert index.packs(C)[0].dead_at is not None


def test_a_delta_whose_base_died_is_dropped_and_never_reused(db: Database) -> None:
    index = DbIndex(db)
    base, delta, other = b"b" * 32, b"d" * 32, b"o" * 32
    _commit(index, "p1", "b1", [base])
    index.begin_pack(C, "p2", "b2")
    with_base = BlobLocation(
        blob_id=delta, pack_id="", offset=0, length=10, raw_length=20, flags=1, base_id=base
    )
    index.commit_pack(C, "p2", 100, [with_base, _loc(other, 10)], "b2")
    index.reuse(C, "b3", [other])
    index.release(C, "b2")  # the delta is unreferenced now; p2 lives on through `other`
    assert index.release(C, "b1") == ["p1"]
    assert index.locate(C, [delta]) == {}
    assert index.reuse(C, "b4", [delta]) == set()
    assert index.reuse(C, "b4", [other]) == {other}


def _delta(blob: bytes, base: bytes, offset: int = 0) -> BlobLocation:
    return BlobLocation(
        blob_id=blob, pack_id="", offset=offset, length=10, raw_length=20, flags=1, base_id=base
    )


def test_reuse_finds_nothing_in_an_unknown_container_and_commit_creates_it(
    db: Database,
) -> None:
    index = DbIndex(db)
    assert index.reuse("fresh", "b1", [b"a" * 32]) == set()
    index.begin_pack("other", "p1", "b1")
    index.commit_pack("other", "p1", 100, [_loc(b"a" * 32)], "b1")
    assert index.containers() == ["other"]
    assert index.reuse("other", "b2", [b"a" * 32]) == {b"a" * 32}


def test_backups_racing_on_a_new_container_all_lock_it(db: Database) -> None:
    index = DbIndex(db)
    blob = b"x" * 32
    errors: list[BaseException] = []

    def backup(n: int) -> None:
        try:
            index.begin_pack("new", f"p{n}", f"b{n}")
            index.commit_pack("new", f"p{n}", 100, [_loc(blob)], f"b{n}")
            index.reuse("new", f"b{n}", [blob])
        except Exception as e:  # reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=backup, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert index.containers() == ["new"]
    assert set(index.references("new")) == {"b0", "b1", "b2", "b3"}


def test_reuse_of_more_ids_than_one_query_takes_finds_each_indexed_one(db: Database) -> None:
    index = DbIndex(db)
    stored = [i.to_bytes(32, "big") for i in (7, 499, 500, 1201)]
    _commit(index, "p1", "b1", stored)
    asked = [i.to_bytes(32, "big") for i in range(1300)]
    assert index.reuse(C, "b2", asked) == set(stored)
    assert index.reuse("elsewhere", "b3", stored) == set()


def test_a_pack_of_more_blobs_than_one_insert_takes_indexes_and_references_each(
    db: Database,
) -> None:
    index = DbIndex(db)
    blobs = [i.to_bytes(32, "big") for i in range(2500)]
    _commit(index, "p1", "b1", blobs)
    located = index.locate(C, blobs)
    assert len(located) == 2500
    assert located[blobs[-1]].offset == 24990
    assert index.references(C)["b1"] == set(blobs)


def test_asking_for_no_blobs_finds_none(db: Database) -> None:
    index = DbIndex(db)
    assert index.reuse(C, "b1", []) == set()
    assert index.locate(C, []) == {}
    assert index.references(C) == {}


def test_reusing_a_delta_references_its_whole_chain(db: Database) -> None:
    index = DbIndex(db)
    whole, d1, d2, d3, other = (bytes([i]) * 32 for i in range(5))
    index.begin_pack(C, "p1", "b1")
    chain = [_loc(whole), _delta(d1, whole, 10), _delta(d2, d1, 20), _delta(d3, d2, 30)]
    index.commit_pack(C, "p1", 100, [*chain, _loc(other, 40)], "b1")
    assert index.reuse(C, "b2", [d3, b"n" * 32]) == {d3}
    assert index.reuse(C, "b3", [d1, other]) == {d1, other}
    refs = index.references(C)
    assert refs["b2"] == {whole, d1, d2, d3}
    assert refs["b3"] == {whole, d1, other}
    assert index.locate(C, [d3])[d3].base_id == d2


def test_committing_a_delta_references_its_bases_in_earlier_packs(db: Database) -> None:
    index = DbIndex(db)
    whole, d1, d2 = (bytes([i]) * 32 for i in range(3))
    index.begin_pack(C, "p1", "b1")
    index.commit_pack(C, "p1", 100, [_loc(whole), _delta(d1, whole, 10)], "b1")
    index.begin_pack(C, "p2", "b2")
    index.commit_pack(C, "p2", 100, [_delta(d2, d1)], "b2")
    assert index.references(C)["b2"] == {whole, d1, d2}
    assert index.release(C, "b1") == []  # b2 holds p1 through d2's chain


def test_a_blob_already_indexed_keeps_its_first_location_and_base(db: Database) -> None:
    index = DbIndex(db)
    base, blob = b"b" * 32, b"x" * 32
    _commit(index, "p1", "b1", [blob])
    index.begin_pack(C, "p2", "b2")
    index.commit_pack(C, "p2", 100, [_loc(base), _delta(blob, base, 10)], "b2")
    assert index.locate(C, [blob])[blob] == BlobLocation(
        blob_id=blob, pack_id="p1", offset=0, length=10, raw_length=20, flags=1
    )
    assert index.reuse(C, "b3", [blob]) == {blob}
    assert index.references(C)["b3"] == {blob}


def test_locate_reads_while_another_transaction_holds_the_lock(db: Database) -> None:
    from ashbox.db.index_sql import lock

    index = DbIndex(db)
    blob = b"a" * 32
    _commit(index, "p1", "b1", [blob])
    found: list[dict[bytes, BlobLocation]] = []
    with db.connection() as conn:
        lock(conn, C)  # on SQLite: BEGIN IMMEDIATE, the write lock
        reader = threading.Thread(target=lambda: found.append(index.locate(C, [blob])))
        reader.start()
        reader.join(timeout=10)
        waited = reader.is_alive()
    reader.join()
    assert not waited
    assert found[0][blob].pack_id == "p1"


def test_keep_references_drops_what_the_backup_did_not_need(db: Database) -> None:
    index = DbIndex(db)
    spare, kept, new = (bytes([i]) * 32 for i in range(3))
    _commit(index, "p1", "b0", [spare, kept])
    assert index.reuse(C, "b2", [spare, kept]) == {spare, kept}
    _commit(index, "p2", "b2", [new])
    assert index.keep_references(C, "b2", [kept, new]) == []  # b0 holds p1 still
    assert index.references(C)["b2"] == {kept, new}
    assert index.release(C, "b0") == []  # b2 holds p1 through `kept`
    assert index.references(C) == {"b2": {kept, new}}


def test_keep_references_keeps_the_chain_of_a_kept_delta(db: Database) -> None:
    index = DbIndex(db)
    whole, delta, spare = (bytes([i]) * 32 for i in range(3))
    index.begin_pack(C, "p1", "b1")
    index.commit_pack(C, "p1", 100, [_loc(whole), _delta(delta, whole, 10)], "b1")
    _commit(index, "p2", "b1", [spare])
    assert index.keep_references(C, "b1", [delta]) == ["p2"]
    assert index.references(C)["b1"] == {whole, delta}
    assert index.dead_packs(C) == ["p2"]
