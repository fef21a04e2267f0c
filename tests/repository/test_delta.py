"""Page deltas: changed blocks stored as their changed pages, restored exactly,
bases kept alive, chains bounded."""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ashbox.errors import CorruptBlob, CorruptData
from ashbox.repository import delta_bases
from ashbox.repository.blob import BlobCodec
from ashbox.repository.delta import (
    MAX_DEPTH,
    PAGE_SIZE,
    PageHasher,
    apply_delta,
    changed_pages,
    decode_delta_blob,
    encode_delta,
    encode_delta_blob,
    page_views,
)
from ashbox.repository.manifest import Manifest
from ashbox.repository.repository import Repository
from ashbox.volumes import create_volume_file, open_for_write

from ..storage.memory_store import MemoryStore
from .conftest import CONTAINER, sha256
from .gc_helpers import restored_sha
from .memory_index import MemoryIndex

BLOCK = 16 * PAGE_SIZE


@pytest.fixture
def repo(store: MemoryStore, index: MemoryIndex) -> Repository:
    return Repository.open(store, CONTAINER, index, block_size=BLOCK, pack_size=8 * BLOCK)


@given(st.integers(1, 5 * PAGE_SIZE), st.data())
def test_a_delta_applied_to_its_base_gives_the_block(length: int, data: st.DataObject) -> None:
    rng = random.Random(length)
    base = rng.randbytes(length)
    block = bytearray(base)
    pages = sorted(data.draw(st.sets(st.integers(0, (length - 1) // PAGE_SIZE))))
    for page in pages:
        start = page * PAGE_SIZE
        end = min(start + PAGE_SIZE, length)
        block[start:end] = rng.randbytes(end - start)
    assert apply_delta(base, encode_delta(block, pages)) == block


def test_a_table_of_a_block_cut_once_into_pages_is_its_page_table() -> None:
    hasher = PageHasher(b"seed")
    block = os.urandom(3 * PAGE_SIZE + 100)
    pages = page_views(block)
    assert [len(p) for p in pages] == [PAGE_SIZE] * 3 + [100]
    assert hasher.table_of(pages) == hasher.table(block)
    assert hasher.table_of(pages) != PageHasher(b"other seed").table_of(pages)


def test_a_page_table_sees_a_single_changed_bit_in_any_page() -> None:
    hasher = PageHasher(b"seed")
    block = bytearray(os.urandom(8 * PAGE_SIZE + 100))
    table = hasher.table(block)
    assert len(table) == 9 * 8
    for page, bit in [(0, 0), (3, 31), (5, 32767), (8, 7)]:
        changed = bytearray(block)
        changed[page * PAGE_SIZE + bit // 8] ^= 1 << (bit % 8)
        assert changed_pages(hasher.table(changed), table) == [page]


def test_a_delta_that_does_not_rebuild_its_block_is_corrupt() -> None:
    codec = BlobCodec()
    base = os.urandom(4 * PAGE_SIZE)
    block = bytearray(base)
    block[PAGE_SIZE] ^= 1
    flags, payload = encode_delta_blob(codec, block, [1])
    blob_id = codec.blob_id(block)
    assert decode_delta_blob(codec, blob_id, payload, flags, len(block), base) == block
    with pytest.raises(CorruptBlob):
        decode_delta_blob(codec, blob_id, payload, flags, len(block), os.urandom(len(base)))
    with pytest.raises(CorruptBlob):
        apply_delta(base, encode_delta(block, [1])[:-1])


def write_pages(path: Path, pages: list[int], seed: int) -> None:
    rng = random.Random(seed)
    with open_for_write(path) as w:
        for page in pages:
            w.write(rng.randbytes(PAGE_SIZE), page * PAGE_SIZE)


def test_an_incremental_after_scattered_page_writes_stores_about_those_pages(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    size = 64 * BLOCK
    source = tmp_path / "src"
    source.write_bytes(os.urandom(size))
    repo.backup("b1", source)
    before = sum(len(v) for v in store.objects.values())
    pages = random.Random(5).sample(range(size // PAGE_SIZE), 40)
    write_pages(source, pages, seed=6)
    stats = repo.backup("b2", source, parent_id="b1")
    added = sum(len(v) for v in store.objects.values()) - before
    assert stats.delta_blobs == stats.new_blobs > 0
    assert added < 40 * PAGE_SIZE * 1.5
    target = tmp_path / "dst"
    create_volume_file(target, size)
    repo.restore("b2", target, new_volume=True)
    assert sha256(target) == sha256(source)


def test_an_unchanged_incremental_stores_only_its_manifest(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.write_bytes(os.urandom(32 * BLOCK))
    repo.backup("b1", source)
    packs = set(store.list(f"{CONTAINER}/data/"))
    stats = repo.backup("b2", source, parent_id="b1")
    assert (stats.new_blobs, stats.stored_bytes) == (0, 0)
    assert set(store.list(f"{CONTAINER}/data/")) == packs


def test_delta_chains_stay_within_the_bound_over_many_incrementals(
    repo: Repository, index: MemoryIndex, tmp_path: Path
) -> None:
    size = 8 * BLOCK
    source = tmp_path / "src"
    source.write_bytes(os.urandom(size))
    repo.backup("b0", source)
    images = {"b0": source.read_bytes()}
    for n in range(1, 9):
        write_pages(source, [n, 16 + n, 100 + n], seed=n)
        repo.backup(f"b{n}", source, parent_id=f"b{n - 1}")
        images[f"b{n}"] = source.read_bytes()
    blobs = index.containers[CONTAINER].blobs
    for loc in blobs.values():
        depth, current = 0, loc
        while current.base_id is not None:
            depth += 1
            current = blobs[current.base_id]
        assert depth <= MAX_DEPTH  # a block is read from at most MAX_DEPTH + 1 blobs
    assert any(loc.base_id is not None for loc in blobs.values())
    for backup_id, image in images.items():
        target = tmp_path / backup_id
        create_volume_file(target, size)
        repo.restore(backup_id, target, new_volume=True)
        assert target.read_bytes() == image


def test_deleting_the_parent_keeps_the_incremental_restorable(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    size = 16 * BLOCK
    source = tmp_path / "src"
    source.write_bytes(os.urandom(size))
    repo.backup("b1", source)
    write_pages(source, [3, 40, 41, 200], seed=9)
    stats = repo.backup("b2", source, parent_id="b1")
    assert stats.delta_blobs == 3
    repo.delete("b1")
    repo.verify("b2")
    target = tmp_path / "dst"
    create_volume_file(target, size)
    repo.restore("b2", target, new_volume=True)
    assert sha256(target) == sha256(source)
    repo.delete("b2")
    assert list(store.list(f"{CONTAINER}/data/")) == []


def test_a_damaged_base_fails_the_verify_of_the_delta_naming_its_offset(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.write_bytes(os.urandom(BLOCK))
    repo.backup("b1", source)
    write_pages(source, [2], seed=3)
    repo.backup("b2", source, parent_id="b1")
    manifest = repo.read_manifest("b1")
    base = manifest.blob_id(0)
    for key, data in store.objects.items():
        if key.startswith(f"{CONTAINER}/data/") and base is not None and base in data:
            damaged = bytearray(data)
            damaged[20] ^= 0xFF
            store.objects[key] = bytes(damaged)
    assert base is not None
    pack_id = repo.index.locate(CONTAINER, [base])[base].pack_id
    with pytest.raises(CorruptData, match="Backup b2: the block at offset 0") as failure:
        repo.verify("b2")
    assert f"rests on blob {base.hex()} in pack {pack_id}, which is corrupt" in str(failure.value)


def test_a_changed_block_found_stored_leaves_no_reference_to_its_unused_base(
    repo: Repository, index: MemoryIndex, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    first, second = os.urandom(BLOCK), os.urandom(BLOCK)
    source.write_bytes(first + second)
    repo.backup("b1", source)
    old = repo.read_manifest("b1")
    with open_for_write(source) as w:  # block 1 becomes a copy of block 0: stored already
        w.write(first, BLOCK)
    repo.backup("b2", source, parent_id="b1")
    refs = index.references(CONTAINER)["b2"]
    assert old.blob_id(0) in refs
    assert old.blob_id(1) not in refs, "b2 keeps the base it planned on but did not use"
    assert refs == repo.read_manifest("b2").blob_ids()


def test_a_changed_block_stored_elsewhere_already_is_kept_as_a_delta_and_restores(
    repo: Repository, index: MemoryIndex, tmp_path: Path
) -> None:
    elsewhere, source = tmp_path / "other", tmp_path / "src"
    stored = os.urandom(BLOCK)
    elsewhere.write_bytes(os.urandom(BLOCK) + stored)
    repo.backup("other", elsewhere)  # another volume's backup holds the block
    near = bytearray(stored)
    near[:PAGE_SIZE] = os.urandom(PAGE_SIZE)  # one page away from it
    source.write_bytes(bytes(near))
    repo.backup("b1", source)
    with open_for_write(source) as w:
        w.write(stored, 0)
    stats = repo.backup("b2", source, parent_id="b1")
    assert stats.delta_blobs == 1  # not looked up: a page stored again
    assert stats.stored_bytes < 2 * PAGE_SIZE
    manifest = repo.read_manifest("b2")
    assert manifest.blob_id(0) == repo.read_manifest("other").blob_id(1)
    assert index.references(CONTAINER)["b2"] == manifest.blob_ids()
    repo.delete("b1")
    assert restored_sha(repo, "b2", tmp_path, BLOCK) == sha256(source)


def test_windows_read_ahead_past_the_last_data_leave_no_reference_behind(
    repo: Repository, index: MemoryIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delta_bases, "WINDOW_BLOCKS", 4)  # windows read ahead in a thread
    read_window = delta_bases.DeltaBases._read_window

    def slow_past_the_data(bases: delta_bases.DeltaBases, parent: Manifest, window: range) -> Any:
        if window.start >= 4:
            time.sleep(0.3)  # still referencing when the last block is done
        return read_window(bases, parent, window)

    monkeypatch.setattr(delta_bases.DeltaBases, "_read_window", slow_past_the_data)
    source = tmp_path / "src"
    source.write_bytes(os.urandom(32 * BLOCK))
    repo.backup("b1", source)
    source.unlink()
    create_volume_file(source, 32 * BLOCK)
    write_pages(source, [1, 2 * 16 + 3], seed=7)  # blocks 0 and 2; the rest are holes now
    repo.backup("b2", source, parent_id="b1")
    for thread in threading.enumerate():  # a window still being read would reference late
        if thread.name.startswith("ashbox-bases"):
            thread.join()
    assert index.references(CONTAINER)["b2"] == repo.read_manifest("b2").blob_ids()
    assert restored_sha(repo, "b2", tmp_path, 32 * BLOCK) == sha256(source)


def test_an_incremental_whose_parent_packs_died_stores_its_blocks_whole(
    repo: Repository, index: MemoryIndex, tmp_path: Path
) -> None:
    # The parent's manifest still names its blocks, but no backup holds them
    # and their packs are dead: the workers encode the changed blocks as deltas
    # ahead, the `reuse` finds their bases gone, and they are stored whole.
    size = 4 * BLOCK
    source = tmp_path / "src"
    source.write_bytes(os.urandom(size))
    repo.backup("b1", source)
    assert index.release(CONTAINER, "b1")
    write_pages(source, [1, 20], seed=4)
    stats = repo.backup("b2", source, parent_id="b1")
    assert (stats.new_blobs, stats.delta_blobs) == (4, 0)
    blobs = index.containers[CONTAINER].blobs
    assert all(blobs[b].base_id is None for b in repo.read_manifest("b2").blob_ids())
    target = tmp_path / "dst"
    create_volume_file(target, size)
    repo.restore("b2", target, new_volume=True)
    assert sha256(target) == sha256(source)
