"""Conformance suites (Tempest, cinder-tempest-plugin) against ashbox behind a real Keystone.

They need the venvs `make test` builds with `scripts/conformance-venv.sh`
(docs/conformance.md); without them they skip, except under CI=true, where
they fail.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conformance.tempest_run import tempest_available
from tests.keystone_server import REGION, Credentials, Keystone, keystone  # noqa: F401 (a fixture)
from tests.needs import unavailable
from tests.server import Server

API_VERSION = "3.64"
BUSY = frozenset({"creating", "backing-up", "restoring-backup", "restoring", "deleting"})
WAIT_SECONDS = 60.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "conformance: a community conformance suite (Tempest, its plugin)"
    )


@pytest.fixture(scope="session")
def tempest() -> None:
    missing = tempest_available()
    if missing:
        unavailable(missing)


@pytest.fixture(scope="session")
def keystone_ashbox(
    keystone: Keystone,  # noqa: F811 (the fixture imported above)
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """`ashbox serve` with `auth_strategy = "keystone"`, in `keystone`'s catalog as
    `block-storage` and `volumev3`."""
    service = keystone.create_user("ashbox", "service", roles=("service",))
    root = tmp_path_factory.mktemp("ashbox-keystone")
    server = Server(
        root / "data",
        f"sqlite:///{root / 'ashbox.db'}",
        ASHBOX_VOLUMES_DIR=str(root / "volumes"),
        ASHBOX_AUTH_STRATEGY="keystone",
        **keystone.authtoken_env(service),
    )
    server.start()
    keystone.register_block_storage(server.url)
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True, slots=True)
class Tenant:
    """A Keystone project with a `member` and a `reader` user."""

    project_id: str
    member: Credentials
    reader: Credentials


@pytest.fixture(scope="session")
def keystone_tenant(
    keystone: Keystone,  # noqa: F811 (the fixture imported above)
    keystone_ashbox: Server,
) -> Callable[[str], Tenant]:
    """A maker of fresh projects (`<name>-<random>`), each with a member and a reader."""

    def make(name: str) -> Tenant:
        project = f"{name}-{uuid.uuid4().hex[:8]}"
        member = keystone.create_user(f"{project}-member", project, roles=("member",))
        reader = keystone.create_user(f"{project}-reader", project, roles=("reader",))
        return Tenant(member.project_id, member, reader)

    return make


@pytest.fixture(scope="session")
def keystone_admin(
    keystone: Keystone,  # noqa: F811 (the fixture imported above)
    keystone_ashbox: Server,
) -> Credentials:
    """A user with role `admin` in a project of its own (not Keystone's `admin`):
    admin in any project is an admin of every project, as in Cinder."""
    project = f"ops-{uuid.uuid4().hex[:8]}"
    return keystone.create_user(f"{project}-admin", project, roles=("admin",))


def os_environ(keystone: Keystone, credentials: Credentials) -> dict[str, str]:  # noqa: F811
    """This process's environment without any OS_* or ASHBOX_* variable, plus the
    OS_* variables of an openrc for `credentials`: password auth, no endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ASHBOX_"))}
    env.update(
        OS_AUTH_URL=keystone.auth_url,
        OS_IDENTITY_API_VERSION="3",
        OS_USERNAME=credentials.username,
        OS_PASSWORD=credentials.password,
        OS_PROJECT_NAME=credentials.project_name,
        OS_USER_DOMAIN_NAME=credentials.user_domain_name,
        OS_PROJECT_DOMAIN_NAME=credentials.project_domain_name,
        OS_REGION_NAME=REGION,
        OS_INTERFACE="public",
    )
    return env


class CatalogClient:
    """Raw HTTP to ashbox as one Keystone user: a real token of theirs, sent to the
    `block-storage` public endpoint of their own catalog (`.../v3/<their project>`)."""

    def __init__(
        self,
        keystone: Keystone,  # noqa: F811
        credentials: Credentials,
        *,
        extras: bool = False,
    ) -> None:
        self.credentials = credentials
        self.token = keystone.token(credentials)
        self.url = _catalog_url(keystone.catalog(credentials), "block-storage")
        headers = {"X-Auth-Token": self.token, "OpenStack-API-Version": f"volume {API_VERSION}"}
        if extras:
            headers["X-Ashbox-Extras"] = "true"  # volume paths (admins only)
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.http.request(method, path, json=body, **kw)

    def call(self, method: str, path: str, body: Any = None, *, expect: int = 200) -> Any:
        response = self.request(method, path, body)
        assert response.status_code == expect, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def volume(self, name: str, size: int = 1) -> str:
        """A new volume, once available."""
        body = {"volume": {"size": size, "name": name}}
        volume_id = str(self.call("POST", "/volumes", body, expect=202)["volume"]["id"])
        assert self.wait("volumes", volume_id)["status"] == "available"
        return volume_id

    def backup(self, volume_id: str, **fields: Any) -> str:
        """A new backup of `volume_id`, once available."""
        body = {"backup": {"volume_id": volume_id, **fields}}
        backup_id = str(self.call("POST", "/backups", body, expect=202)["backup"]["id"])
        assert self.wait("backups", backup_id)["status"] == "available"
        return backup_id

    def wait(self, kind: str, resource_id: str, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        """The volume, backup or snapshot (`kind` as in its URL) once it leaves a
        transitional status; {} once it is gone."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.http.get(f"/{kind}/{resource_id}")
            if response.status_code == 404:
                return {}
            assert response.status_code == 200, response.text
            resource: dict[str, Any] = next(iter(response.json().values()))
            if resource["status"] not in BUSY:
                return resource
            time.sleep(0.05)
        raise TimeoutError(f"{kind} {resource_id} still busy after {timeout}s")


def _catalog_url(catalog: list[dict[str, Any]], service_type: str) -> str:
    for service in catalog:
        if service["type"] == service_type:
            for endpoint in service["endpoints"]:
                if endpoint["interface"] == "public" and endpoint["region"] == REGION:
                    return str(endpoint["url"])
    raise AssertionError(f"no public {service_type} endpoint in {catalog}")
