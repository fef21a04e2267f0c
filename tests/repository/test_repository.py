"""Backup, restore and delete through the facade, on real sparse files."""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from ashbox.errors import (
    BackupNotFound,
    CorruptData,
    InvalidBackup,
    InvalidInput,
    PackAbandoned,
    TaskCancelled,
    VolumeIOError,
)
from ashbox.repository.manifest import manifest_key
from ashbox.repository.pack import decode_pack, pack_id_of
from ashbox.repository.repository import Repository
from ashbox.volumes import create_volume_file, open_for_write

from ..storage.memory_store import MemoryStore
from .conftest import BLOCK, CONTAINER, make_image, pack_keys, sha256
from .memory_index import ABANDONED, DEAD, LIVE, PENDING, MemoryIndex


@pytest.mark.parametrize(
    ("seed", "size"),
    [(1, 0), (2, 1), (3, BLOCK), (4, 7 * BLOCK + 123), (5, 200 * BLOCK + 4095), (6, 333_333)],
)
def test_a_backup_restores_to_a_new_volume_byte_for_byte(
    repo: Repository, tmp_path: Path, seed: int, size: int
) -> None:
    source = make_image(tmp_path / "src", size, seed=seed)
    repo.backup("b1", source)
    target = tmp_path / "dst"
    create_volume_file(target, size)
    repo.restore("b1", target, new_volume=True)
    assert sha256(target) == sha256(source)


def test_holes_are_neither_stored_nor_written_to_a_new_volume(
    repo: Repository, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    create_volume_file(source, 100 * BLOCK)
    with open_for_write(source) as w:
        w.write(os.urandom(BLOCK), 10 * BLOCK)
        w.write(bytes(3 * BLOCK), 50 * BLOCK)  # written zeros are holes too
    stats = repo.backup("b1", source)
    assert (stats.new_blobs, stats.reused_blobs, stats.hole_blocks) == (1, 0, 99)
    target = tmp_path / "dst"
    create_volume_file(target, 100 * BLOCK)
    repo.restore("b1", target, new_volume=True)
    assert sha256(target) == sha256(source)
    assert os.stat(target).st_blocks * 512 <= 2 * BLOCK


def test_pages_of_zeros_inside_blocks_stay_holes_on_a_new_volume(
    repo: Repository, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    create_volume_file(source, 4 * BLOCK)
    with open_for_write(source) as w:  # one page of data in each of two blocks
        w.write(os.urandom(4096), 8192)
        w.write(os.urandom(4096), 2 * BLOCK + BLOCK - 4096)
    repo.backup("b1", source)
    for new_volume, most in ((True, 2 * 4096), (False, 2 * BLOCK)):
        target = tmp_path / f"dst-{new_volume}"
        create_volume_file(target, 4 * BLOCK)
        repo.restore("b1", target, new_volume=new_volume)
        assert sha256(target) == sha256(source)
        assert os.stat(target).st_blocks * 512 <= most


def test_a_restore_onto_a_larger_volume_zeroes_holes_and_leaves_the_tail(
    repo: Repository, tmp_path: Path
) -> None:
    size = 40 * BLOCK + 100
    source = make_image(tmp_path / "src", size, seed=7)
    repo.backup("b1", source)
    target = tmp_path / "dst"
    target.write_bytes(b"\xee" * (size + 5 * BLOCK))
    repo.restore("b1", target, new_volume=False)
    restored = target.read_bytes()
    assert restored[:size] == source.read_bytes()
    assert restored[size:] == b"\xee" * (5 * BLOCK)


def test_a_restore_onto_a_smaller_volume_is_refused(repo: Repository, tmp_path: Path) -> None:
    source = make_image(tmp_path / "src", 10 * BLOCK, seed=8)
    repo.backup("b1", source)
    target = tmp_path / "dst"
    create_volume_file(target, 10 * BLOCK - 1)
    with pytest.raises(VolumeIOError, match="fewer than"):
        repo.restore("b1", target, new_volume=False)


def test_stats_account_for_every_block_and_every_stored_byte(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    size = 150 * BLOCK + 10
    source = make_image(tmp_path / "src", size, seed=9)
    stats = repo.backup("b1", source)
    assert stats.volume_size == size
    assert stats.hole_blocks + stats.new_blobs + stats.reused_blobs == 151
    keys = pack_keys(store)
    assert stats.packs == len(keys) > 1
    assert stats.stored_bytes == sum(len(store.objects[k]) for k in keys)
    manifest = repo.read_manifest("b1")
    assert len({b for _, b in manifest.blocks() if b is not None}) == stats.new_blobs


def test_every_pack_is_well_formed_and_named_by_its_hash(
    repo: Repository, store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    repo.backup("b1", make_image(tmp_path / "src", 100 * BLOCK, seed=10))
    located = index.locate(CONTAINER, list(repo.read_manifest("b1").blob_ids()))
    seen = 0
    for key in pack_keys(store):
        data = store.objects[key]
        pack_id = key.rsplit("/", 1)[1]
        assert pack_id_of(data) == pack_id
        assert key == f"{CONTAINER}/data/{pack_id[:2]}/{pack_id}"
        assert len(data) <= 8 * BLOCK + 1024
        for entry in decode_pack(data):
            assert located[entry.blob_id] == entry.location(pack_id)
            seen += 1
    assert seen == len(located)


def test_the_manifest_records_parent_metadata_and_sizes(repo: Repository, tmp_path: Path) -> None:
    source = make_image(tmp_path / "src", 5 * BLOCK + 1, seed=11)
    repo.backup("b1", source)
    repo.backup("b2", source, parent_id="b1", metadata={"volume_id": "v1", "name": "ünïcode"})
    manifest = repo.read_manifest("b2")
    assert manifest.backup_id == "b2"
    assert manifest.parent_id == "b1"
    assert dict(manifest.metadata) == {"volume_id": "v1", "name": "ünïcode"}
    assert (manifest.volume_size, manifest.block_size, manifest.block_count) == (
        5 * BLOCK + 1,
        BLOCK,
        6,
    )
    assert repo.read_manifest("b1").parent_id is None


def test_reading_the_manifest_of_an_unknown_backup_is_not_found(repo: Repository) -> None:
    with pytest.raises(BackupNotFound):
        repo.read_manifest("nope")


@pytest.mark.parametrize("bad", ["", "a/b", "../x", ".hidden"])
def test_a_backup_id_that_cannot_name_an_object_is_refused(
    repo: Repository, tmp_path: Path, bad: str
) -> None:
    with pytest.raises(InvalidBackup):
        repo.backup(bad, make_image(tmp_path / "src", BLOCK, seed=1))


def test_a_second_identical_volume_stores_nothing_new(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    first = make_image(tmp_path / "a", 120 * BLOCK + 7, seed=12)
    second = tmp_path / "b"
    second.write_bytes(first.read_bytes())
    repo.backup("b1", first)
    before = pack_keys(store)
    stats = repo.backup("b2", second)
    assert (stats.new_blobs, stats.stored_bytes, stats.packs) == (0, 0, 0)
    assert pack_keys(store) == before
    assert stats.reused_blobs + stats.hole_blocks == 121


def test_a_block_repeated_within_a_volume_is_stored_once(repo: Repository, tmp_path: Path) -> None:
    source = tmp_path / "src"
    block = os.urandom(BLOCK)
    source.write_bytes(block * 50 + os.urandom(BLOCK))
    stats = repo.backup("b1", source)
    assert (stats.new_blobs, stats.reused_blobs, stats.hole_blocks) == (2, 49, 0)


def test_an_incremental_after_a_small_change_stores_little(
    repo: Repository, tmp_path: Path
) -> None:
    source = make_image(tmp_path / "src", 200 * BLOCK, seed=13)
    old = source.read_bytes()
    full = repo.backup("b1", source)
    with open_for_write(source) as w:
        for n in (3, 77, 150):
            w.write(os.urandom(100), n * BLOCK + 50)
    incremental = repo.backup("b2", source, parent_id="b1")
    assert incremental.new_blobs <= 3
    assert incremental.stored_bytes <= 3 * BLOCK + 1024
    assert incremental.stored_bytes < full.stored_bytes / 5
    for backup_id, expected in (("b1", old), ("b2", source.read_bytes())):
        target = tmp_path / backup_id
        create_volume_file(target, len(expected))
        repo.restore(backup_id, target, new_volume=True)
        assert target.read_bytes() == expected


def test_deleting_one_of_two_sharing_backups_keeps_the_other_restorable(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    source = make_image(tmp_path / "src", 100 * BLOCK, seed=14)
    repo.backup("b1", source)
    with open_for_write(source) as w:
        w.write(os.urandom(5 * BLOCK), 20 * BLOCK)
    repo.backup("b2", source)
    repo.delete("b1")
    with pytest.raises(BackupNotFound):
        repo.read_manifest("b1")
    target = tmp_path / "dst"
    create_volume_file(target, 100 * BLOCK)
    repo.restore("b2", target, new_volume=True)
    assert sha256(target) == sha256(source)


def test_deleting_every_backup_leaves_no_pack_and_no_manifest(
    repo: Repository, store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    source = make_image(tmp_path / "src", 80 * BLOCK + 3, seed=15)
    repo.backup("b1", source)
    with open_for_write(source) as w:
        w.write(os.urandom(9 * BLOCK), 30 * BLOCK)
    repo.backup("b2", source)
    repo.backup("b3", make_image(tmp_path / "other", 30 * BLOCK, seed=16))
    for backup_id in ("b2", "b3", "b1"):
        repo.delete(backup_id)
    assert sorted(store.objects) == [f"{CONTAINER}/config"]
    rows = index.containers[CONTAINER]
    assert (rows.packs, rows.blobs, rows.refs) == ({}, {}, {})


def test_a_second_delete_is_a_no_op(repo: Repository, store: MemoryStore, tmp_path: Path) -> None:
    repo.backup("b1", make_image(tmp_path / "src", 20 * BLOCK, seed=17))
    repo.delete("b1")
    calls = store.calls["delete"]
    repo.delete("b1")
    assert store.calls["delete"] == calls + 2  # only the (missing) manifest and record again
    repo.delete("never-existed")


def test_a_delete_retries_dead_packs_left_by_a_crashed_delete(
    repo: Repository, store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    repo.backup("b1", make_image(tmp_path / "a", 20 * BLOCK, seed=18))
    repo.backup("b2", make_image(tmp_path / "b", 20 * BLOCK, seed=19))
    dead = index.release(CONTAINER, "b1")  # a delete that crashed before the store deletes
    assert dead and all(f"{CONTAINER}/data/{p[:2]}/{p}" in store.objects for p in dead)
    repo.delete("b2")
    assert pack_keys(store) == set()
    assert index.packs_in(CONTAINER, DEAD) == set()


class Cancel:
    """A progress callback that cancels the task once `after` bytes are done."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))
        if done >= self.after:
            raise TaskCancelled("cancelled by the test")


def test_a_cancelled_backup_leaves_pending_packs_that_discard_incomplete_abandons(
    repo: Repository, store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    size = 3000 * BLOCK
    source = tmp_path / "src"
    source.write_bytes(os.urandom(size))
    with pytest.raises(TaskCancelled):
        repo.backup("b1", source, progress=Cancel(after=size // 2))
    pending = index.pending_packs(CONTAINER, "b1")
    live = index.packs_in(CONTAINER, LIVE)
    assert pending, "the packs in flight at the cancel stay pending"
    assert live, "packs committed before the cancel"
    assert f"{CONTAINER}/backups/b1" not in store.objects
    stored = {k.rsplit("/", 1)[1] for k in pack_keys(store)}
    assert stored <= live | set(pending)
    repo.discard_incomplete("b1")
    assert index.pending_packs(CONTAINER, "b1") == []
    assert index.packs_in(CONTAINER, PENDING) == set()
    # With no grace period (this repository's) they are deleted at once; a late
    # upload of one can no longer be committed.
    assert index.packs_in(CONTAINER, DEAD) == set()
    assert {k.rsplit("/", 1)[1] for k in pack_keys(store)} == live
    with pytest.raises(PackAbandoned):
        index.commit_pack(CONTAINER, pending[0], 1, [], "b1")


def test_abandoned_packs_wait_out_the_grace_period(
    store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    """A late run may still be uploading an abandoned pack: with a grace period
    its object stays until the collector deletes dead packs past it."""
    repo = Repository.open(
        store, CONTAINER, index, block_size=BLOCK, pack_size=8 * BLOCK, gc_grace_seconds=3600
    )
    source = tmp_path / "src"
    source.write_bytes(os.urandom(3000 * BLOCK))
    with pytest.raises(TaskCancelled):
        repo.backup("b1", source, progress=Cancel(after=1500 * BLOCK))
    pending = index.pending_packs(CONTAINER, "b1")
    assert pending

    repo.discard_incomplete("b1")

    assert index.packs_in(CONTAINER, ABANDONED) == set(pending)
    with pytest.raises(PackAbandoned):
        index.commit_pack(CONTAINER, pending[0], 1, [], "b1")
    assert repo.delete_dead_packs() == []  # within the grace period


def test_an_upload_that_outlasts_the_grace_period_is_deleted_by_the_next_gc(
    store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    """An abandoned pack's object is deleted twice, a grace period apart, so a
    late run's upload that lands after the first deletion leaves nothing."""
    repo = Repository.open(
        store, CONTAINER, index, block_size=BLOCK, pack_size=8 * BLOCK, gc_grace_seconds=3600
    )
    source = tmp_path / "src"
    source.write_bytes(os.urandom(3000 * BLOCK))
    with pytest.raises(TaskCancelled):
        repo.backup("b1", source, progress=Cancel(after=1500 * BLOCK))
    pending = sorted(index.pending_packs(CONTAINER, "b1"))
    late = {key: store.objects[key] for key in pack_keys(store) if key.endswith(pending[0])}
    repo.discard_incomplete("b1")
    _age(index, pending, hours=2)

    assert sorted(repo.delete_dead_packs()) == pending  # deleted, then buried
    assert index.packs_in(CONTAINER, DEAD) == set(pending)
    store.objects.update(late)  # the late run's upload lands now
    assert repo.delete_dead_packs() == []  # dead for less than the grace period
    _age(index, pending, hours=2)
    assert sorted(repo.delete_dead_packs()) == pending  # deleted again, and forgotten
    assert not set(late) & set(pack_keys(store))
    assert index.packs_in(CONTAINER, DEAD) == set()


def _age(index: MemoryIndex, pack_ids: list[str], *, hours: int) -> None:
    for pack_id in pack_ids:
        row = index.containers[CONTAINER].packs[pack_id]
        assert row.dead_at is not None
        row.dead_at -= timedelta(hours=hours)


def test_a_retried_backup_completes_and_reuses_what_the_first_attempt_stored(
    repo: Repository, store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    size = 3000 * BLOCK + 77
    source = tmp_path / "src"
    source.write_bytes(os.urandom(size))
    with pytest.raises(TaskCancelled):
        repo.backup("b1", source, progress=Cancel(after=size // 2))
    blobs = index.containers[CONTAINER].blobs.values()
    first_attempt = sum(1 for loc in blobs if loc.raw_length == BLOCK)  # not page tables
    stats = repo.backup("b1", source)  # no explicit discard: backup does it first
    assert stats.reused_blobs >= first_attempt > 1000
    assert stats.new_blobs + stats.reused_blobs == 3001
    assert index.packs_in(CONTAINER, PENDING) == set()
    target = tmp_path / "dst"
    create_volume_file(target, size)
    repo.restore("b1", target, new_volume=True)
    assert sha256(target) == sha256(source)
    repo.delete("b1")
    assert pack_keys(store) == set()


def test_progress_rises_to_the_volume_size(repo: Repository, tmp_path: Path) -> None:
    size = 2000 * BLOCK + 5
    source = make_image(tmp_path / "src", size, seed=20)
    calls: list[tuple[int, int]] = []
    repo.backup("b1", source, progress=lambda d, t: calls.append((d, t)))
    assert len(calls) > 3
    assert all(t == size for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert calls[-1] == (size, size)
    restored: list[tuple[int, int]] = []
    target = tmp_path / "dst"
    create_volume_file(target, size)
    repo.restore("b1", target, new_volume=True, progress=lambda d, t: restored.append((d, t)))
    assert restored[-1] == (size, size)
    assert all(0 <= d <= t == size for d, t in restored)


def test_the_index_is_only_called_from_the_callers_thread(
    repo: Repository, index: MemoryIndex, tmp_path: Path
) -> None:
    source = make_image(tmp_path / "src", 500 * BLOCK, seed=21)
    repo.backup("b1", source)
    target = tmp_path / "dst"
    create_volume_file(target, 500 * BLOCK)
    repo.restore("b1", target, new_volume=True)
    repo.delete("b1")
    assert index.threads == {threading.get_ident()}


def test_a_corrupt_blob_fails_the_restore_naming_backup_offset_and_pack(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.write_bytes(os.urandom(20 * BLOCK))
    repo.backup("b1", source)
    blocks = {b for _, b in repo.read_manifest("b1").blocks()}
    key = next(
        k for k in sorted(pack_keys(store)) if decode_pack(store.objects[k])[0].blob_id in blocks
    )
    damaged = bytearray(store.objects[key])
    damaged[100] ^= 0x01  # inside the first blob
    store.objects[key] = bytes(damaged)
    pack_id = key.rsplit("/", 1)[1]
    first = decode_pack(bytes(damaged))[0].blob_id
    offset = next(i for i, b in repo.read_manifest("b1").blocks() if b == first) * BLOCK
    target = tmp_path / "dst"
    create_volume_file(target, 20 * BLOCK)
    with pytest.raises(CorruptData) as e:
        repo.restore("b1", target, new_volume=True)
    assert "b1" in e.value.message
    assert f"offset {offset}" in e.value.message
    assert pack_id in e.value.message


def test_a_missing_pack_fails_the_restore_naming_it(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.write_bytes(os.urandom(20 * BLOCK))
    repo.backup("b1", source)
    blocks = {b for _, b in repo.read_manifest("b1").blocks()}
    key = next(
        k for k in sorted(pack_keys(store)) if decode_pack(store.objects[k])[0].blob_id in blocks
    )
    store.delete(key)
    target = tmp_path / "dst"
    create_volume_file(target, 20 * BLOCK)
    with pytest.raises(CorruptData, match=f"b1.*{key.rsplit('/', 1)[1]}.*missing"):
        repo.restore("b1", target, new_volume=True)


def test_a_blob_missing_from_the_index_fails_the_restore(
    repo: Repository, index: MemoryIndex, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.write_bytes(os.urandom(4 * BLOCK))
    repo.backup("b1", source)
    index.containers[CONTAINER].blobs.clear()
    target = tmp_path / "dst"
    create_volume_file(target, 4 * BLOCK)
    with pytest.raises(CorruptData, match="Backup b1: the block at offset 0 needs blob"):
        repo.restore("b1", target, new_volume=True)


def test_adjacent_blobs_are_fetched_in_one_ranged_read(
    store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    repo = Repository.open(store, CONTAINER, index, block_size=BLOCK, pack_size=64 * BLOCK)
    source = tmp_path / "src"
    source.write_bytes(os.urandom(256 * BLOCK))
    stats = repo.backup("b1", source)
    target = tmp_path / "dst"
    create_volume_file(target, 256 * BLOCK)
    gets = store.calls["get"]
    repo.restore("b1", target, new_volume=True)
    assert store.calls["get"] - gets <= stats.packs + 1  # the manifest, then one read per pack
    assert sha256(target) == sha256(source)


def test_an_existing_config_decides_the_block_size(
    store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    Repository.open(store, CONTAINER, index, block_size=8192)
    repo = Repository.open(store, CONTAINER, index, block_size=1 << 20)
    assert repo.block_size == 8192
    source = make_image(tmp_path / "src", 50 * 8192 + 1, seed=22, block=8192)
    repo.backup("b1", source)
    assert repo.read_manifest("b1").block_size == 8192


def test_a_manifest_stored_under_another_backups_key_is_corrupt(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    repo.backup("b1", make_image(tmp_path / "src", BLOCK, seed=23))
    store.put(manifest_key(CONTAINER, "b2"), store.get(manifest_key(CONTAINER, "b1")))
    with pytest.raises(CorruptData, match="describes backup b1"):
        repo.read_manifest("b2")


@pytest.mark.parametrize(
    "options",
    [
        {"pack_size": BLOCK - 1},
        {"threads": 0},
        {"upload_threads": 0},
        {"compression_level": 23},
    ],
)
def test_options_that_cannot_work_are_refused(
    store: MemoryStore, index: MemoryIndex, options: dict[str, int]
) -> None:
    with pytest.raises(InvalidInput):
        Repository.open(store, CONTAINER, index, block_size=BLOCK, **options)
