"""The embedded key manager: keys in the database, each wrapped (AES-256-GCM,
its id as associated data) with a master key kept in a file outside it.

The master key file holds 32 random bytes. It is made, readable by its owner
only, the first time a key is made if it does not exist; every process of a
deployment must read the same file (docs/keys.md). A database copied without
that file holds no usable key.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, insert, select

from ashbox.db.engine import Database
from ashbox.db.models import EncryptionKey
from ashbox.errors import KeyManagerError

KEY_BYTES = 32
_NONCE_BYTES = 12


class EmbeddedKeyManager:
    def __init__(self, db: Database, master_key_file: Path) -> None:
        self.db = db
        self.master_key_file = master_key_file
        self._aead: AESGCM | None = None
        self._lock = threading.Lock()

    def create_key(self) -> str:
        return self._store(os.urandom(KEY_BYTES))

    def clone(self, key_id: str) -> str:
        return self._store(self.key_bytes(key_id))

    def key_bytes(self, key_id: str) -> bytes:
        with self.db.reading() as s:
            wrapped = s.scalar(select(EncryptionKey.wrapped).where(EncryptionKey.id == key_id))
        if wrapped is None:
            raise KeyManagerError(f"Key {key_id} could not be found.")
        try:
            return self._master().decrypt(
                wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], key_id.encode()
            )
        except InvalidTag as e:
            raise KeyManagerError(
                f"Key {key_id} does not open with the master key in {self.master_key_file}."
            ) from e

    def delete(self, key_id: str) -> None:
        with self.db.transaction() as s:
            s.execute(delete(EncryptionKey).where(EncryptionKey.id == key_id))

    def _store(self, key: bytes) -> str:
        key_id = str(uuid.uuid4())
        nonce = os.urandom(_NONCE_BYTES)
        wrapped = nonce + self._master().encrypt(nonce, key, key_id.encode())
        with self.db.transaction() as s:
            s.execute(
                insert(EncryptionKey).values(
                    id=key_id, wrapped=wrapped, created_at=datetime.now(UTC)
                )
            )
        return key_id

    def _master(self) -> AESGCM:
        with self._lock:
            if self._aead is None:
                self._aead = AESGCM(_master_key(self.master_key_file))
            return self._aead


def _master_key(path: Path) -> bytes:
    """The master key in `path`, made there first if the file does not exist
    (written aside and linked in, so a process never reads it half written)."""
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            aside = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(os.urandom(KEY_BYTES))
                    f.flush()
                    os.fsync(f.fileno())
                with contextlib.suppress(FileExistsError):  # another process made it first
                    os.link(aside, path)
            finally:
                aside.unlink()
        key = path.read_bytes()
    except OSError as e:
        raise KeyManagerError(f"Cannot read the key manager's master key {path}: {e}") from e
    if len(key) != KEY_BYTES:
        raise KeyManagerError(
            f"The key manager's master key {path} holds {len(key)} bytes, not {KEY_BYTES}."
        )
    return key
