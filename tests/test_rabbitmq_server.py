"""The `rabbitmq_server` fixture is a working notification bus for oslo.messaging,
the library the service sends with, and keeps its data across a restart."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.rabbitmq_server import RabbitServer

pytestmark = pytest.mark.integration

PUBLISHER = "backup.host-a"
# Durable queues on an exchange and a topic of their own: RabbitMQ refuses to
# declare a queue or exchange again with another durability, and other tests
# share this node's default (non-durable) `openstack` exchange and `notifications`.
DURABLE_CONFIG = """\
[DEFAULT]
control_exchange = ashbox-durable
[oslo_messaging_rabbit]
amqp_durable_queues = true
"""
DURABLE_TOPIC = "durable-notifications"

Heard = tuple[str, str, dict[str, Any]]  # publisher id, event type, payload


class Endpoint:
    """A notification endpoint that hands each INFO notification to the test."""

    def __init__(self) -> None:
        self.heard: queue.Queue[Heard] = queue.Queue()

    def info(
        self,
        ctxt: dict[str, Any],
        publisher_id: str,
        event_type: str,
        payload: dict[str, Any],
        metadata: dict[str, Any],
    ) -> None:
        self.heard.put((publisher_id, event_type, payload))


def test_a_notification_sent_is_heard(rabbitmq_server: RabbitServer) -> None:
    with (
        _transport(rabbitmq_server.transport_url) as transport,
        _listening(transport, "notifications") as endpoint,
    ):
        _notifier(transport, "notifications").info({}, "backup.create.start", {"backup_id": "x"})
        heard = endpoint.heard.get(timeout=30)
    assert heard == (PUBLISHER, "backup.create.start", {"backup_id": "x"})


def test_a_restart_keeps_the_notifications_queued_and_the_bus_working(
    rabbitmq_server: RabbitServer, tmp_path: Path
) -> None:
    config = tmp_path / "messaging.conf"
    config.write_text(DURABLE_CONFIG)
    url = rabbitmq_server.transport_url
    with _transport(url, config) as transport:  # nobody listens yet: the queue keeps it
        _notifier(transport, DURABLE_TOPIC).info({}, "backup.create.start", {"backup_id": "x"})

    rabbitmq_server.stop()
    rabbitmq_server.start()

    with _transport(url, config) as transport, _listening(transport, DURABLE_TOPIC) as endpoint:
        _notifier(transport, DURABLE_TOPIC).info({}, "backup.create.end", {"backup_id": "x"})
        heard = [endpoint.heard.get(timeout=30), endpoint.heard.get(timeout=30)]
    assert heard == [
        (PUBLISHER, "backup.create.start", {"backup_id": "x"}),
        (PUBLISHER, "backup.create.end", {"backup_id": "x"}),
    ]


@contextmanager
def _transport(url: str, config: Path | None = None) -> Iterator[Any]:
    """A notification transport to `url`; on leaving it is cleaned up and every
    thread started while it was open (listener, heartbeats) has ended."""
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


def _notifier(transport: Any, topic: str) -> Any:
    import oslo_messaging

    return oslo_messaging.Notifier(
        transport, publisher_id=PUBLISHER, driver="messaging", topics=[topic]
    )


@contextmanager
def _listening(transport: Any, topic: str) -> Iterator[Endpoint]:
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
