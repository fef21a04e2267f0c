"""The pipelines on the posix store, at real block sizes, and across windows."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ashbox.repository.reader import ReaderSettings, restore_backup
from ashbox.repository.repository import Repository
from ashbox.storage import PosixStore
from ashbox.volumes import create_volume_file, open_for_write

from ..storage.memory_store import MemoryStore
from .conftest import BLOCK, CONTAINER, make_image, sha256
from .memory_index import MemoryIndex

MiB = 1 << 20


def test_a_backup_on_the_posix_store_restores_and_deletes_cleanly(tmp_path: Path) -> None:
    store = PosixStore(tmp_path / "store")
    repo = Repository.open(store, CONTAINER, MemoryIndex(), block_size=BLOCK, pack_size=16 * BLOCK)
    source = make_image(tmp_path / "src", 300 * BLOCK + 99, seed=31)
    stats = repo.backup("b1", source)
    assert stats.packs == len(list(store.list(f"{CONTAINER}/data/")))
    target = tmp_path / "dst"
    create_volume_file(target, 300 * BLOCK + 99)
    repo.restore("b1", target, new_volume=True)
    assert sha256(target) == sha256(source)
    repo.delete("b1")
    assert sorted(store.list(CONTAINER)) == [f"{CONTAINER}/config"]


@pytest.mark.parametrize("window", [1, 2, 3, 7])
def test_a_restore_in_small_windows_writes_every_block(tmp_path: Path, window: int) -> None:
    store, index = MemoryStore(), MemoryIndex()
    repo = Repository.open(store, CONTAINER, index, block_size=BLOCK, pack_size=4 * BLOCK)
    size = 60 * BLOCK + 1
    source = make_image(tmp_path / "src", size, seed=32)
    repo.backup("b1", source)
    target = tmp_path / "dst"
    target.write_bytes(b"\x55" * size)
    settings = ReaderSettings(store, CONTAINER, index, repo.codec, threads=3)
    restore_backup(
        settings,
        repo.read_manifest("b1"),
        target,
        new_volume=False,
        progress=lambda d, t: None,
        window_blocks=window,
    )
    assert sha256(target) == sha256(source)


def test_a_large_sparse_image_round_trips_with_default_sizes(tmp_path: Path) -> None:
    store = PosixStore(tmp_path / "store")
    repo = Repository.open(store, CONTAINER, MemoryIndex(), pack_size=8 * MiB)
    size = 96 * MiB + 12345
    source = tmp_path / "src"
    create_volume_file(source, size)
    with open_for_write(source) as w:
        for n in range(0, 96, 3):
            w.write(os.urandom(MiB // 2) + b"text " * (MiB // 10), n * MiB + 4096)
        w.write(os.urandom(12345), 96 * MiB)
    stats = repo.backup("b1", source)
    assert (stats.hole_blocks, stats.new_blobs, stats.reused_blobs) == (32, 34, 31)
    assert stats.packs > 2
    target = tmp_path / "dst"
    target.write_bytes(b"\xff" * (size + MiB))
    repo.restore("b1", target, new_volume=False)
    assert sha256(target, size) == sha256(source)
    assert target.read_bytes()[size:] == b"\xff" * MiB


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(0, 40 * BLOCK),
    seed=st.integers(0, 2**32),
    pack_blocks=st.integers(1, 10),
    threads=st.integers(1, 3),
)
def test_any_image_round_trips_whatever_its_size_and_the_pack_size(
    size: int, seed: int, pack_blocks: int, threads: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo = Repository.open(
            MemoryStore(),
            CONTAINER,
            MemoryIndex(),
            block_size=BLOCK,
            pack_size=pack_blocks * BLOCK,
            threads=threads,
            upload_threads=threads,
        )
        source = make_image(root / "src", size, seed=seed)
        stats = repo.backup("b1", source)
        assert stats.hole_blocks + stats.new_blobs + stats.reused_blobs == -(-size // BLOCK)
        target = root / "dst"
        target.write_bytes(b"\x99" * (size + 3))
        repo.restore("b1", target, new_volume=False)
        assert target.read_bytes() == source.read_bytes() + b"\x99" * 3
