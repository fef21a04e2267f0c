"""Real object store servers for tests: Ceph radosgw (S3) and Swift SAIO.

`start_rgw()` / `start_swift()` start a server on free ports under a fresh
directory and return a handle whose `stop()` and `start()` stop it and start
it again on the same ports with the same data (a chaos test restarts one).
The session fixtures `rgw_server` and `swift_server` start each once per test
session and stop it at the end; they are registered for the whole suite in
tests/conftest.py. The start and stop logic is scripts/rgw-server.sh and
scripts/swift-server.sh (REAL-PARTS.md part 1); scripts/test-deps.sh installs
the Debian packages. A server that cannot start makes its tests skip, and
fail under CI=true (tests.needs.unavailable).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ashbox.storage.options import StoreOptions
from tests.needs import unavailable

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
START_TIMEOUT = 240
_TEMP_PREFIXES = ("ashbox-rgw-", "ashbox-swift-")  # of the directories made for servers


class ServerFailed(Exception):
    """A server script failed; the message ends with its logs."""


class ServerMissing(ServerFailed):
    """The server's programs are not installed."""


@dataclass
class ObjectServer:
    """A server started by one of scripts/*-server.sh, rooted at `root`."""

    script: Path
    root: Path
    ports: dict[str, int]
    started_seconds: float = 0.0  # how long the last start took
    running: bool = field(default=False, init=False)

    def start(self) -> None:
        began = time.monotonic()
        env = {**os.environ, **{name: str(port) for name, port in self.ports.items()}}
        try:
            subprocess.run(
                [str(self.script), "start", str(self.root)],
                env=env,
                check=True,
                capture_output=True,
                timeout=START_TIMEOUT,
                text=True,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            self.stop()
            output = f"{e.stdout or ''}{e.stderr or ''}"
            raise ServerFailed(f"{self.script.name} start failed: {output}\n{self.logs()}") from e
        self.running = True
        self.started_seconds = time.monotonic() - began

    def stop(self) -> None:
        subprocess.run(
            [str(self.script), "stop", str(self.root)],
            check=False,
            capture_output=True,
            timeout=60,
        )
        self.running = False

    def remove(self) -> None:
        """Stop and delete every file of the server (and the temporary
        directory made for it)."""
        self.stop()
        made = self.root.parent.name.startswith(_TEMP_PREFIXES)
        shutil.rmtree(self.root.parent if made else self.root, ignore_errors=True)

    def logs(self, lines: int = 40) -> str:
        """The last lines of each of the server's logs."""
        out = []
        for log in sorted((self.root / "log").glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"==> {log} <==\n" + "\n".join(text))
        return "\n".join(out)


@dataclass
class RgwServer(ObjectServer):
    access_key: str = "ashbox"
    secret_key: str = "ashbox-secret"
    region: str = "us-east-1"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['RGW_PORT']}"

    def options(self, **changes: object) -> StoreOptions:
        """Store options that reach this server (`changes` on top)."""
        base = StoreOptions(
            s3_endpoint_url=self.endpoint,
            s3_region=self.region,
            s3_access_key=self.access_key,
            s3_secret_key=self.secret_key,
            s3_addressing_style="path",
            store_timeout_seconds=20,
        )
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@dataclass
class SwiftServer(ObjectServer):
    user: str = "test:tester"
    key: str = "testing"

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['PROXY_PORT']}/auth/v1.0"

    def options(self, **changes: object) -> StoreOptions:
        base = StoreOptions(
            swift_auth_url=self.auth_url,
            swift_auth_version="1",
            swift_user=self.user,
            swift_key=self.key,
            store_timeout_seconds=20,
        )
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free now on 127.0.0.1."""
    import socket

    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def start_rgw(root: Path | None = None) -> RgwServer:
    """A running radosgw on a fresh one-OSD Ceph cluster (ServerFailed if not)."""
    _need("radosgw", "ceph-mon", "ceph-osd")
    rgw, mon = free_ports(2)
    server = RgwServer(
        SCRIPTS / "rgw-server.sh",
        root or Path(tempfile.mkdtemp(prefix="ashbox-rgw-")) / "cluster",
        {"RGW_PORT": rgw, "MON_PORT": mon},
    )
    server.start()
    return server


def start_swift(root: Path | None = None) -> SwiftServer:
    """A running Swift all-in-one with tempauth (ServerFailed if not)."""
    _need("swift-proxy-server", "swift-object-server", "swift-ring-builder", "memcached")
    proxy, obj, cont, acct, mc = free_ports(5)
    if root is None:
        parent = Path(tempfile.mkdtemp(prefix="ashbox-swift-"))
        parent.chmod(0o755)  # the servers run as user swift
        root = parent / "saio"
    server = SwiftServer(
        SCRIPTS / "swift-server.sh",
        root,
        {
            "PROXY_PORT": proxy,
            "OBJ_PORT": obj,
            "CONT_PORT": cont,
            "ACCT_PORT": acct,
            "MC_PORT": mc,
        },
    )
    server.start()
    return server


def unique_name(prefix: str = "t") -> str:
    """A bucket, container or prefix name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def rgw_server(request: pytest.FixtureRequest) -> Iterator[RgwServer]:
    """A Ceph radosgw serving S3, started once per test session."""
    yield from _serve(request, start_rgw, "Ceph radosgw (S3)")


@pytest.fixture(scope="session")
def swift_server(request: pytest.FixtureRequest) -> Iterator[SwiftServer]:
    """A Swift all-in-one, started once per test session."""
    yield from _serve(request, start_swift, "Swift SAIO")


def _serve(
    request: pytest.FixtureRequest, start: Callable[[], ObjectServer], what: str
) -> Iterator[ObjectServer]:
    try:
        server = start()
    except ServerFailed as e:
        unavailable(f"{what}: {e}")
    sys.stderr.write(f"\n{what} started in {server.started_seconds:.1f} s at {server.root}\n")
    try:
        yield server
    finally:
        if request.session.testsfailed:
            server.stop()
            sys.stderr.write(f"\n{what} logs kept under {server.root}:\n{server.logs(20)}\n")
        else:
            server.remove()


def _need(*commands: str) -> None:
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        raise ServerMissing(
            f"{', '.join(missing)} not installed (scripts/test-deps.sh installs them)"
        )
