"""An encrypted repository through the facade: round trips, keys, tampering."""

from __future__ import annotations

import json
from pathlib import Path

import blake3
import pytest

from ashbox.errors import (
    CorruptData,
    CorruptManifest,
    CorruptPack,
    InvalidInput,
    KeyRequired,
    KeySlotNotFound,
    RepositoryNotFound,
    WrongKey,
)
from ashbox.repository.crypto import KdfParams
from ashbox.repository.keys import add_key, list_keys, read_secret, remove_key
from ashbox.repository.manifest import manifest_key
from ashbox.repository.pack import decode_pack, trailer_length
from ashbox.repository.repository import Repository

from ..storage.memory_store import MemoryStore
from .conftest import BLOCK, CONTAINER, make_image, pack_keys, sha256
from .memory_index import MemoryIndex

FAST_KDF = KdfParams(memory_kib=64, iterations=1, lanes=1)
PASSPHRASE = b"correct horse battery staple"


def open_repo(
    store: MemoryStore,
    index: MemoryIndex,
    secret: bytes | None = PASSPHRASE,
    *,
    encryption: str = "aes-256-gcm",
) -> Repository:
    return Repository.open(
        store,
        CONTAINER,
        index,
        block_size=BLOCK,
        pack_size=8 * BLOCK,
        encryption=encryption,
        secret=secret,
        kdf=FAST_KDF,
    )


@pytest.fixture
def encrypted(store: MemoryStore, index: MemoryIndex) -> Repository:
    return open_repo(store, index)


@pytest.mark.parametrize(("seed", "size"), [(1, 70 * BLOCK + 123), (2, 33 * BLOCK), (3, 1)])
def test_an_encrypted_backup_restores_to_the_same_bytes(
    encrypted: Repository, tmp_path: Path, seed: int, size: int
) -> None:
    source = make_image(tmp_path / "src", size, seed=seed)
    encrypted.backup("b1", source)
    target = tmp_path / "dst"
    target.write_bytes(b"\xaa" * size)
    encrypted.restore("b1", target, new_volume=False)
    assert sha256(target) == sha256(source)


def test_an_encrypted_repository_reopened_with_its_passphrase_restores(
    store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    source = make_image(tmp_path / "src", 40 * BLOCK, seed=4)
    open_repo(store, index).backup("b1", source)
    reopened = open_repo(store, index, encryption="none")  # the config wins
    target = tmp_path / "dst"
    target.write_bytes(bytes(40 * BLOCK))
    reopened.restore("b1", target, new_volume=True)
    assert sha256(target) == sha256(source)


def test_the_config_records_encryption_and_one_slot_but_never_the_master_key(
    encrypted: Repository, store: MemoryStore
) -> None:
    doc = json.loads(store.get(f"{CONTAINER}/config"))
    assert (doc["format_version"], doc["hash"], doc["encryption"]) == (
        2,
        "blake3-keyed",
        "aes-256-gcm",
    )
    assert len(doc["keys"]) == 1
    assert encrypted.codec.keys is not None
    for secret in (encrypted.codec.keys.id_key, PASSPHRASE):
        assert secret not in store.get(f"{CONTAINER}/config")


def test_stored_objects_reveal_neither_the_data_nor_its_unkeyed_ids(
    encrypted: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    block = b"confidential payroll " * (BLOCK // 21) + b"x" * (BLOCK % 21)
    source = tmp_path / "src"
    source.write_bytes(block * 3 + bytes(BLOCK) + block[::-1])
    encrypted.backup("b1", source, metadata={"owner": "alice-secret"})
    plain_ids = {blake3.blake3(block).digest(), blake3.blake3(block[::-1]).digest()}
    keyed_ids = {encrypted.codec.blob_id(block), encrypted.codec.blob_id(block[::-1])}
    assert not plain_ids & keyed_ids
    for key, data in store.objects.items():
        assert b"confidential" not in data and b"alice-secret" not in data, key
        for blob_id in plain_ids | keyed_ids:
            assert blob_id not in data, key
    cipher = encrypted.codec.cipher
    indexed = {e.blob_id for key in pack_keys(store) for e in decode_pack(store.get(key), cipher)}
    assert indexed == encrypted.read_manifest("b1").blob_ids()  # blocks and page tables
    assert keyed_ids <= indexed


def test_a_wrong_passphrase_is_refused_with_a_clear_error(
    encrypted: Repository, store: MemoryStore, index: MemoryIndex
) -> None:
    with pytest.raises(WrongKey, match=f"does not open repository {CONTAINER}"):
        open_repo(store, index, b"wrong")


def test_a_missing_key_is_refused_whether_creating_or_opening(
    store: MemoryStore, index: MemoryIndex
) -> None:
    with pytest.raises(KeyRequired, match="is encrypted"):
        open_repo(store, index, None)
    assert not store.objects
    open_repo(store, index)
    with pytest.raises(KeyRequired):
        open_repo(store, index, None, encryption="none")


def test_an_unencrypted_repository_ignores_a_configured_key(
    store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    plain = open_repo(store, index, None, encryption="none")
    assert plain.codec.keys is None
    assert open_repo(store, index).codec.keys is None
    assert json.loads(store.get(f"{CONTAINER}/config"))["encryption"] == "none"


def test_an_unknown_encryption_is_refused(store: MemoryStore, index: MemoryIndex) -> None:
    with pytest.raises(InvalidInput, match="rot13"):
        open_repo(store, index, encryption="rot13")


def test_a_key_added_opens_the_repository_and_the_old_one_can_then_be_removed(
    encrypted: Repository, store: MemoryStore, index: MemoryIndex, tmp_path: Path
) -> None:
    source = make_image(tmp_path / "src", 20 * BLOCK, seed=5)
    encrypted.backup("b1", source)
    (old,) = list_keys(store, CONTAINER)
    new = add_key(store, CONTAINER, PASSPHRASE, b"new passphrase", kdf=FAST_KDF)
    assert [s.slot_id for s in list_keys(store, CONTAINER)] == [old.slot_id, new.slot_id]
    remove_key(store, CONTAINER, b"new passphrase", old.slot_id)
    assert list_keys(store, CONTAINER) == (new,)
    with pytest.raises(WrongKey):
        open_repo(store, index)
    target = tmp_path / "dst"
    target.write_bytes(bytes(20 * BLOCK))
    open_repo(store, index, b"new passphrase").restore("b1", target, new_volume=True)
    assert sha256(target) == sha256(source)


def test_the_last_key_slot_cannot_be_removed(encrypted: Repository, store: MemoryStore) -> None:
    (only,) = list_keys(store, CONTAINER)
    with pytest.raises(InvalidInput, match="last key"):
        remove_key(store, CONTAINER, PASSPHRASE, only.slot_id)
    assert list_keys(store, CONTAINER) == (only,)


def test_key_changes_need_a_key_that_opens_the_repository(
    encrypted: Repository, store: MemoryStore
) -> None:
    add_key(store, CONTAINER, PASSPHRASE, b"second", kdf=FAST_KDF)
    before = store.get(f"{CONTAINER}/config")
    with pytest.raises(WrongKey):
        add_key(store, CONTAINER, b"guess", b"mine", kdf=FAST_KDF)
    with pytest.raises(KeyRequired):
        remove_key(store, CONTAINER, None, list_keys(store, CONTAINER)[0].slot_id)
    with pytest.raises(KeySlotNotFound):
        remove_key(store, CONTAINER, PASSPHRASE, "00000000")
    assert store.get(f"{CONTAINER}/config") == before


def test_keys_of_a_missing_or_unencrypted_repository_cannot_be_changed(
    store: MemoryStore, index: MemoryIndex
) -> None:
    with pytest.raises(RepositoryNotFound):
        list_keys(store, CONTAINER)
    open_repo(store, index, None, encryption="none")
    assert list_keys(store, CONTAINER) == ()
    with pytest.raises(InvalidInput, match="not encrypted"):
        add_key(store, CONTAINER, None, b"pw", kdf=FAST_KDF)


def test_a_key_file_gives_its_bytes_less_one_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "k").write_bytes(b"  pass phrase \n")
    assert read_secret(tmp_path / "k") == b"  pass phrase "
    (tmp_path / "empty").write_bytes(b"\n")
    with pytest.raises(InvalidInput, match="empty"):
        read_secret(tmp_path / "empty")
    with pytest.raises(InvalidInput, match="Cannot read key file"):
        read_secret(tmp_path / "missing")


def tamper(store: MemoryStore, key: str, position: int) -> None:
    data = bytearray(store.objects[key])
    data[position] ^= 0x01
    store.objects[key] = bytes(data)


def backed_up(encrypted: Repository, tmp_path: Path) -> Path:
    source = tmp_path / "src"
    source.write_bytes(blake3.blake3(b"seed").digest(6 * BLOCK))
    encrypted.backup("b1", source)
    return source


def test_a_tampered_blob_fails_the_restore_naming_the_pack(
    encrypted: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    backed_up(encrypted, tmp_path)
    blocks = {b for _, b in encrypted.read_manifest("b1").blocks()}
    cipher = encrypted.codec.cipher
    key = next(
        k
        for k in sorted(pack_keys(store))
        if decode_pack(store.get(k), cipher)[0].blob_id in blocks
    )
    tamper(store, key, 8 + 40)
    target = tmp_path / "dst"
    target.write_bytes(bytes(6 * BLOCK))
    with pytest.raises(CorruptData, match=f"pack {key.rsplit('/', 1)[1]}.*fails authentication"):
        encrypted.restore("b1", target, new_volume=True)


def test_a_tampered_trailer_is_detected(
    encrypted: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    backed_up(encrypted, tmp_path)
    key = sorted(pack_keys(store))[0]
    pack = store.get(key)
    tamper(store, key, len(pack) - trailer_length(pack[-32:]) + 20)
    with pytest.raises(CorruptPack):
        decode_pack(store.get(key), encrypted.codec.cipher)


def test_a_tampered_or_truncated_manifest_is_detected(
    encrypted: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    backed_up(encrypted, tmp_path)
    key = manifest_key(CONTAINER, "b1")
    original = store.objects[key]
    target = tmp_path / "dst"
    target.write_bytes(bytes(6 * BLOCK))
    for damaged in (original[:-1], original[:20], original[:-5] + b"\0" * 5):
        store.objects[key] = damaged
        with pytest.raises(CorruptManifest):
            encrypted.restore("b1", target, new_volume=True)
    store.objects[key] = original
    store.objects[manifest_key(CONTAINER, "b2")] = original
    with pytest.raises(CorruptManifest, match="fails authentication"):
        encrypted.read_manifest("b2")
