"""The repository config: the one object that says how a container is encoded.

Stored as JSON at `<container>/config`; byte layout and fields in
docs/format.md, "Config". Change both in one commit.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from ashbox.errors import CorruptData, InvalidInput, ObjectNotFound
from ashbox.storage.base import Store

FORMAT_VERSION = 1
FORMAT_NAME = "ashbox-repository"
MIN_BLOCK_SIZE = 4096
MAX_BLOCK_SIZE = 16 << 20
HASHES = ("blake3",)
COMPRESSIONS = ("zstd",)
ENCRYPTIONS = ("none",)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RepositoryConfig:
    repository_id: str
    block_size: int
    created_at: datetime
    format_version: int = FORMAT_VERSION
    hash: str = "blake3"
    compression: str = "zstd"
    encryption: str = "none"

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
            "keys": [],
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
        if version != FORMAT_VERSION:
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
            )
        except ValueError as e:
            raise CorruptData(f"Repository config has a bad created_at: {e}") from e
        if doc.get("keys") != []:
            raise CorruptData("Repository config holds keys, but encryption is not supported.")
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


def config_key(container: str) -> str:
    return f"{container}/config"


def load_or_create_config(store: Store, container: str, *, block_size: int) -> RepositoryConfig:
    """The container's config; created with `block_size` if there is none yet.
    An existing config always wins, whatever `block_size` says."""
    key = config_key(container)
    try:
        existing = store.get(key)
    except ObjectNotFound:
        existing = None
    if existing is not None:
        return RepositoryConfig.from_json(existing)
    config = RepositoryConfig(
        repository_id=str(uuid.uuid4()),
        block_size=block_size,
        created_at=datetime.now(UTC),
    )
    config.validate()
    store.put(key, config.to_json())
    # Two processes creating the same container race; both then use the survivor.
    return RepositoryConfig.from_json(store.get(key))


def _field(doc: dict[str, object], name: str, kind: type[_T]) -> _T:
    value = doc.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CorruptData(f"Repository config field {name!r} is missing or not a {kind.__name__}.")
    return value
