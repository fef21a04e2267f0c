"""API fixtures: the real service and a running worker on a real database, over real HTTP.

One stack per database kind for the whole session: a migrated database (an
SQLite file, and a PostgreSQL database on the server tests/conftest.py
starts), `ashbox.backups.service.Service` on it, `create_app` served by a real
uvicorn on 127.0.0.1, and a started `Worker`, so backups really complete and
restores really write volume files. Each test gets a fresh project, so tests
share a stack without sharing state.

Statuses the API cannot reach by itself in a test (a backup stuck in
`creating`, a volume in `error`) are set behind the service's back, as a hand
on the database would (`Stack.set_backup_status`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import update
from starlette.applications import Starlette

from ashbox.api.app import create_app
from ashbox.backups.service import Service
from ashbox.changes import Changes
from ashbox.config import Settings
from ashbox.db.engine import Database
from ashbox.db.models import Backup, Volume
from ashbox.relay import Relay
from ashbox.worker.runner import Worker
from tests.conftest import _fresh_postgres_database, free_port

BUSY_BACKUP = frozenset({"creating", "restoring", "deleting"})
BUSY_VOLUME = frozenset({"creating", "backing-up", "restoring-backup", "deleting"})
CHUNK = 64 * 1024
WAIT_SECONDS = 60.0


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """`app` on a real uvicorn server in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def stack_settings(data_dir: Path, database_url: str) -> Settings:
    """Settings of a test stack: tiny blocks and packs, a fast-polling worker."""
    return dataclasses.replace(
        Settings(),
        data_dir=data_dir,
        database_url=database_url,
        host="127.0.0.1",
        auth_strategy="noauth",
        poll_seconds=0.05,
        block_size=64 * 1024,
        pack_size=1 << 20,
    )


@dataclass
class Stack:
    """The API at `root` over the real service and a running worker on `db`."""

    backend: str  # "sqlite" or "postgresql"
    root: str  # http://127.0.0.1:PORT
    db: Database
    settings: Settings
    service: Service
    changes: Changes  # shared by the API and the worker, as `ashbox serve` does

    def set_backup_status(self, backup_id: str, status: str) -> None:
        """Force a backup's status behind the service's back."""
        with self.db.transaction() as s:
            done = s.execute(update(Backup).where(Backup.id == backup_id).values(status=status))
            assert done.rowcount == 1, backup_id  # type: ignore[attr-defined]

    def set_volume_status(self, volume_id: str, status: str) -> None:
        """Force a volume's status behind the service's back."""
        with self.db.transaction() as s:
            done = s.execute(update(Volume).where(Volume.id == volume_id).values(status=status))
            assert done.rowcount == 1, volume_id  # type: ignore[attr-defined]


@contextmanager
def running_stack(
    backend: str, data_dir: Path, database_url: str, *, store: str = "", **overrides: Any
) -> Iterator[Stack]:
    """A stack on `data_dir` and `database_url` (and on another's `store`, if given);
    `overrides`: other settings (an auth strategy, say)."""
    database = Database(database_url)
    database.migrate()
    settings = dataclasses.replace(stack_settings(data_dir, database_url), store=store, **overrides)
    service = Service(database, settings)
    changes = Changes()
    relay = Relay(database, changes, poll_seconds=settings.poll_seconds)
    worker = Worker(database, settings)
    relay.start()
    worker.start()
    try:
        with serving(create_app(service, settings, changes)) as url:
            yield Stack(backend, url, database, settings, service, changes)
    finally:
        worker.stop()
        relay.stop()
        database.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp(f"ashbox-api-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'ashbox.db'}"
    else:
        url = _fresh_postgres_database(request.getfixturevalue("postgres_server"))
    with running_stack(request.param, data_dir, url) as running:
        yield running


@pytest.fixture(scope="session")
def server(stack: Stack) -> str:
    return stack.root


@dataclass
class Api:
    """A client of one project of `stack`: `/v3/<project>` URLs, `u1:<project>` token."""

    stack: Stack
    project: str
    version: str = "3.71"
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=f"{self.root}/v3/{self.project}",
            headers={
                "X-Auth-Token": f"u1:{self.project}",
                "OpenStack-API-Version": f"volume {self.version}",
                "X-Ashbox-Extras": "true",  # volume paths, progress, stored size
            },
            timeout=30,
        )

    @property
    def root(self) -> str:
        return self.stack.root

    @property
    def url(self) -> str:
        return f"{self.root}/v3/{self.project}"

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.delete(path, **kw)

    def at(self, version: str) -> dict[str, str]:
        """Headers asking for microversion `version`."""
        return {"OpenStack-API-Version": f"volume {version}"}

    # --- volumes ------------------------------------------------------------------

    def volume(self, size: int = 1, **spec: Any) -> str:
        """Create a volume and wait until its worker made it available."""
        r = self.post("/volumes", json={"volume": {"size": size, **spec}})
        assert r.status_code == 202, r.text
        volume_id = str(r.json()["volume"]["id"])
        assert self.wait_volume(volume_id)["status"] == "available"
        return volume_id

    def show_volume(self, volume_id: str) -> dict[str, Any]:
        r = self.get(f"/volumes/{volume_id}")
        assert r.status_code == 200, r.text
        return r.json()["volume"]  # type: ignore[no-any-return]

    def path_of(self, volume_id: str) -> Path:
        return Path(self.show_volume(volume_id)["os-vol-ashbox-attr:path"])

    def write(self, volume_id: str, data: bytes, offset: int = 0) -> None:
        """Write `data` into the volume's file at `offset`, as a VM using it would."""
        with self.path_of(volume_id).open("r+b") as f:
            f.seek(offset)
            f.write(data)

    def fill(self, volume_id: str) -> str:
        """Write random data at a few places (block edges, deep in the volume); its digest."""
        for offset, size in ((0, 3 * CHUNK + 100), (5 * CHUNK - 7, 20), (700 * 1024**2, CHUNK)):
            self.write(volume_id, os.urandom(size), offset)
        return self.digest(volume_id)

    def scribble(self, volume_id: str) -> None:
        """Overwrite a restore target with other data, also where a backup has holes."""
        for offset in (0, 2 * CHUNK, 300 * 1024**2):
            self.write(volume_id, os.urandom(CHUNK), offset)

    def digest(self, volume_id: str) -> str:
        """The volume's content digest (see `content_digest`)."""
        return content_digest(self.path_of(volume_id))

    def wait_volume(self, volume_id: str, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        """The volume once it leaves creating/backing-up/restoring-backup/deleting;
        {} once deleted (404)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(f"/volumes/{volume_id}")
            if r.status_code == 404:
                return {}
            assert r.status_code == 200, r.text
            volume: dict[str, Any] = r.json()["volume"]
            if volume["status"] not in BUSY_VOLUME:
                return volume
            if time.monotonic() > deadline:
                raise TimeoutError(f"volume {volume_id} still {volume['status']}")
            time.sleep(0.02)

    # --- backups ------------------------------------------------------------------

    def backup(self, volume_id: str, **spec: Any) -> str:
        """Create a backup and wait until it is available."""
        backup_id = self.start_backup(volume_id, **spec)
        assert self.wait_backup(backup_id)["status"] == "available"
        return backup_id

    def start_backup(self, volume_id: str, **spec: Any) -> str:
        """Create a backup; do not wait for the worker."""
        r = self.post("/backups", json={"backup": {"volume_id": volume_id, **spec}})
        assert r.status_code == 202, r.text
        return str(r.json()["backup"]["id"])

    def wait_backup(self, backup_id: str, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        """The backup once it leaves creating/restoring/deleting; {} once deleted (404)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(f"/backups/{backup_id}")
            if r.status_code == 404:
                return {}
            assert r.status_code == 200, r.text
            backup: dict[str, Any] = r.json()["backup"]
            if backup["status"] not in BUSY_BACKUP:
                return backup
            if time.monotonic() > deadline:
                raise TimeoutError(f"backup {backup_id} still {backup['status']}")
            time.sleep(0.02)

    def restore(self, backup_id: str, **spec: Any) -> dict[str, Any]:
        """Restore, then wait until both the backup and the target volume settled."""
        r = self.post(f"/backups/{backup_id}/restore", json={"restore": spec})
        assert r.status_code == 202, r.text
        restore: dict[str, Any] = r.json()["restore"]
        assert self.wait_backup(backup_id)["status"] == "available"
        assert self.wait_volume(restore["volume_id"])["status"] == "available"
        return restore

    def other_project(self) -> Api:
        return Api(self.stack, uuid.uuid4().hex)


def content_digest(path: Path) -> str:
    """sha256 of a file's size and of every non-zero 64 KiB chunk with its offset.

    Equal for two files with the same bytes however their holes lie, and it
    reads only the data extents, so a sparse 1 GiB volume hashes at once.
    """
    h = hashlib.sha256()
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        h.update(size.to_bytes(8, "little"))
        pos = 0
        while pos < size:
            try:
                start = os.lseek(f.fileno(), pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            end = os.lseek(f.fileno(), start, os.SEEK_HOLE)
            offset = start - start % CHUNK
            while offset < end:
                chunk = os.pread(f.fileno(), CHUNK, offset)
                if chunk.strip(b"\0"):
                    h.update(offset.to_bytes(8, "little") + chunk.ljust(CHUNK, b"\0"))
                offset += CHUNK
            pos = max(end, offset)
    return h.hexdigest()


@pytest.fixture
def api(stack: Stack) -> Iterator[Api]:
    client = Api(stack, uuid.uuid4().hex)
    yield client
    client.http.close()
