"""What a task's code gets: the database, the settings, the store, the task, progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ashbox.config import Settings
from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.repository.keys import read_secret
from ashbox.repository.repository import Repository
from ashbox.statuses import TaskKind
from ashbox.storage.base import Store

# What Cinder's `backup.service` holds: the driver that made the backup.
SERVICE = "ashbox.repository.v1"


@dataclass(frozen=True, slots=True)
class Job:
    db: Database
    settings: Settings
    store: Store
    task_id: str
    kind: TaskKind
    backup_id: str
    volume_id: str | None
    volume_is_new: bool
    attempts: int
    max_attempts: int
    worker_host: str
    progress: Callable[[int, int], None]

    def repository(self, container: str) -> Repository:
        """The container's repository: created with `encryption` if new, and
        unlocked with `key_file` (KeyRequired, WrongKey: the task fails with it)."""
        return open_repository(self.settings, self.store, self.db, container)


def open_repository(settings: Settings, store: Store, db: Database, container: str) -> Repository:
    """The repository of `container` as the settings configure it, on the database index."""
    s = settings
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
