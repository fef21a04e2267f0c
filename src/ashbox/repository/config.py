"""The repository config: the one object that says how a container is encoded.

Stored as JSON at `<container>/config`; byte layout and fields in
docs/format.md, "Config". Change both in one commit.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from ashbox.errors import CorruptData, InvalidInput, KeyRequired, ObjectNotFound
from ashbox.repository.crypto import KdfParams, KeySlot, new_master_key, wrap_master_key
from ashbox.storage.base import Store

FORMAT_VERSION = 1
ENCRYPTED_FORMAT_VERSION = 2  # the first version that can encrypt (docs/format.md §10)
FORMAT_VERSIONS = (FORMAT_VERSION, ENCRYPTED_FORMAT_VERSION)
FORMAT_NAME = "ashbox-repository"
MIN_BLOCK_SIZE = 4096
MAX_BLOCK_SIZE = 16 << 20
HASH_PLAIN = "blake3"
HASH_KEYED = "blake3-keyed"
ENCRYPTION_NONE = "none"
ENCRYPTION_AES_GCM = "aes-256-gcm"
HASHES = (HASH_PLAIN, HASH_KEYED)
COMPRESSIONS = ("zstd",)
ENCRYPTIONS = (ENCRYPTION_NONE, ENCRYPTION_AES_GCM)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RepositoryConfig:
    repository_id: str
    block_size: int
    created_at: datetime
    format_version: int = FORMAT_VERSION
    hash: str = HASH_PLAIN
    compression: str = "zstd"
    encryption: str = ENCRYPTION_NONE
    keys: tuple[KeySlot, ...] = ()

    @property
    def encrypted(self) -> bool:
        return self.encryption != ENCRYPTION_NONE

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "repository_id": self.repository_id,
            "created_at": self.created_at.isoformat(),
            "block_size": self.block_size,
            "hash": self.hash,
            "compression": self.compression,
            "encryption": self.encryption,
            "keys": [slot.to_doc() for slot in self.keys],
        }
        return json.dumps(doc, indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> RepositoryConfig:
        """Parse and validate a config; CorruptData for anything this version cannot use."""
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CorruptData(f"Repository config is not valid JSON: {e}") from e
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            raise CorruptData("Repository config does not describe an ashbox repository.")
        version = doc.get("format_version")
        if version not in FORMAT_VERSIONS or isinstance(version, bool):
            raise CorruptData(f"Repository format version {version!r} is not supported.")
        try:
            config = cls(
                repository_id=_field(doc, "repository_id", str),
                block_size=_field(doc, "block_size", int),
                created_at=datetime.fromisoformat(_field(doc, "created_at", str)),
                format_version=version,
                hash=_field(doc, "hash", str),
                compression=_field(doc, "compression", str),
                encryption=_field(doc, "encryption", str),
                keys=tuple(KeySlot.from_doc(slot) for slot in _field(doc, "keys", list)),
            )
        except ValueError as e:
            raise CorruptData(f"Repository config has a bad created_at: {e}") from e
        config.validate(error=CorruptData)
        return config

    def validate(self, *, error: type[CorruptData] | type[InvalidInput] = InvalidInput) -> None:
        bs = self.block_size
        if not (MIN_BLOCK_SIZE <= bs <= MAX_BLOCK_SIZE and bs % MIN_BLOCK_SIZE == 0):
            raise error(
                f"Block size {bs} must be a multiple of {MIN_BLOCK_SIZE} "
                f"between {MIN_BLOCK_SIZE} and {MAX_BLOCK_SIZE}."
            )
        for name, value, known in (
            ("hash", self.hash, HASHES),
            ("compression", self.compression, COMPRESSIONS),
            ("encryption", self.encryption, ENCRYPTIONS),
        ):
            if value not in known:
                raise error(f"Repository {name} {value!r} is not supported.")
        if self.created_at.tzinfo is None:
            raise error("Repository created_at must carry a time zone.")
        if self.encrypted:
            if self.hash != HASH_KEYED or not self.keys:
                raise error("An encrypted repository needs keyed blob ids and a key slot.")
            if self.format_version < ENCRYPTED_FORMAT_VERSION:
                raise error(f"Format version {self.format_version} cannot be encrypted.")
        elif self.hash != HASH_PLAIN or self.keys:
            raise error("An unencrypted repository has plain blob ids and no key slots.")
        if len({slot.slot_id for slot in self.keys}) != len(self.keys):
            raise error("Repository key slot ids are not unique.")


def config_key(container: str) -> str:
    return f"{container}/config"


def read_config(store: Store, container: str) -> RepositoryConfig | None:
    """The container's config, None if it has none."""
    try:
        data = store.get(config_key(container))
    except ObjectNotFound:
        return None
    return RepositoryConfig.from_json(data)


def write_config(store: Store, config: RepositoryConfig, container: str) -> None:
    """Replace the container's config with one atomic `put` (key slot changes)."""
    config.validate()
    store.put(config_key(container), config.to_json())


def load_or_create_config(
    store: Store,
    container: str,
    *,
    block_size: int,
    encryption: str = ENCRYPTION_NONE,
    secret: bytes | None = None,
    kdf: KdfParams | None = None,
) -> RepositoryConfig:
    """The container's config; created with `block_size` and `encryption` if
    there is none yet (an encrypted one with a new master key in one slot that
    `secret` opens). An existing config always wins over these arguments."""
    existing = read_config(store, container)
    if existing is not None:
        return existing
    key = config_key(container)
    repository_id = str(uuid.uuid4())
    created_at = datetime.now(UTC)
    config = RepositoryConfig(
        repository_id=repository_id, block_size=block_size, created_at=created_at
    )
    if encryption == ENCRYPTION_AES_GCM:
        if secret is None:
            raise KeyRequired(container)
        slot = wrap_master_key(
            new_master_key(), secret, repository_id, created_at=created_at, kdf=kdf
        )
        config = replace(
            config,
            format_version=ENCRYPTED_FORMAT_VERSION,
            hash=HASH_KEYED,
            encryption=encryption,
            keys=(slot,),
        )
    elif encryption != ENCRYPTION_NONE:
        raise InvalidInput(f"Encryption {encryption!r} is not one of {', '.join(ENCRYPTIONS)}.")
    config.validate()
    store.put(key, config.to_json())
    # Two processes creating the same container race; both then use the survivor.
    return RepositoryConfig.from_json(store.get(key))


def _field(doc: dict[str, object], name: str, kind: type[_T]) -> _T:
    value = doc.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CorruptData(f"Repository config field {name!r} is missing or not a {kind.__name__}.")
    return value
