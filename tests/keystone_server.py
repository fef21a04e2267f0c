"""A real Keystone for tests: PyPI `keystone`, SQLite, fernet tokens, served by uWSGI.

The recipe is REAL-PARTS.md part 4. Keystone and uWSGI live in their own venv,
built by `scripts/conformance-venv.sh` (`.venv-conformance-keystone`, or the
venv named by `ASHBOX_KEYSTONE_VENV`); everything it writes goes under a temp
dir. `keystone` is a session fixture: import it into a conftest to use it.
Without the venv the tests that need it skip, except under CI=true where they
fail (tests/needs.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.conftest import free_port
from tests.needs import unavailable

REPO = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("ASHBOX_KEYSTONE_VENV", REPO / ".venv-conformance-keystone"))
REGION = "RegionOne"
ADMIN_PASSWORD = "admin-secret"
# Cinder registers its v3 API under both types; openstacksdk and Tempest 47 look for
# `block-storage` first (os-service-types lists volumev3 as its alias).
BLOCK_STORAGE_TYPES = {"block-storage": "cinder", "volumev3": "cinderv3"}
STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str
    project_name: str
    user_id: str
    project_id: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"


class Keystone:
    """A running Keystone; the admin (role admin in project admin) is bootstrapped."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.auth_url = self.url + "/v3"
        self.log = root / "keystone.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.auth_url, timeout=30)
        self._token = ""
        self.admin: Credentials | None = None

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        etc = self.root / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "keystone.conf").write_text(self._config())
        manage = [
            str(VENV / "bin" / "keystone-manage"),
            "--config-file",
            str(etc / "keystone.conf"),
        ]
        # What `keystone-manage fernet_setup` and `credential_setup` write, without the
        # 3 s each of them spends importing Keystone.
        for repository in ("fernet", "fernet-receipts", "credential"):
            _write_key_repository(self.root / repository)
        self._run([*manage, "db_sync"])
        self._run(
            [
                *manage,
                "bootstrap",
                "--bootstrap-password",
                ADMIN_PASSWORD,
                "--bootstrap-public-url",
                self.auth_url + "/",
                "--bootstrap-internal-url",
                self.auth_url + "/",
                "--bootstrap-admin-url",
                self.auth_url + "/",
                "--bootstrap-region-id",
                REGION,
            ]
        )
        env = {
            **os.environ,
            "OS_KEYSTONE_CONFIG_DIR": str(etc),
            "OS_KEYSTONE_CONFIG_FILES": "keystone.conf",
        }
        with (self.root / "uwsgi.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(VENV / "bin" / "uwsgi"),
                    "--http-socket",
                    f"127.0.0.1:{self.port}",
                    "--virtualenv",
                    str(VENV),
                    "--module",
                    "keystone.wsgi.api:application",
                    "--master",
                    # One request at a time: SQLite answers "database is locked" at
                    # once, not after a wait, when two transactions both want to write.
                    "--processes",
                    "1",
                    "--threads",
                    "1",
                    "--die-on-term",
                    "--need-app",
                    # uWSGI's plain http-socket closes every connection after its
                    # answer: say so, or clients reuse it and get a reset.
                    "--add-header",
                    "Connection: close",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(self.auth_url, timeout=2).status_code == 200:
                    self._login()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"keystone did not start:\n{self._tail()}")

    def stop(self) -> None:
        self.http.close()
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    # --- identity: what a cloud operator would do with `openstack` -------------------

    def token(self, credentials: Credentials) -> str:
        """A project-scoped fernet token for `credentials`."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "id": credentials.user_id,
                            "password": credentials.password,
                        }
                    },
                },
                "scope": {"project": {"id": credentials.project_id}},
            }
        }
        response = self.http.post("/auth/tokens", json=body)
        response.raise_for_status()
        return response.headers["X-Subject-Token"]

    def create_project(self, name: str) -> str:
        body = {"project": {"name": name, "domain_id": "default"}}
        return str(self._call("POST", "/projects", body)["project"]["id"])

    def create_user(
        self, name: str, project: str, *, roles: tuple[str, ...] = ("member",)
    ) -> Credentials:
        """A user with `roles` on project `project` (a name; created when missing)."""
        project_id = self.project_id(name=project) or self.create_project(project)
        password = f"{name}-secret"
        body = {
            "user": {
                "name": name,
                "password": password,
                "domain_id": "default",
                "default_project_id": project_id,
            }
        }
        user_id = str(self._call("POST", "/users", body)["user"]["id"])
        for role in roles:
            self.grant(role, user_id=user_id, project_id=project_id)
        return Credentials(name, password, project, user_id, project_id)

    def grant(self, role: str, *, user_id: str, project_id: str) -> None:
        role_id = self._find("/roles", "roles", name=role)
        if role_id is None:
            role_id = str(self._call("POST", "/roles", {"role": {"name": role}})["role"]["id"])
        self._call("PUT", f"/projects/{project_id}/users/{user_id}/roles/{role_id}")

    def project_id(self, *, name: str) -> str | None:
        return self._find("/projects", "projects", name=name)

    def register_block_storage(self, url: str) -> None:
        """Point the `block-storage` and `volumev3` services at `url` (as
        `http://HOST:PORT`), with `/v3/%(project_id)s` endpoints, replacing any
        endpoints they had: a later ashbox on another port takes over the catalog."""
        for service_type, name in BLOCK_STORAGE_TYPES.items():
            service_id = self._find("/services", "services", type=service_type)
            if service_id is None:
                body = {"service": {"type": service_type, "name": name, "enabled": True}}
                service_id = str(self._call("POST", "/services", body)["service"]["id"])
            for endpoint in self._call("GET", f"/endpoints?service_id={service_id}")["endpoints"]:
                self._call("DELETE", f"/endpoints/{endpoint['id']}")
            for interface in ("public", "internal", "admin"):
                body = {
                    "endpoint": {
                        "service_id": service_id,
                        "interface": interface,
                        "region_id": REGION,
                        "url": url.rstrip("/") + "/v3/%(project_id)s",
                    }
                }
                self._call("POST", "/endpoints", body)

    def authtoken_env(self, service: Credentials) -> dict[str, str]:
        """ashbox's `ASHBOX_KEYSTONE_AUTHTOKEN_*` variables (docs/configuration.md) for
        keystonemiddleware to check tokens as the service user `service`."""
        options = {
            "www_authenticate_uri": self.auth_url,
            "auth_url": self.auth_url,
            "auth_type": "password",
            "username": service.username,
            "password": service.password,
            "project_name": service.project_name,
            "user_domain_name": service.user_domain_name,
            "project_domain_name": service.project_domain_name,
        }
        return {f"ASHBOX_KEYSTONE_AUTHTOKEN_{k.upper()}": v for k, v in options.items()}

    def catalog(self, credentials: Credentials | None = None) -> list[dict[str, Any]]:
        """The service catalog a token for `credentials` (default: admin) carries."""
        token = self.token(credentials or self._admin())
        response = self.http.get("/auth/catalog", headers={"X-Auth-Token": token})
        response.raise_for_status()
        return list(response.json()["catalog"])

    # --- helpers -------------------------------------------------------------------

    def _config(self) -> str:
        root = self.root
        return f"""\
[DEFAULT]
log_file = {root / "keystone.log"}
[database]
connection = sqlite:///{root / "keystone.db"}
sqlite_synchronous = false
[identity]
# bcrypt's minimum: tests and Tempest create many users and log in often.
password_hash_rounds = 4
[token]
provider = fernet
[fernet_tokens]
key_repository = {root / "fernet"}
[fernet_receipts]
key_repository = {root / "fernet-receipts"}
[credential]
key_repository = {root / "credential"}
"""

    def _login(self) -> None:
        """Find the bootstrapped admin's ids and take a token for the admin calls."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": "admin",
                            "domain": {"id": "default"},
                            "password": ADMIN_PASSWORD,
                        }
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
            }
        }
        response = self.http.post("/auth/tokens", json=body)
        response.raise_for_status()
        token = response.json()["token"]
        self.admin = Credentials(
            "admin", ADMIN_PASSWORD, "admin", token["user"]["id"], token["project"]["id"]
        )
        self._token = response.headers["X-Subject-Token"]

    def _admin(self) -> Credentials:
        assert self.admin is not None, "keystone not started"
        return self.admin

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body, headers={"X-Auth-Token": self._token})
        if response.status_code >= 400:
            raise RuntimeError(f"keystone {method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def _find(self, path: str, key: str, **filters: str) -> str | None:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        found = self._call("GET", f"{path}?{query}")[key]
        return str(found[0]["id"]) if found else None

    def _run(self, cmd: list[str]) -> None:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(
                f"keystone-manage {cmd[3]} failed:\n{result.stderr[-2000:]}\n{self._tail()}"
            )

    def _tail(self) -> str:
        parts = []
        for name in ("keystone.log", "uwsgi.log"):
            path = self.root / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


def keystone_available() -> str | None:
    """Why Keystone cannot be started here, or None when it can."""
    for tool in ("keystone-manage", "uwsgi"):
        if not (VENV / "bin" / tool).exists():
            return f"Keystone: no {VENV}/bin/{tool} (run scripts/conformance-venv.sh)"
    return None


@pytest.fixture(scope="session")
def keystone() -> Iterator[Keystone]:
    """A real Keystone for the whole session, stopped at its end."""
    missing = keystone_available()
    if missing:
        unavailable(missing)
    root = Path(tempfile.mkdtemp(prefix="ashbox-keystone-"))
    server = Keystone(root)
    try:
        try:
            server.start()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            server.stop()
            unavailable(f"Keystone did not start: {exc}")
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _write_key_repository(path: Path) -> None:
    """A fernet key repository as keystone-manage makes it: staged key 0, primary key 1."""
    path.mkdir(mode=0o700)
    for name in ("0", "1"):
        key = path / name
        key.write_bytes(Fernet.generate_key())
        key.chmod(0o600)
