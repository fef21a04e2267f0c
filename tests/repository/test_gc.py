"""`collect_garbage`: sweep, repack and delete after the grace period, never losing
a blob that a backup relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.db.models import Pack
from ashbox.repository.gc import ABANDONED_AFTER, collect_garbage
from ashbox.repository.index import LIVE, BlobLocation
from ashbox.repository.pack import pack_key

from ..storage.memory_store import MemoryStore
from .conftest import BLOCK, CONTAINER, pack_keys, sha256
from .gc_helpers import db_repository, image, random_blocks, restored_sha


def test_a_mostly_dead_pack_is_repacked_and_every_backup_still_restores(
    store: MemoryStore, db: Database, tmp_path: Path
) -> None:
    repo = db_repository(store, db)
    blocks = random_blocks(1, 6)
    repo.backup("big", image(tmp_path / "big", blocks))
    repo.backup("small", image(tmp_path / "small", blocks[:2]))
    first = repo.codec.blob_id(blocks[0])
    old_pack = repo.index.locate(CONTAINER, [first])[first].pack_id
    repo.delete("big")  # at most 2 of the old pack's blobs stay live
    assert old_pack in {p.pack_id for p in repo.index.packs(CONTAINER)}

    report = collect_garbage(repo, repack_live_fraction=0.5)

    assert report.repacked_packs >= 1 and report.new_packs == 1
    assert report.deleted_packs == report.repacked_packs
    assert 2 * BLOCK <= report.copied_size <= 2 * BLOCK + 256  # + what deltas keep
    assert old_pack not in {k.rsplit("/", 1)[-1] for k in pack_keys(store)}
    assert repo.index.locate(CONTAINER, [first])[first].pack_id != old_pack
    assert restored_sha(repo, "small", tmp_path, 2 * BLOCK) == sha256(tmp_path / "small")
    new_packs = {p.pack_id for p in repo.index.packs(CONTAINER) if p.state == LIVE}
    assert {b.pack_id for b in repo.index.blobs(CONTAINER)} <= new_packs
    assert collect_garbage(repo).new_packs == 0  # the new pack is all live


def test_a_backup_of_a_dead_packs_bytes_uploads_them_under_another_id(
    store: MemoryStore, db: Database, tmp_path: Path
) -> None:
    """The same data backed up again writes packs of the same bytes, so of the
    same ids, as the dead packs of its deleted backup: a collector deleting
    those must not take the new backup's objects with them."""
    repo = db_repository(store, db, grace=3600)
    source = image(tmp_path / "b1", random_blocks(3, 3))
    repo.backup("b1", source)
    dead = pack_keys(store)
    repo.delete("b1")
    repo.backup("b2", source)
    assert pack_keys(store) - dead, "b2 uploaded nothing of its own"
    live = {p.pack_id for p in repo.index.packs(CONTAINER) if p.state == LIVE}
    assert not {k.rsplit("/", 1)[-1] for k in dead} & live
    collect_garbage(db_repository(store, db, grace=0))
    assert not pack_keys(store) & dead
    assert restored_sha(repo, "b2", tmp_path, 3 * BLOCK) == sha256(source)


def test_a_dead_pack_stays_in_the_store_for_the_grace_period(
    store: MemoryStore, db: Database, tmp_path: Path
) -> None:
    repo = db_repository(store, db, grace=3600)
    repo.backup("b1", image(tmp_path / "b1", random_blocks(2, 3)))
    stored = pack_keys(store)
    repo.delete("b1")
    assert pack_keys(store) == stored
    assert collect_garbage(repo).deleted_packs == 0
    assert pack_keys(store) == stored
    assert collect_garbage(db_repository(store, db, grace=0)).deleted_packs == len(stored)
    assert pack_keys(store) == set()


def test_a_blob_reused_while_its_pack_is_repacked_moves_to_the_new_pack(
    store: MemoryStore, db: Database, tmp_path: Path
) -> None:
    repo = db_repository(store, db)
    blocks = random_blocks(3, 6)
    repo.backup("big", image(tmp_path / "big", blocks))
    repo.backup("small", image(tmp_path / "small", blocks[:1]))
    repo.delete("big")
    index = repo.index
    kept = repo.codec.blob_id(blocks[0])
    old_pack = index.locate(CONTAINER, [kept])[kept].pack_id
    to_copy = [b for b in index.begin_repack(CONTAINER, [old_pack])[old_pack] if b.blob_id == kept]
    assert len(to_copy) == 1
    # Dropped from the index: a backup now stores these blocks again.
    assert index.reuse(CONTAINER, "late", [repo.codec.blob_id(blocks[3])]) == set()
    # Still indexed and live: a concurrent backup reuses it before the repack commits.
    assert index.reuse(CONTAINER, "late", [kept]) == {kept}
    repo.delete("small")
    loc = to_copy[0]
    index.begin_pack(CONTAINER, "new", "gc-test")
    moved = BlobLocation(kept, "new", 8, loc.length, loc.raw_length, loc.flags)
    assert index.commit_repack(CONTAINER, "new", 100, [moved], [old_pack]) == [old_pack]
    assert index.locate(CONTAINER, [kept])[kept].pack_id == "new"
    states = {p.pack_id: p.state for p in index.packs(CONTAINER)}
    assert states["new"] == LIVE


def test_a_delta_keeps_its_base_alive_after_the_base_backup_is_deleted(db: Database) -> None:
    index = DbIndex(db)
    index.ensure_container(CONTAINER)
    base, delta = b"b" * 32, b"d" * 32
    index.begin_pack(CONTAINER, "p1", "full")
    index.commit_pack(CONTAINER, "p1", 100, [BlobLocation(base, "p1", 8, 10, BLOCK, 1)], "full")
    index.begin_pack(CONTAINER, "p2", "incr")
    index.commit_pack(
        CONTAINER,
        "p2",
        100,
        [BlobLocation(delta, "p2", 8, 10, 20, 4, base_id=base)],
        "incr",
    )
    assert index.references(CONTAINER)["incr"] == {base, delta}
    assert index.release(CONTAINER, "full") == []
    assert index.sweep(CONTAINER) == []
    assert set(index.locate(CONTAINER, [base, delta])) == {base, delta}
    assert index.reuse(CONTAINER, "next", [delta]) == {delta}
    assert index.references(CONTAINER)["next"] == {base, delta}
    assert index.release(CONTAINER, "incr") == []
    assert sorted(index.release(CONTAINER, "next")) == ["p1", "p2"]


def test_a_live_pack_left_with_no_referenced_blob_is_swept(db: Database) -> None:
    index = DbIndex(db)
    index.ensure_container(CONTAINER)
    index.begin_pack(CONTAINER, "p1", "b1")
    index.commit_pack(CONTAINER, "p1", 100, [BlobLocation(b"x" * 32, "p1", 8, 10, 20, 1)], "b1")
    with db.transaction() as s:
        from sqlalchemy import delete

        from ashbox.db.models import BlobRef

        s.execute(delete(BlobRef))
    assert index.sweep(CONTAINER) == ["p1"]
    assert index.dead_packs(CONTAINER) == ["p1"]


def test_a_repack_pack_its_collector_abandoned_is_deleted_once_old(
    store: MemoryStore, db: Database, tmp_path: Path
) -> None:
    repo = db_repository(store, db)
    for pack_id in ("a" * 64, "b" * 64):
        repo.index.begin_pack(CONTAINER, pack_id, "gc-0123")
        store.put(pack_key(CONTAINER, pack_id), b"uploaded before its collector died")
    with db.transaction() as s:
        s.execute(
            update(Pack)
            .where(Pack.id == "a" * 64)
            .values(created_at=datetime.now(UTC) - ABANDONED_AFTER - timedelta(seconds=1))
        )

    assert collect_garbage(repo).deleted_packs == 1

    assert pack_keys(store) == {pack_key(CONTAINER, "b" * 64)}  # a young one may be in use
    # Deleted and buried: the next collector deletes it once more, then forgets it.
    states = {p.pack_id: p.state for p in repo.index.packs(CONTAINER)}
    assert states == {"a" * 64: "dead", "b" * 64: "pending"}
    collect_garbage(repo)
    assert [p.pack_id for p in repo.index.packs(CONTAINER)] == ["b" * 64]
