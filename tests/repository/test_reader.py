"""The restore pipeline's sink and `verify`: every blob read and checked,
nothing written."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ashbox.errors import CorruptData
from ashbox.repository.pack import decode_pack
from ashbox.repository.reader import ReaderSettings, read_backup
from ashbox.repository.repository import Repository

from ..storage.memory_store import MemoryStore
from .conftest import BLOCK, CONTAINER, make_image, pack_keys
from .memory_index import MemoryIndex


class RecordingSink:
    """A sink that keeps what it is given, to rebuild the image in memory."""

    def __init__(self, size: int) -> None:
        self.image = bytearray(b"\x77" * size)
        self.zeroed = 0
        self._lock = threading.Lock()

    def write(self, offset: int, data: bytes | memoryview) -> None:
        with self._lock:
            self.image[offset : offset + len(data)] = data

    def zero(self, offset: int, length: int) -> None:
        with self._lock:
            self.image[offset : offset + length] = bytes(length)
            self.zeroed += length


def test_a_restore_into_a_sink_rebuilds_the_image(
    repo: Repository, store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    size = 90 * BLOCK + 17
    source = make_image(tmp_path / "src", size, seed=41)
    repo.backup("b1", source)
    sink = RecordingSink(size)
    settings = ReaderSettings(store, CONTAINER, index, repo.codec, threads=2)
    manifest = repo.read_manifest("b1")
    read_backup(settings, manifest, sink, zero_holes=True, progress=lambda d, t: None)
    assert bytes(sink.image) == source.read_bytes()
    holes = sum(manifest.block_length(i) for i, b in manifest.blocks() if b is None)
    assert sink.zeroed == holes > 0


def test_verifying_a_sound_backup_reads_every_pack_and_reports_progress(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    size = 50 * BLOCK + 5
    source = make_image(tmp_path / "src", size, seed=42)
    repo.backup("b1", source)
    gets_before = store.calls["get"]
    seen: list[tuple[int, int]] = []
    repo.verify("b1", progress=lambda done, total: seen.append((done, total)))
    assert store.calls["get"] - gets_before >= len(pack_keys(store))
    assert seen[-1] == (size, size)


def test_verifying_a_backup_with_a_flipped_byte_names_backup_offset_and_pack(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.write_bytes(os.urandom(12 * BLOCK))
    repo.backup("b1", source)
    blocks = {b for _, b in repo.read_manifest("b1").blocks()}
    key = next(
        k for k in sorted(pack_keys(store)) if decode_pack(store.objects[k])[0].blob_id in blocks
    )
    damaged = bytearray(store.objects[key])
    damaged[50] ^= 0x10
    store.objects[key] = bytes(damaged)
    first = decode_pack(bytes(damaged))[0].blob_id
    offset = next(i for i, b in repo.read_manifest("b1").blocks() if b == first) * BLOCK
    with pytest.raises(CorruptData) as e:
        repo.verify("b1")
    assert "b1" in e.value.message
    assert f"offset {offset}" in e.value.message
    assert key.rsplit("/", 1)[1] in e.value.message


def test_verifying_a_backup_whose_pack_is_gone_fails(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.write_bytes(os.urandom(6 * BLOCK))
    repo.backup("b1", source)
    for key in pack_keys(store):
        store.delete(key)
    with pytest.raises(CorruptData, match="missing"):
        repo.verify("b1")
