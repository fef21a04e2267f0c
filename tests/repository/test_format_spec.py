"""docs/format.md checked against the code: a reader written from the spec
alone (struct, blake3, zstandard, cryptography; no ashbox.repository codec)
restores a backup, unencrypted and encrypted, and an incremental of page deltas."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import blake3
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from ashbox.repository.crypto import KdfParams
from ashbox.repository.manifest import Manifest
from ashbox.repository.repository import Repository

from ..storage.memory_store import MemoryStore
from .conftest import BLOCK, CONTAINER, make_image
from .memory_index import MemoryIndex


def unlock(config: dict[str, object], secret: bytes) -> tuple[bytes, bytes]:
    """§10.1, §10.2: (blob id key, data key) from the first key slot `secret` opens."""
    assert (config["format_version"], config["hash"], config["encryption"]) == (
        2,
        "blake3-keyed",
        "aes-256-gcm",
    )
    slots = config["keys"]
    assert isinstance(slots, list)
    for slot in slots:
        assert slot["kdf"] == "argon2id"
        kek = Argon2id(
            salt=base64.b64decode(slot["salt"]),
            length=32,
            iterations=slot["iterations"],
            lanes=slot["lanes"],
            memory_cost=slot["memory_kib"],
        ).derive(secret)
        wrapped = base64.b64decode(slot["wrapped_key"])
        aad = f"ashbox key slot {config['repository_id']} {slot['id']}".encode()
        try:
            master = AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], aad)
        except InvalidTag:
            continue
        return (
            blake3.blake3(
                master, derive_key_context="ashbox repository 2026-11 blob id key"
            ).digest(),
            blake3.blake3(master, derive_key_context="ashbox repository 2026-11 data key").digest(),
        )
    raise AssertionError("no key slot opens with this secret")


def open_sealed(data_key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """§10.3: nonce (12) ‖ ciphertext ‖ tag (16)."""
    return AESGCM(data_key).decrypt(sealed[:12], sealed[12:], aad)


Entry = tuple[int, int, int, int, bytes | None]  # offset, length, raw length, flags, base


def read_pack(pack: bytes, data_key: bytes | None = None) -> dict[bytes, Entry]:
    """§5, §10.5: blob id -> (offset, length, raw length, flags, base id), from the trailer."""
    assert pack[:8] == b"ASHPACK\x01"
    count, checksum, version, flags, reserved, magic = struct.unpack("<I16sBB2s8s", pack[-32:])
    assert (version, reserved, magic) == (1, b"\0\0", b"ASHPKEND")
    assert flags == (1 if data_key else 0)
    size = 84 * count + (28 if data_key else 0)
    body = pack[-32 - size : -32]
    assert blake3.blake3(body).digest()[:16] == checksum
    if data_key:
        body = open_sealed(data_key, body, b"ashbox pack trailer")
    out = {}
    for i in range(count):
        blob_id, base, offset, length, raw_length, flags = struct.unpack_from(
            "<32s32sQIIB", body, i * 84
        )
        assert (base != bytes(32)) == bool(flags & 4)
        out[blob_id] = (offset, length, raw_length, flags, base if flags & 4 else None)
    return out


def rebuild(delta: bytes, base: bytes, length: int) -> bytes:
    """§4.1: the block of `length` bytes that the delta's pages make of `base`."""
    pages = -(-length // 4096)
    bitmap, pos = delta[: -(-pages // 8)], -(-pages // 8)
    block = bytearray(base)
    assert len(block) == length
    for p in range(pages):
        if bitmap[p >> 3] & (1 << (p & 7)):
            size = min(4096, length - 4096 * p)
            block[4096 * p : 4096 * p + size] = delta[pos : pos + size]
            pos += size
    assert pos == len(delta)
    return bytes(block)


def read_manifest(
    data: bytes, backup_id: str, data_key: bytes | None = None
) -> tuple[int, int, list[bytes | None]]:
    """§6, §10.6: volume size, block size and the blob id (or None) of every block."""
    magic, version, flags, _ = struct.unpack_from("<8sBBH", data)
    assert (magic, version) == (b"ASHMANIF", 2)
    body = data[12:]
    assert bool(flags & 2) == bool(data_key)
    if data_key:
        body = open_sealed(data_key, body, data[:12] + backup_id.encode())
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


def restore_from_spec(store: MemoryStore, backup_id: str, secret: bytes | None = None) -> bytes:
    """The image of `backup_id`, read with the helpers above only (§3 to §6, §10)."""
    config = json.loads(store.get(f"{CONTAINER}/config"))
    id_key, data_key = unlock(config, secret) if secret is not None else (None, None)
    decoded: dict[bytes, tuple[bytes, int, bytes | None]] = {}  # payload, raw length, base
    for key in store.list(f"{CONTAINER}/data/"):
        pack = store.get(key)
        assert blake3.blake3(pack).hexdigest() == key.rsplit("/", 1)[1]
        for blob_id, (offset, length, raw_length, flags, base) in read_pack(pack, data_key).items():
            payload = pack[offset : offset + length]
            assert bool(flags & 2) == bool(data_key)
            if data_key:
                payload = open_sealed(data_key, payload, b"ashbox blob")
            if flags & 1:
                payload = zstandard.ZstdDecompressor().decompress(payload)
            decoded[blob_id] = (payload, raw_length, base)
    blobs: dict[bytes, bytes] = {}

    def block(blob_id: bytes) -> bytes:
        if blob_id not in blobs:
            payload, raw_length, base = decoded[blob_id]
            raw = payload if base is None else rebuild(payload, block(base), raw_length)
            named = blake3.blake3(raw, key=id_key) if id_key else blake3.blake3(raw)
            assert len(raw) == raw_length and named.digest() == blob_id
            blobs[blob_id] = raw
        return blobs[blob_id]

    manifest = store.get(f"{CONTAINER}/backups/{backup_id}")
    volume_size, block_size, blocks = read_manifest(manifest, backup_id, data_key)
    return b"".join(
        block(b) if b is not None else bytes(min(block_size, volume_size - i * block_size))
        for i, b in enumerate(blocks)
    )


def test_a_reader_written_from_the_spec_alone_restores_a_backup(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    source = make_image(tmp_path / "src", 90 * BLOCK + 11, seed=41)
    repo.backup("b1", source, metadata={"k": "v"}, parent_id="b0")
    assert json.loads(store.get(f"{CONTAINER}/config"))["format_version"] == 1
    assert restore_from_spec(store, "b1") == source.read_bytes()


def test_a_reader_written_from_the_spec_alone_restores_an_encrypted_backup(
    store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    repo = Repository.open(
        store,
        CONTAINER,
        index,
        block_size=BLOCK,
        pack_size=8 * BLOCK,
        encryption="aes-256-gcm",
        secret=b"spec passphrase",
        kdf=KdfParams(memory_kib=64, iterations=1, lanes=1),
    )
    source = make_image(tmp_path / "src", 90 * BLOCK + 11, seed=43)
    repo.backup("b1", source, metadata={"k": "v"}, parent_id="b0")
    assert restore_from_spec(store, "b1", b"spec passphrase") == source.read_bytes()


def test_a_manifest_with_an_uncompressed_body_is_read_too(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    repo.backup("b1", make_image(tmp_path / "src", 9 * BLOCK, seed=42))
    data = store.get(f"{CONTAINER}/backups/b1")
    raw = data[:9] + b"\0" + data[10:12] + zstandard.ZstdDecompressor().decompress(data[12:])
    assert Manifest.decode(raw) == Manifest.decode(data)


def test_a_reader_written_from_the_spec_alone_restores_an_incremental_of_deltas(
    store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    block = 16 * 4096
    repo = Repository.open(store, CONTAINER, index, block_size=block, pack_size=8 * block)
    source = make_image(tmp_path / "src", 20 * block + 5000, seed=44)
    repo.backup("b1", source)
    with source.open("r+b") as f:  # one page in each of a few blocks, and the short tail
        for offset in (3 * block + 4096, 7 * block, 12 * block + 15 * 4096, 20 * block + 100):
            f.seek(offset)
            f.write(bytes(range(256)) * 4)
    repo.backup("b2", source, parent_id="b1")
    deltas = [
        e for pack in store.list(f"{CONTAINER}/data/") for e in read_pack(store.get(pack)).values()
    ]
    assert sum(1 for e in deltas if e[4] is not None) >= 3
    assert restore_from_spec(store, "b2") == source.read_bytes()
