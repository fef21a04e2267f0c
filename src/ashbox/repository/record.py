"""Backup records: what a deployment knows of a backup, kept beside its manifest.

Byte layout: docs/format.md, "Backup record". A record lets the backups
themselves (owner, name, volume, times, metadata), not only their blocks, be
brought back from the store alone (`ashbox repo recover`). Plain JSON after a
magic line; in an encrypted repository the JSON is sealed, authenticated
with the backup id.
"""

from __future__ import annotations

import json

from ashbox.errors import CorruptManifest
from ashbox.repository.crypto import Cipher

MAGIC = b"ASHREC1\n"
SEALED_MAGIC = b"ASHREC1E"
RECORD_VERSION = 1
FIELDS = (
    "id", "project_id", "user_id", "volume_id", "display_name", "display_description",
    "parent_id", "snapshot_id", "size", "container", "availability_zone", "object_count",
    "stored_size", "created_at", "data_timestamp", "metadata",
)  # fmt: skip


class CorruptRecord(CorruptManifest):
    pass


def record_key(container: str, backup_id: str) -> str:
    return f"{container}/records/{backup_id}"


def encode_record(fields: dict[str, object], cipher: Cipher | None) -> bytes:
    """`fields` (every name of FIELDS, JSON values; `id` the backup id) as stored."""
    missing = [f for f in FIELDS if f not in fields]
    if missing:
        raise ValueError(f"a backup record needs {', '.join(missing)}")
    body = json.dumps({"version": RECORD_VERSION, **fields}, sort_keys=True).encode()
    if cipher is None:
        return MAGIC + body
    return SEALED_MAGIC + bytes(cipher.seal(body, SEALED_MAGIC + str(fields["id"]).encode()))


def decode_record(data: bytes, backup_id: str, cipher: Cipher | None) -> dict[str, object]:
    """The fields of a stored record of `backup_id`; CorruptRecord for anything else."""
    magic, body = data[: len(MAGIC)], data[len(MAGIC) :]
    if magic == SEALED_MAGIC:
        if cipher is None:
            raise CorruptRecord(f"The record of backup {backup_id} is encrypted.")
        body = cipher.open(
            body,
            SEALED_MAGIC + backup_id.encode(),
            error=CorruptRecord,
            what=f"The record of backup {backup_id}",
        )
    elif magic != MAGIC:
        raise CorruptRecord(f"The record of backup {backup_id} has no record magic.")
    try:
        fields = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptRecord(f"The record of backup {backup_id} is not JSON: {e}") from e
    if not isinstance(fields, dict) or fields.get("version") != RECORD_VERSION:
        raise CorruptRecord(f"The record of backup {backup_id} has no version {RECORD_VERSION}.")
    if fields.get("id") != backup_id or any(f not in fields for f in FIELDS):
        raise CorruptRecord(f"The record stored for backup {backup_id} is not its record.")
    return fields
