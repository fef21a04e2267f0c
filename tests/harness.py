"""A service and a worker on a real database, store directory and image files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ashbox.backups.service import Service
from ashbox.config import Settings
from ashbox.db.engine import Database
from ashbox.records import RequestContext
from ashbox.worker.runner import Worker


class Harness:
    """The service and a worker on a real database, store directory and image files."""

    def __init__(self, db: Database, root: Path, **overrides: object) -> None:
        values: dict[str, object] = {
            "data_dir": root,
            "database_url": db.url,
            "block_size": 64 * 1024,
            "pack_size": 1024 * 1024,
            "gc_grace_seconds": 0.0,
        }
        values.update(overrides)
        self.root = root
        self.db = db
        self.settings = dataclasses.replace(Settings(), **values)  # type: ignore[arg-type]
        self.service = Service(db, self.settings)
        self.worker = Worker(db, self.settings)
        self.ctx = RequestContext(user_id="u1", project_id="p1", is_admin=True)

    def image(self, name: str, data: bytes, *, size: int | None = None) -> Path:
        """A raw image file holding `data` at its start, `size` bytes long (sparse tail)."""
        path = self.root / name
        with path.open("wb") as f:
            f.write(data)
            f.truncate(size if size is not None else len(data))
        return path

    def import_image(self, name: str, data: bytes, *, size: int | None = None) -> str:
        path = self.image(name, data, size=size)
        return self.service.import_volume(self.ctx, path=str(path), name=name).id

    def run_tasks(self) -> int:
        """Run every runnable task to its end in this thread; how many ran."""
        count = 0
        while self.worker.run_one():
            count += 1
        return count

    def backup(self, volume_id: str, **kw: object) -> str:
        backup = self.service.create_backup(self.ctx, volume_id=volume_id, **kw)  # type: ignore[arg-type]
        self.run_tasks()
        return backup.id
