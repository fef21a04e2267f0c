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

import queue
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


Heard = tuple[str, str, dict[str, Any]]  # publisher id, event type, payload


class Endpoint:
    """A notification endpoint that hands each INFO notification to the test:
    in `heard`, one at a time, and in `notes`, all of them in order."""

    def __init__(self) -> None:
        self.heard: queue.Queue[Heard] = queue.Queue()
        self.notes: list[Heard] = []
        self._lock = threading.Lock()

    def info(
        self,
        ctxt: dict[str, Any],
        publisher_id: str,
        event_type: str,
        payload: dict[str, Any],
        metadata: dict[str, Any],
    ) -> None:
        with self._lock:
            self.notes.append((publisher_id, event_type, payload))
        self.heard.put((publisher_id, event_type, payload))

    def seen(self) -> list[Heard]:
        with self._lock:
            return list(self.notes)


@contextmanager
def notification_transport(url: str, config: Path | None = None) -> Iterator[Any]:
    """An oslo.messaging notification transport to `url`; on leaving it is cleaned
    up and every thread started while it was open (listener, heartbeats) has ended."""
    import oslo_messaging
    from oslo_config import cfg

    threads_before = set(threading.enumerate())
    conf = cfg.ConfigOpts()
    files = [str(config)] if config else []
    conf(args=[], project="ashbox-test", default_config_files=files, default_config_dirs=[])
    transport = oslo_messaging.get_notification_transport(conf, url=url)
    try:
        yield transport
    finally:
        transport.cleanup()
    left = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert not left, f"threads left behind: {left}"


@contextmanager
def listening(transport: Any, topic: str) -> Iterator[Endpoint]:
    """A running notification listener on `topic`, stopped and waited for on leaving."""
    import oslo_messaging

    endpoint = Endpoint()
    listener = oslo_messaging.get_notification_listener(
        transport, [oslo_messaging.Target(topic=topic)], [endpoint], executor="threading"
    )
    listener.start()
    try:
        yield endpoint
    finally:
        listener.stop()
        listener.wait()
