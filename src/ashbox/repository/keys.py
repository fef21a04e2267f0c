"""Key slots of an encrypted repository: unlocking it, adding and removing keys.

Each slot of the config wraps the same master key under another passphrase
or key file, so keys change without rewriting any data: adding a slot or
removing one rewrites only `<container>/config`, with one atomic `put`.
Layout: docs/format.md, "Encryption". Change both in one commit.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from ashbox.errors import (
    InvalidInput,
    KeyRequired,
    KeySlotNotFound,
    RepositoryNotFound,
    WrongKey,
)
from ashbox.repository.config import RepositoryConfig, read_config, write_config
from ashbox.repository.crypto import (
    KdfParams,
    KeySlot,
    RepositoryKeys,
    unwrap_master_key,
    wrap_master_key,
)
from ashbox.storage.base import Store

log = logging.getLogger(__name__)


def unlock(config: RepositoryConfig, secret: bytes | None, container: str) -> RepositoryKeys | None:
    """The keys of an encrypted repository, None for an unencrypted one (whose
    `secret` is ignored); KeyRequired without a secret, WrongKey for a wrong one."""
    if not config.encrypted:
        return None
    return RepositoryKeys.from_master(_master_key(config, secret, container)[0])


def read_secret(path: Path) -> bytes:
    """A passphrase or key from a key file: its bytes, less one trailing newline."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InvalidInput(f"Cannot read key file {path}: {e.strerror or e}") from e
    secret = data.removesuffix(b"\n").removesuffix(b"\r")
    if not secret:
        raise InvalidInput(f"Key file {path} is empty.")
    return secret


def list_keys(store: Store, container: str) -> tuple[KeySlot, ...]:
    """The key slots of the repository in `container` (empty if unencrypted)."""
    return _existing(store, container).keys


def add_key(
    store: Store,
    container: str,
    secret: bytes | None,
    new_secret: bytes,
    *,
    kdf: KdfParams | None = None,
) -> KeySlot:
    """Add a slot opened by `new_secret`; `secret` must open an existing one."""
    config = _existing(store, container)
    if not config.encrypted:
        raise InvalidInput(f"Repository {container} is not encrypted: it has no keys to add to.")
    master, _ = _master_key(config, secret, container)
    slot = wrap_master_key(
        master, new_secret, config.repository_id, created_at=datetime.now(UTC), kdf=kdf
    )
    while any(s.slot_id == slot.slot_id for s in config.keys):
        slot = wrap_master_key(
            master, new_secret, config.repository_id, created_at=slot.created_at, kdf=kdf
        )
    write_config(store, replace(config, keys=(*config.keys, slot)), container)
    log.info("key slot added container=%s slot_id=%s", container, slot.slot_id)
    return slot


def remove_key(store: Store, container: str, secret: bytes | None, slot_id: str) -> None:
    """Remove slot `slot_id`; `secret` must open one of the slots. The last
    slot is never removed: without it no one could read the repository."""
    config = _existing(store, container)
    if not any(s.slot_id == slot_id for s in config.keys):
        raise KeySlotNotFound(container, slot_id)
    _master_key(config, secret, container)
    kept = tuple(s for s in config.keys if s.slot_id != slot_id)
    if not kept:
        raise InvalidInput(
            f"Key slot {slot_id} is the last key of repository {container}; "
            "add another key before removing it."
        )
    write_config(store, replace(config, keys=kept), container)
    log.info("key slot removed container=%s slot_id=%s", container, slot_id)


def _existing(store: Store, container: str) -> RepositoryConfig:
    config = read_config(store, container)
    if config is None:
        raise RepositoryNotFound(container)
    return config


def _master_key(
    config: RepositoryConfig, secret: bytes | None, container: str
) -> tuple[bytes, KeySlot]:
    if secret is None:
        raise KeyRequired(container)
    opened = unwrap_master_key(config.keys, secret, config.repository_id)
    if opened is None:
        raise WrongKey(container)
    return opened
