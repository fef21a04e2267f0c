"""The `rabbitmq_server` fixture is a working notification bus for oslo.messaging,
the library the service sends with, and keeps its data across a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.rabbitmq_server import RabbitServer, listening, notification_transport

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


def test_a_notification_sent_is_heard(rabbitmq_server: RabbitServer) -> None:
    with (
        notification_transport(rabbitmq_server.transport_url) as transport,
        listening(transport, "notifications") as endpoint,
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
    with notification_transport(url, config) as transport:  # nobody listens yet: the queue keeps it
        _notifier(transport, DURABLE_TOPIC).info({}, "backup.create.start", {"backup_id": "x"})

    rabbitmq_server.stop()
    rabbitmq_server.start()

    with (
        notification_transport(url, config) as transport,
        listening(transport, DURABLE_TOPIC) as endpoint,
    ):
        _notifier(transport, DURABLE_TOPIC).info({}, "backup.create.end", {"backup_id": "x"})
        heard = [endpoint.heard.get(timeout=30), endpoint.heard.get(timeout=30)]
    assert heard == [
        (PUBLISHER, "backup.create.start", {"backup_id": "x"}),
        (PUBLISHER, "backup.create.end", {"backup_id": "x"}),
    ]


def _notifier(transport: Any, topic: str) -> Any:
    import oslo_messaging

    return oslo_messaging.Notifier(
        transport, publisher_id=PUBLISHER, driver="messaging", topics=[topic]
    )
