"""The encrypted codecs on their own: sealing, blobs, pack trailers, manifests, key slots."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ashbox.errors import CorruptBlob, CorruptData, CorruptManifest, CorruptPack
from ashbox.repository.blob import FLAG_ENCRYPTED, FLAG_ZSTD, BlobCodec, blob_id_of
from ashbox.repository.crypto import (
    AAD_BLOB,
    OVERHEAD,
    Cipher,
    KdfParams,
    KeySlot,
    RepositoryKeys,
    new_master_key,
    open_manifest,
    seal_manifest,
    unwrap_master_key,
    wrap_master_key,
)
from ashbox.repository.manifest import Manifest
from ashbox.repository.pack import PackBuilder, decode_pack, decode_trailer, trailer_length

from .strategies import blob_ids, manifests, raw_blocks

FAST_KDF = KdfParams(memory_kib=64, iterations=1, lanes=1)
keys = RepositoryKeys.from_master(new_master_key())
other_keys = RepositoryKeys.from_master(new_master_key())
codec = BlobCodec(3, keys)
plain_codec = BlobCodec(3)
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def flip(data: bytes | bytearray | memoryview, bit: int) -> bytes:
    damaged = bytearray(data)
    damaged[bit // 8] ^= 1 << (bit % 8)
    return bytes(damaged)


@given(raw_blocks)
def test_an_encrypted_blob_round_trips_under_its_keyed_id(raw: bytes) -> None:
    flags, payload = codec.encode(raw)
    assert flags & FLAG_ENCRYPTED
    assert codec.decode(codec.blob_id(raw), bytes(payload), flags, len(raw)) == raw


@given(raw_blocks, st.data())
def test_any_flipped_bit_in_an_encrypted_blob_is_caught(raw: bytes, data: st.DataObject) -> None:
    flags, payload = codec.encode(raw)
    bit = data.draw(st.integers(0, len(payload) * 8 - 1))
    with pytest.raises(CorruptBlob, match="fails authentication"):
        codec.decode(codec.blob_id(raw), flip(payload, bit), flags, len(raw))


@given(raw_blocks, st.data())
def test_a_truncated_encrypted_blob_is_caught(raw: bytes, data: st.DataObject) -> None:
    flags, payload = codec.encode(raw)
    cut = data.draw(st.integers(0, len(payload) - 1))
    with pytest.raises(CorruptBlob):
        codec.decode(codec.blob_id(raw), bytes(payload)[:cut], flags, len(raw))


def test_an_encrypted_blob_is_compressed_then_sealed_and_hides_its_text() -> None:
    raw = b"secret text " * 1000
    flags, payload = codec.encode(raw)
    assert flags == FLAG_ZSTD | FLAG_ENCRYPTED
    assert b"secret" not in bytes(payload)


def test_an_incompressible_block_is_sealed_raw_with_28_bytes_of_overhead() -> None:
    raw = blake3.blake3(b"noise").digest(4096)
    flags, payload = codec.encode(raw)
    assert flags == FLAG_ENCRYPTED
    assert len(payload) == len(raw) + OVERHEAD == len(raw) + 28


def test_two_encryptions_of_one_block_differ_but_name_it_the_same() -> None:
    raw = b"a block " * 512
    (_, one), (_, two) = codec.encode(raw), codec.encode(raw)
    assert bytes(one) != bytes(two)
    assert codec.blob_id(raw) == codec.blob_id(bytearray(raw)) == codec.blob_id(memoryview(raw))


def test_keyed_ids_differ_from_unkeyed_ids_and_between_repositories() -> None:
    raw = b"same block"
    ids = {blob_id_of(raw), codec.blob_id(raw), BlobCodec(3, other_keys).blob_id(raw)}
    assert len(ids) == 3
    assert codec.blob_id(raw) == blake3.blake3(raw, key=keys.id_key).digest()


def test_a_blob_sealed_with_another_repositorys_key_is_corrupt() -> None:
    raw = b"z" * 3000
    flags, payload = BlobCodec(3, other_keys).encode(raw)
    with pytest.raises(CorruptBlob, match="fails authentication"):
        codec.decode(codec.blob_id(raw), bytes(payload), flags, len(raw))


def test_an_encrypted_repository_refuses_a_plain_blob_and_a_plain_one_an_encrypted_blob() -> None:
    raw = b"q" * 3000
    flags, payload = plain_codec.encode(raw)
    with pytest.raises(CorruptBlob, match="not encrypted"):
        codec.decode(codec.blob_id(raw), bytes(payload), flags, len(raw))
    flags, payload = codec.encode(raw)
    with pytest.raises(CorruptBlob, match="is encrypted"):
        plain_codec.decode(blob_id_of(raw), bytes(payload), flags, len(raw))


def test_a_sealed_message_is_bound_to_its_associated_data() -> None:
    cipher = Cipher(bytes(32))
    sealed = cipher.seal(b"hello", AAD_BLOB)
    assert cipher.open(sealed, AAD_BLOB, error=CorruptData, what="x") == b"hello"
    with pytest.raises(CorruptData, match="x fails authentication"):
        cipher.open(sealed, b"other", error=CorruptData, what="x")
    with pytest.raises(CorruptData, match="too short"):
        cipher.open(sealed[: OVERHEAD - 1], AAD_BLOB, error=CorruptData, what="x")


pack_blobs = st.lists(
    st.tuples(blob_ids, st.binary(min_size=1, max_size=200)), min_size=0, max_size=10
)


def sealed_pack(blobs: list[tuple[bytes, bytes]]) -> bytes:
    builder = PackBuilder(keys.cipher)
    for blob_id, payload in blobs:
        builder.add(blob_id, FLAG_ENCRYPTED, payload, len(payload))
    size = builder.size
    data = bytes(builder.seal().data)
    assert len(data) == size
    return data


@given(pack_blobs)
def test_an_encrypted_trailer_round_trips_and_hides_the_blob_ids(
    blobs: list[tuple[bytes, bytes]],
) -> None:
    data = sealed_pack(blobs)
    entries = decode_pack(data, keys.cipher)
    assert [(e.blob_id, e.length) for e in entries] == [(i, len(p)) for i, p in blobs]
    tail = data[-trailer_length(data[-32:]) :]
    assert decode_trailer(tail, len(data), keys.cipher) == entries
    for blob_id, _ in blobs:
        assert blob_id not in tail


@given(pack_blobs.filter(bool), st.data())
def test_any_flipped_bit_in_an_encrypted_trailer_is_caught(
    blobs: list[tuple[bytes, bytes]], data: st.DataObject
) -> None:
    pack = sealed_pack(blobs)
    size = trailer_length(pack[-32:])
    bit = data.draw(st.integers((len(pack) - size) * 8, len(pack) * 8 - 1))
    with pytest.raises(CorruptPack):
        decode_pack(flip(pack, bit), keys.cipher)


def test_a_trailer_altered_with_its_checksum_recomputed_fails_authentication() -> None:
    pack = bytearray(sealed_pack([(bytes(range(32)), b"payload")]))
    body_end = len(pack) - 32
    pack[body_end - 20] ^= 0x40
    body = bytes(pack[body_end - trailer_length(bytes(pack[-32:])) + 32 : body_end])
    pack[body_end + 4 : body_end + 20] = blake3.blake3(body).digest()[:16]
    with pytest.raises(CorruptPack, match="fails authentication"):
        decode_pack(bytes(pack), keys.cipher)


def test_a_trailer_is_refused_unless_sealed_exactly_in_an_encrypted_repository() -> None:
    plain = PackBuilder()
    plain.add(bytes(32), 0, b"x", 1)
    with pytest.raises(CorruptPack, match="not encrypted"):
        decode_pack(bytes(plain.seal().data), keys.cipher)
    with pytest.raises(CorruptPack, match="is encrypted"):
        decode_pack(sealed_pack([(bytes(32), b"x")]))
    with pytest.raises(CorruptPack, match="fails authentication"):
        decode_pack(sealed_pack([(bytes(32), b"x")]), other_keys.cipher)


@given(manifests())
def test_an_encrypted_manifest_round_trips(manifest: Manifest) -> None:
    sealed = seal_manifest(manifest.encode(), manifest.backup_id, keys.cipher)
    assert sealed[9] & 0x02
    assert Manifest.decode(open_manifest(sealed, manifest.backup_id, keys.cipher)) == manifest


@given(manifests(), st.data())
def test_any_flipped_bit_in_an_encrypted_manifest_is_caught(
    manifest: Manifest, data: st.DataObject
) -> None:
    sealed = seal_manifest(manifest.encode(), manifest.backup_id, keys.cipher)
    bit = data.draw(st.integers(0, len(sealed) * 8 - 1))
    with pytest.raises(CorruptManifest):
        Manifest.decode(open_manifest(flip(sealed, bit), manifest.backup_id, keys.cipher))


def test_a_manifest_is_bound_to_its_backup_id_and_must_be_encrypted() -> None:
    manifest = Manifest("b1", None, 10, 4096, NOW, bytes(33))
    sealed = seal_manifest(manifest.encode(), "b1", keys.cipher)
    with pytest.raises(CorruptManifest, match="fails authentication"):
        open_manifest(sealed, "b2", keys.cipher)
    with pytest.raises(CorruptManifest, match="not encrypted"):
        open_manifest(manifest.encode(), "b1", keys.cipher)
    with pytest.raises(CorruptManifest, match="too short"):
        open_manifest(sealed[:11], "b1", keys.cipher)
    with pytest.raises(CorruptManifest, match="unsupported flags"):
        Manifest.decode(sealed)


def test_a_key_slot_opens_with_its_secret_only() -> None:
    master = new_master_key()
    slot = wrap_master_key(master, b"correct horse", "repo-1", created_at=NOW, kdf=FAST_KDF)
    assert unwrap_master_key((slot,), b"correct horse", "repo-1") == (master, slot)
    assert unwrap_master_key((slot,), b"correct horse!", "repo-1") is None
    assert unwrap_master_key((slot,), b"correct horse", "repo-2") is None


def test_a_key_slot_round_trips_through_its_json_document() -> None:
    slot = wrap_master_key(new_master_key(), b"pw", "r", created_at=NOW, kdf=FAST_KDF)
    doc = slot.to_doc()
    assert set(doc) == {
        "id", "created_at", "kdf", "salt", "memory_kib", "iterations", "lanes", "wrapped_key",
    }  # fmt: skip
    assert KeySlot.from_doc(doc) == slot


@pytest.mark.parametrize(
    "change",
    [
        {"kdf": "scrypt"},
        {"salt": "c2FsdA=="},
        {"wrapped_key": "not base64!"},
        {"memory_kib": 1 << 30},
        {"iterations": 0},
        {"lanes": True},
        {"created_at": "2026-01-01T00:00:00"},
        {"id": ""},
    ],
)
def test_a_malformed_key_slot_is_corrupt(change: dict[str, object]) -> None:
    doc = wrap_master_key(new_master_key(), b"pw", "r", created_at=NOW, kdf=FAST_KDF).to_doc()
    doc.update(change)
    with pytest.raises(CorruptData):
        KeySlot.from_doc(doc)


def test_two_key_derivations_at_once_both_finish() -> None:
    """With two lanes or more, two Argon2id derivations at once hung or failed
    with MemoryError (cryptography 50 on OpenSSL 4.0.3): a worker opening two
    encrypted containers at once could hang. Two lanes reproduce it at once."""
    kdf = KdfParams(memory_kib=1024, iterations=1, lanes=2)
    master = new_master_key()
    slots: list[KeySlot] = []
    threads = [
        threading.Thread(
            target=lambda i=i: slots.append(
                wrap_master_key(master, f"pw{i}".encode(), "r", created_at=NOW, kdf=kdf)
            ),
            daemon=True,  # a hung one must not hold the test run at exit
        )
        for i in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    for i in range(2):
        opened = unwrap_master_key(tuple(slots), f"pw{i}".encode(), "r")
        assert opened is not None and opened[0] == master
