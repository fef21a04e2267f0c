"""Encryption of a repository: AES-256-GCM sealing, the master key and its slots.

An encrypted repository has one random 256-bit master key. Two subkeys are
derived from it with BLAKE3's key derivation mode: the blob id key (blob ids
are keyed BLAKE3, so they reveal nothing about the data) and the data key
(AES-256-GCM for blobs, pack trailers and manifests). The master key is
stored only wrapped, in the config's key slots, each by a key derived with
Argon2id from a passphrase or a key file's bytes.

Byte layout: docs/format.md, "Encryption". Change both in one commit.
"""

from __future__ import annotations

import base64
import functools
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from ashbox.errors import CorruptData, CorruptManifest

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE
SALT_SIZE = 16
KDF_NAME = "argon2id"
AAD_BLOB = b"ashbox blob"
AAD_TRAILER = b"ashbox pack trailer"
MANIFEST_HEADER_SIZE = 12  # docs/format.md §6: magic, version, flags, reserved
MANIFEST_FLAGS_OFFSET = 9
MANIFEST_ENCRYPTED = 0x02
ID_KEY_CONTEXT = "ashbox repository 2026-11 blob id key"
DATA_KEY_CONTEXT = "ashbox repository 2026-11 data key"
_WRAPPED_SIZE = NONCE_SIZE + KEY_SIZE + TAG_SIZE
# Two Argon2id derivations of two lanes or more at once, in two threads, hang
# or fail with "Not enough memory to derive key" (cryptography 50 on OpenSSL
# 4.0.3; tests/repository/test_crypto.py): a worker opening two encrypted
# containers at once could hang for good. Derivations take their turn.
_KDF_TURN = threading.Lock()


class Cipher:
    """AES-256-GCM with a random 96-bit nonce per message; thread-safe."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError(f"an AES-256 key has {KEY_SIZE} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes | bytearray | memoryview, aad: bytes) -> bytearray:
        """`nonce ‖ ciphertext ‖ tag` of `plaintext`, authenticating `aad` too:
        sealed in place, not copied again (a blob's payload is ~1 MiB)."""
        out = bytearray(NONCE_SIZE + len(plaintext) + TAG_SIZE)
        nonce = os.urandom(NONCE_SIZE)
        out[:NONCE_SIZE] = nonce
        self._aead.encrypt_into(nonce, plaintext, aad, memoryview(out)[NONCE_SIZE:])
        return out

    def open(
        self,
        sealed: bytes | bytearray | memoryview,
        aad: bytes,
        *,
        error: type[CorruptData],
        what: str,
    ) -> bytes:
        """The plaintext of `seal`'s output; `error` naming `what` if it was
        altered, truncated or sealed with another key or `aad`."""
        if len(sealed) < OVERHEAD:
            raise error(f"{what} is too short to be encrypted ({len(sealed)} bytes).")
        view = memoryview(sealed)
        try:
            plain: bytes = self._aead.decrypt(view[:NONCE_SIZE], view[NONCE_SIZE:], aad)
        except InvalidTag:
            raise error(f"{what} fails authentication: it was altered or is not ours.") from None
        return plain


@dataclass(frozen=True, slots=True, eq=False)
class RepositoryKeys:
    """The keys an unlocked encrypted repository works with."""

    id_key: bytes
    cipher: Cipher = field(repr=False)

    @classmethod
    def from_master(cls, master: bytes) -> RepositoryKeys:
        if len(master) != KEY_SIZE:
            raise ValueError(f"a master key has {KEY_SIZE} bytes, not {len(master)}")
        return cls(
            id_key=_derive(master, ID_KEY_CONTEXT),
            cipher=Cipher(_derive(master, DATA_KEY_CONTEXT)),
        )


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost. The default is RFC 9106's second recommended option
    (64 MiB, 3 passes, 4 lanes): about 0.13 s here (docs/format.md)."""

    memory_kib: int = 64 * 1024
    iterations: int = 3
    lanes: int = 4

    def check(self) -> None:
        """CorruptData unless these are costs Argon2id accepts and ashbox will pay."""
        if not (
            1 <= self.lanes <= 64
            and 1 <= self.iterations <= 64
            and 8 * self.lanes <= self.memory_kib <= 4 * 1024 * 1024
        ):
            raise CorruptData(
                f"Key slot KDF costs memory_kib={self.memory_kib} iterations={self.iterations} "
                f"lanes={self.lanes} are out of range."
            )


@dataclass(frozen=True, slots=True)
class KeySlot:
    """One wrapped copy of the master key, opened by one passphrase or key file."""

    slot_id: str
    created_at: datetime
    salt: bytes
    kdf: KdfParams
    wrapped_key: bytes

    def to_doc(self) -> dict[str, object]:
        return {
            "id": self.slot_id,
            "created_at": self.created_at.isoformat(),
            "kdf": KDF_NAME,
            "salt": base64.b64encode(self.salt).decode(),
            "memory_kib": self.kdf.memory_kib,
            "iterations": self.kdf.iterations,
            "lanes": self.kdf.lanes,
            "wrapped_key": base64.b64encode(self.wrapped_key).decode(),
        }

    @classmethod
    def from_doc(cls, doc: object) -> KeySlot:
        """A slot from its config JSON; CorruptData for anything malformed."""
        if not isinstance(doc, dict) or doc.get("kdf") != KDF_NAME:
            raise CorruptData("Repository key slot is not an object with kdf 'argon2id'.")
        try:
            slot = cls(
                slot_id=_text(doc, "id"),
                created_at=datetime.fromisoformat(_text(doc, "created_at")),
                salt=base64.b64decode(_text(doc, "salt"), validate=True),
                kdf=KdfParams(_int(doc, "memory_kib"), _int(doc, "iterations"), _int(doc, "lanes")),
                wrapped_key=base64.b64decode(_text(doc, "wrapped_key"), validate=True),
            )
        except ValueError as e:
            raise CorruptData(f"Repository key slot is malformed: {e}") from e
        if len(slot.salt) != SALT_SIZE or len(slot.wrapped_key) != _WRAPPED_SIZE:
            raise CorruptData(f"Repository key slot {slot.slot_id} has a bad salt or key size.")
        if not slot.slot_id or slot.created_at.tzinfo is None:
            raise CorruptData("Repository key slot has no id or a created_at without zone.")
        slot.kdf.check()
        return slot


def new_master_key() -> bytes:
    return secrets.token_bytes(KEY_SIZE)


def wrap_master_key(
    master: bytes,
    secret: bytes,
    repository_id: str,
    *,
    created_at: datetime,
    kdf: KdfParams | None = None,
) -> KeySlot:
    """A new slot holding `master`, opened by `secret`."""
    params = kdf or KdfParams()
    params.check()
    slot_id = secrets.token_hex(4)
    salt = secrets.token_bytes(SALT_SIZE)
    nonce = secrets.token_bytes(NONCE_SIZE)
    kek = AESGCM(_key_encryption_key(secret, salt, params))
    wrapped = nonce + kek.encrypt(nonce, master, _slot_aad(repository_id, slot_id))
    return KeySlot(slot_id, created_at, salt, params, wrapped)


def unwrap_master_key(
    slots: tuple[KeySlot, ...], secret: bytes, repository_id: str
) -> tuple[bytes, KeySlot] | None:
    """The master key and the slot `secret` opens, or None if it opens none."""
    for slot in slots:
        kek = AESGCM(_key_encryption_key(secret, slot.salt, slot.kdf))
        nonce, body = slot.wrapped_key[:NONCE_SIZE], slot.wrapped_key[NONCE_SIZE:]
        try:
            master = kek.decrypt(nonce, body, _slot_aad(repository_id, slot.slot_id))
        except InvalidTag:
            continue
        return master, slot
    return None


def seal_manifest(encoded: bytes, backup_id: str, cipher: Cipher) -> bytes:
    """An encoded manifest with its body encrypted and flag 0x02 set."""
    header = bytearray(encoded[:MANIFEST_HEADER_SIZE])
    header[MANIFEST_FLAGS_OFFSET] |= MANIFEST_ENCRYPTED
    aad = bytes(header) + backup_id.encode()
    return bytes(header) + cipher.seal(memoryview(encoded)[MANIFEST_HEADER_SIZE:], aad)


def open_manifest(data: bytes, backup_id: str, cipher: Cipher) -> bytes:
    """The encoded manifest inside `seal_manifest`'s output; CorruptManifest if
    it is not encrypted or fails authentication."""
    if len(data) < MANIFEST_HEADER_SIZE:
        raise CorruptManifest("Manifest is too short for its header.")
    header = bytearray(data[:MANIFEST_HEADER_SIZE])
    if not header[MANIFEST_FLAGS_OFFSET] & MANIFEST_ENCRYPTED:
        raise CorruptManifest(f"Manifest of backup {backup_id} is not encrypted.")
    body = cipher.open(
        memoryview(data)[MANIFEST_HEADER_SIZE:],
        bytes(header) + backup_id.encode(),
        error=CorruptManifest,
        what=f"Manifest of backup {backup_id}",
    )
    header[MANIFEST_FLAGS_OFFSET] &= ~MANIFEST_ENCRYPTED & 0xFF
    return bytes(header) + body


def _derive(master: bytes, context: str) -> bytes:
    key: bytes = blake3.blake3(master, derive_key_context=context).digest()
    return key


@functools.lru_cache(maxsize=64)
def _key_encryption_key(secret: bytes, salt: bytes, kdf: KdfParams) -> bytes:
    """Argon2id of the secret. Cached: a service opens the same repository for
    every task and should pay the KDF once, not per backup."""
    with _KDF_TURN:
        return Argon2id(
            salt=salt,
            length=KEY_SIZE,
            iterations=kdf.iterations,
            lanes=kdf.lanes,
            memory_cost=kdf.memory_kib,
        ).derive(secret)


def _slot_aad(repository_id: str, slot_id: str) -> bytes:
    return f"ashbox key slot {repository_id} {slot_id}".encode()


def _text(doc: dict[str, object], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str):
        raise ValueError(f"field {name!r} is not a string")
    return value


def _int(doc: dict[str, object], name: str) -> int:
    value = doc.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"field {name!r} is not an integer")
    return value
