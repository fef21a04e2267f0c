"""API fixtures: the app over a service, served by a real uvicorn on 127.0.0.1.

`service` is the in-memory fake (tests/api/fake_service.py) until the real
`ashbox.backups.service.Service` is swapped in here; the tests only talk HTTP.
Each test gets a fresh project, so tests share one server without sharing state.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from ashbox.api.app import create_app
from ashbox.api.service_protocol import BackupService
from ashbox.config import Settings
from tests.api.fake_service import FakeService
from tests.conftest import free_port


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


@dataclass
class Api:
    """A client of one fresh project: `/v3/<project>` URLs, `u1:<project>` token."""

    root: str  # http://127.0.0.1:PORT
    project: str
    version: str = "3.71"
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=f"{self.root}/v3/{self.project}",
            headers={
                "X-Auth-Token": f"u1:{self.project}",
                "OpenStack-API-Version": f"volume {self.version}",
            },
            timeout=30,
        )

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

    def volume(self, size: int = 1, **spec: Any) -> str:
        r = self.post("/volumes", json={"volume": {"size": size, **spec}})
        assert r.status_code == 202, r.text
        return str(r.json()["volume"]["id"])

    def backup(self, volume_id: str, **spec: Any) -> str:
        r = self.post("/backups", json={"backup": {"volume_id": volume_id, **spec}})
        assert r.status_code == 202, r.text
        return str(r.json()["backup"]["id"])


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackupService]:
    """The fake; `ASHBOX_API_TEST_SERVICE=real` runs the same tests over the real service
    (SQLite in a temp dir, no worker: backups stay `creating`)."""
    if os.environ.get("ASHBOX_API_TEST_SERVICE") != "real":
        yield FakeService()
        return
    from ashbox.backups.service import Service
    from ashbox.db.engine import Database

    data_dir = tmp_path_factory.mktemp("ashbox-api")
    database = Database(f"sqlite:///{data_dir / 'ashbox.db'}")
    database.migrate()
    yield Service(database, Settings(data_dir=data_dir))
    database.dispose()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(host="127.0.0.1", auth_strategy="noauth")


@pytest.fixture(scope="session")
def server(service: BackupService, settings: Settings) -> Iterator[str]:
    with serving(create_app(service, settings)) as url:
        yield url


@pytest.fixture
def api(server: str) -> Iterator[Api]:
    client = Api(server, uuid.uuid4().hex)
    yield client
    client.http.close()
