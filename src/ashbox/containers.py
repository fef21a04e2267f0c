"""A container's repository, opened as the settings say, on the database index.

Workers open it to back up, restore and delete; the API opens it to check
what a request names (a reset to `available` needs the backup's manifest, an
import the record's), never to write.
"""

from __future__ import annotations

import re
from pathlib import Path

from ashbox.config import Settings
from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.errors import InvalidInput, RepositoryNotFound
from ashbox.repository.config import read_config
from ashbox.repository.keys import read_secret
from ashbox.repository.repository import Repository
from ashbox.storage.base import Store

# What Cinder's `backup.service` holds: the driver that made the backup.
SERVICE = "ashbox.repository.v1"


# The names a repository gives the objects inside its container (docs/format.md §2):
# a container nested under another cannot be called so.
_RESERVED = frozenset({"config", "data", "backups", "records"})
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_container(name: str) -> None:
    """InvalidInput unless `name` can name a container: 1 to 255 characters,
    `/`-separated segments of letters, digits, `_`, `.` and `-` that start with a
    letter or digit, none of them a name the repository uses inside a container."""
    segments = name.split("/")
    if not 0 < len(name) <= 255 or not all(_SEGMENT.match(s) for s in segments):
        raise InvalidInput(
            f"Invalid input received: container {name!r} is not a valid name: use 1 to 255 "
            "letters, digits, '_', '.', '-', with '/' between non-empty parts."
        )
    clash = [s for s in segments[1:] if s in _RESERVED]
    if clash:
        raise InvalidInput(
            f"Invalid input received: container {name!r} would lie inside another "
            f"container's own objects ({clash[0]!r} is a name a repository uses)."
        )


def open_repository(
    settings: Settings, store: Store, db: Database, container: str, *, create: bool = True
) -> Repository:
    """The repository of `container`: created with `encryption` if new (unless not
    `create`: RepositoryNotFound), and unlocked with `key_file` (KeyRequired,
    WrongKey)."""
    s = settings
    if not create and read_config(store, container) is None:
        raise RepositoryNotFound(container)
    return Repository.open(
        store,
        container,
        DbIndex(db),
        block_size=s.block_size,
        pack_size=s.pack_size,
        compression_level=s.compression_level,
        threads=s.pipeline_threads,
        upload_threads=s.upload_threads,
        encryption=s.encryption,
        secret=read_secret(Path(s.key_file)) if s.key_file else None,
        gc_grace_seconds=s.gc_grace_seconds,
    )
