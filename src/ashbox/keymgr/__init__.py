"""Keys of encrypted volumes (CINDER-CONTRACT §3.9): made, cloned and deleted
through a key manager, as Cinder's backups do through castellan.

`embedded` (the default) keeps each key in the database, wrapped with a
master key read from `key_manager_master_key_file`; `barbican` uses
OpenStack's Barbican through castellan, the library Cinder uses. A backup of
an encrypted volume holds a clone of its volume's key, each volume restored
from it a clone of the backup's, and a backup's key goes with the backup
(docs/keys.md).
"""

from __future__ import annotations

from typing import Protocol

from ashbox.config import Settings
from ashbox.db.engine import Database


class KeyManager(Protocol):
    def create_key(self) -> str:
        """A new 256-bit AES key; its id."""

    def clone(self, key_id: str) -> str:
        """A new key holding the same bytes as `key_id`; its id (KeyManagerError
        if there is no such key)."""

    def key_bytes(self, key_id: str) -> bytes:
        """The key's bytes (KeyManagerError if there is no such key)."""

    def delete(self, key_id: str) -> None:
        """Delete the key; a key already gone is not an error."""


def open_key_manager(settings: Settings, db: Database) -> KeyManager:
    if settings.key_manager == "barbican":
        from ashbox.keymgr.barbican import BarbicanKeyManager

        return BarbicanKeyManager.of(settings.key_manager_options)
    from ashbox.keymgr.embedded import EmbeddedKeyManager

    return EmbeddedKeyManager(db, settings.resolved_key_manager_master_key_file)
