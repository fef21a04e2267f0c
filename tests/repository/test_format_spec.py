"""docs/format.md checked against the code: a reader written from the spec
alone (struct, blake3, zstandard; no ashbox.repository codec) restores a backup."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import blake3
import zstandard

from ashbox.repository.manifest import Manifest
from ashbox.repository.repository import Repository

from ..storage.memory_store import MemoryStore
from .conftest import BLOCK, CONTAINER, make_image


def read_pack(pack: bytes) -> dict[bytes, tuple[int, int, int, int]]:
    """§5: blob id -> (offset, length, raw length, flags), from the trailer."""
    assert pack[:8] == b"ASHPACK\x01"
    count, checksum, version, reserved, magic = struct.unpack("<I16sB3s8s", pack[-32:])
    assert (version, reserved, magic) == (1, b"\0\0\0", b"ASHPKEND")
    body = pack[-32 - 84 * count : -32]
    assert blake3.blake3(body).digest()[:16] == checksum
    out = {}
    for i in range(count):
        blob_id, base, offset, length, raw_length, flags = struct.unpack_from(
            "<32s32sQIIB", body, i * 84
        )
        assert base == bytes(32)
        out[blob_id] = (offset, length, raw_length, flags)
    return out


def read_manifest(data: bytes) -> tuple[int, int, list[bytes | None]]:
    """§6: volume size, block size and the blob id (or None) of every block."""
    magic, version, flags, _ = struct.unpack_from("<8sBBH", data)
    assert (magic, version) == (b"ASHMANIF", 2)
    body = data[12:]
    if flags & 1:
        body = zstandard.ZstdDecompressor().decompress(body)
    assert blake3.blake3(body[:-32]).digest() == body[-32:]
    volume_size, block_size, count, _ = struct.unpack_from("<QIQq", body)
    pos = 28
    for _ in ("backup id", "parent id"):
        (n,) = struct.unpack_from("<H", body, pos)
        pos += 2 + n
    (pairs,) = struct.unpack_from("<I", body, pos)
    pos += 4
    for _ in range(pairs):
        (k,) = struct.unpack_from("<H", body, pos)
        pos += 2 + k
        (v,) = struct.unpack_from("<I", body, pos)
        pos += 4 + v
    blocks: list[bytes | None] = []
    for i in range(count):
        kind = body[pos + 65 * i]
        blocks.append(None if kind == 0 else body[pos + 65 * i + 1 : pos + 65 * i + 33])
    return volume_size, block_size, blocks


def test_a_reader_written_from_the_spec_alone_restores_a_backup(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    source = make_image(tmp_path / "src", 90 * BLOCK + 11, seed=41)
    repo.backup("b1", source, metadata={"k": "v"}, parent_id="b0")
    assert json.loads(store.get(f"{CONTAINER}/config"))["format_version"] == 1
    blobs: dict[bytes, bytes] = {}
    for key in store.list(f"{CONTAINER}/data/"):
        pack = store.get(key)
        assert blake3.blake3(pack).hexdigest() == key.rsplit("/", 1)[1]
        for blob_id, (offset, length, raw_length, flags) in read_pack(pack).items():
            payload = pack[offset : offset + length]
            raw = zstandard.ZstdDecompressor().decompress(payload) if flags & 1 else payload
            assert len(raw) == raw_length and blake3.blake3(raw).digest() == blob_id
            blobs[blob_id] = raw
    volume_size, block_size, blocks = read_manifest(store.get(f"{CONTAINER}/backups/b1"))
    image = b"".join(
        blobs[b] if b is not None else bytes(min(block_size, volume_size - i * block_size))
        for i, b in enumerate(blocks)
    )
    assert image == source.read_bytes()


def test_a_manifest_with_an_uncompressed_body_is_read_too(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    repo.backup("b1", make_image(tmp_path / "src", 9 * BLOCK, seed=42))
    data = store.get(f"{CONTAINER}/backups/b1")
    raw = data[:9] + b"\0" + data[10:12] + zstandard.ZstdDecompressor().decompress(data[12:])
    assert Manifest.decode(raw) == Manifest.decode(data)
