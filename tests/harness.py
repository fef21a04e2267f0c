"""A service and a worker on a real database, store directory and image files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy import update

from ashbox.backups.service import Service
from ashbox.config import Settings
from ashbox.db.engine import Database
from ashbox.db.models import Backup, Volume
from ashbox.policy import with_implied_roles
from ashbox.records import RequestContext
from ashbox.worker.runner import Worker
from tests.conftest import ROOMY_QUOTAS


class Harness:
    """The service and a worker on a real database, store directory and image files."""

    def __init__(self, db: Database, root: Path, **overrides: object) -> None:
        values: dict[str, object] = {
            "data_dir": root / "data",
            "database_url": db.url,
            "block_size": 64 * 1024,
            "pack_size": 1024 * 1024,
            "gc_grace_seconds": 0.0,
            **ROOMY_QUOTAS,
        }
        values.update(overrides)
        self.root = root  # images live here, the service's files under data_dir
        self.data_dir = root / "data"
        self.db = db
        self.settings = dataclasses.replace(Settings(), **values)  # type: ignore[arg-type]
        self.service = Service(db, self.settings)
        self.worker = Worker(db, self.settings)
        self.worker.health.report_alive()  # its service is up, as a started worker reports it
        self.ctx = RequestContext(
            user_id="u1", project_id="p1", is_admin=True, roles=with_implied_roles(["admin"])
        )

    def image(self, name: str, data: bytes, *, size: int | None = None) -> Path:
        """A raw image file holding `data` at its start, `size` bytes long (sparse tail)."""
        path = self.root / name
        with path.open("wb") as f:
            f.write(data)
            f.truncate(size if size is not None else len(data))
        return path

    def import_image(self, name: str, data: bytes, *, size: int | None = None) -> str:
        """Manage a new image as a volume, `available` once this returns."""
        path = self.image(name, data, size=size)
        volume_id = self.service.import_volume(self.ctx, path=str(path), name=name).id
        self.run_tasks()
        return volume_id

    def create_volume(self, name: str, size: int = 1) -> str:
        """A new empty volume, `available` once this returns."""
        volume_id = self.service.create_volume(self.ctx, size=size, name=name).id
        self.run_tasks()
        return volume_id

    def force_status(self, model: type[Backup] | type[Volume], row_id: str, status: str) -> None:
        """Set a status behind the service's back: the state some other actor
        (an admin's hand on the database, a crashed older version) left."""
        with self.db.transaction() as s:
            s.execute(update(model).where(model.id == row_id).values(status=status))

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
