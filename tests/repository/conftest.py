"""Fixtures for the repository: an in-memory store and index, tiny blocks and
packs so small images cross every boundary, and sparse test images."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from ashbox.repository.repository import Repository
from ashbox.volumes import create_volume_file, open_for_write

from ..storage.memory_store import MemoryStore
from .memory_index import MemoryIndex

BLOCK = 4096
CONTAINER = "volumebackups"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def index() -> MemoryIndex:
    return MemoryIndex()


@pytest.fixture
def repo(store: MemoryStore, index: MemoryIndex) -> Repository:
    return Repository.open(
        store,
        CONTAINER,
        index,
        block_size=BLOCK,
        pack_size=8 * BLOCK,
        threads=2,
        upload_threads=2,
        gc_grace_seconds=0,
    )


def make_image(path: Path, size: int, *, seed: int, block: int = BLOCK) -> Path:
    """A sparse image: holes, written zeros, random and compressible runs,
    repeated blocks, at offsets that are not block aligned."""
    rng = random.Random(seed)
    create_volume_file(path, size)
    repeated = rng.randbytes(block)
    with open_for_write(path) as w:
        offset = 0
        while offset < size:
            length = min(size - offset, rng.randint(1, 6 * block))
            kind = rng.choice(["hole", "zeros", "random", "text", "repeat"])
            if kind == "zeros":
                w.write(bytes(length), offset)
            elif kind == "random":
                w.write(rng.randbytes(length), offset)
            elif kind == "text":
                w.write((b"ashbox %d " % rng.randint(0, 9) * length)[:length], offset)
            elif kind == "repeat":
                aligned = offset - offset % block
                for start in range(aligned, min(size, offset + length), block):
                    chunk = repeated[: min(block, size - start)]
                    w.write(chunk, start)
            offset += length
    return path


def sha256(path: Path, length: int | None = None) -> str:
    data = path.read_bytes()
    return hashlib.sha256(data if length is None else data[:length]).hexdigest()


def pack_keys(store: MemoryStore) -> set[str]:
    return set(store.list(f"{CONTAINER}/data/"))
