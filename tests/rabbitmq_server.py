"""A real RabbitMQ for tests: the bus the service sends its notifications on.

`start_rabbitmq()` starts a private node on free ports under a fresh directory
and returns a handle whose `stop()` and `start()` stop it and start it again on
the same ports with the same data (a test restarts it). The session fixture
`rabbitmq_server` starts one per test session and removes it at the end; it is
registered for the whole suite in tests/conftest.py. The start and stop logic is
scripts/rabbitmq-server.sh; scripts/test-deps.sh installs the Debian package. A
node that cannot start makes its tests skip, and fail under CI=true
(tests.needs.unavailable).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.needs import unavailable
from tests.object_stores import SCRIPTS, ObjectServer, ServerFailed, ServerMissing, free_ports

# What the script runs; /usr/sbin/rabbitmq-server is Debian's su-to-rabbitmq wrapper.
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


@dataclass
class RabbitServer(ObjectServer):
    """A RabbitMQ node started by scripts/rabbitmq-server.sh (user made at its first start)."""

    user: str = "ashbox"
    password: str = "ashbox-secret"

    @property
    def transport_url(self) -> str:
        """The oslo.messaging URL of the node, vhost `/`."""
        return f"rabbit://{self.user}:{self.password}@127.0.0.1:{self.ports['AMQP_PORT']}/"


def start_rabbitmq(root: Path | None = None) -> RabbitServer:
    """A running RabbitMQ node on free ports (ServerFailed if not)."""
    if not RABBITMQ_SERVER.exists():
        raise ServerMissing(f"{RABBITMQ_SERVER} not installed (scripts/test-deps.sh installs it)")
    amqp, dist, epmd = free_ports(3)
    server = RabbitServer(
        SCRIPTS / "rabbitmq-server.sh",
        # The script makes the directory; `remove()` deletes the whole of it.
        root or Path(tempfile.mkdtemp(prefix="ashbox-rabbitmq-")),
        {"AMQP_PORT": amqp, "DIST_PORT": dist, "EPMD_PORT": epmd},
    )
    server.start()
    return server


@pytest.fixture(scope="session")
def rabbitmq_server(request: pytest.FixtureRequest) -> Iterator[RabbitServer]:
    """A RabbitMQ node, started once per test session."""
    try:
        server = start_rabbitmq()
    except ServerFailed as e:
        unavailable(f"RabbitMQ: {e}")
    sys.stderr.write(f"\nRabbitMQ started in {server.started_seconds:.1f} s at {server.root}\n")
    try:
        yield server
    finally:
        if request.session.testsfailed:
            server.stop()
            sys.stderr.write(f"\nRabbitMQ logs kept under {server.root}:\n{server.logs(20)}\n")
        else:
            server.remove()
