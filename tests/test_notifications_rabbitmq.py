"""`ashbox serve` sends its usage notifications to a real RabbitMQ, and a real
oslo.messaging notification listener hears the whole life of a backup, in
order; killed between a transition and its send, or after a send and before
its mark, each notification still arrives (perhaps twice, never zero times)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.rabbitmq_server import Endpoint, RabbitServer, listening, notification_transport
from tests.server import Server
from tests.test_notifications import PAYLOAD_KEYS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MiB = 1 << 20
WORKER = "host-n1"
CREATE = ["backup.create.start", "backup.createprogress", "backup.create.end"]


class Heard:
    """What the listener received, read back by backup."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    @property
    def notes(self) -> list[tuple[str, str, dict[str, Any]]]:
        return self.endpoint.seen()

    def of(self, backup_id: str) -> list[str]:
        return [e for _, e, p in self.notes if p.get("backup_id") == backup_id]

    def wait_for(self, backup_id: str, event_type: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while event_type not in self.of(backup_id):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{event_type} of {backup_id} never came: {self.of(backup_id)}")
            time.sleep(0.1)


@contextmanager
def heard_on(url: str) -> Iterator[Heard]:
    with notification_transport(url) as transport, listening(transport, "notifications") as e:
        yield Heard(e)


def _server(tmp_path: Path, rabbit: RabbitServer) -> Server:
    return Server(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'ashbox.db'}",
        ASHBOX_NOTIFICATION_DRIVER="messaging",
        ASHBOX_NOTIFICATION_TRANSPORT_URL=rabbit.transport_url,
        ASHBOX_WORKER_NAME=WORKER,
        # Slow enough that a create passes several tenths between heartbeats,
        # with packs small enough that reading runs only a little ahead of them.
        ASHBOX_STORE_BANDWIDTH=str(4 * MiB),
        ASHBOX_PACK_SIZE=str(MiB),
    )


def _image(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def _without_repeats(events: list[str]) -> list[str]:
    """The events with each run of one type (progress) shown once."""
    return [e for i, e in enumerate(events) if i == 0 or events[i - 1] != e]


def test_a_listener_hears_a_backup_s_whole_life(
    rabbitmq_server: RabbitServer, tmp_path: Path
) -> None:
    server = _server(tmp_path, rabbitmq_server)
    with heard_on(rabbitmq_server.transport_url) as heard:
        server.start()
        try:
            image = _image(tmp_path / "v.raw", 24 * MiB)
            volume = server.import_volume(image)["id"]
            full = server.create_backup(volume, name="full")
            assert server.wait_backup(full)["status"] == "available"
            with image.open("r+b") as f:
                f.write(os.urandom(MiB))
            incremental = server.create_backup(volume, incremental=True)
            assert server.wait_backup(incremental)["status"] == "available"
            target = server.restore(full)
            assert server.wait_volume(target)["status"] == "available"
            reset = {"os-reset_status": {"status": "error"}}
            server.call("POST", f"/backups/{full}/action", reset, 202)
            server.call("DELETE", f"/backups/{incremental}", expect=202)
            assert server.wait_backup(incremental) == {}
            heard.wait_for(full, "backup.reset_status.end")
            heard.wait_for(incremental, "backup.delete.end")
        finally:
            server.stop()

    assert _without_repeats(heard.of(full)) == [
        *CREATE,
        "backup.restore.start",
        "backup.restore.end",
        "backup.reset_status.start",
        "backup.reset_status.end",
    ]
    assert _without_repeats(heard.of(incremental)) == [
        *CREATE,
        "backup.delete.start",
        "backup.delete.end",
    ]
    assert {publisher for publisher, _, _ in heard.notes} == {f"backup.{WORKER}"}
    assert all(set(p) - {"backup_percent"} == PAYLOAD_KEYS for _, _, p in heard.notes)
    percents = [
        p["backup_percent"]
        for _, e, p in heard.notes
        if e == "backup.createprogress" and p["backup_id"] == full
    ]
    assert percents[-1] == 100 and len(percents) >= 2, percents
    assert percents == sorted(set(percents)) and all(10 <= n < 100 for n in percents[:-1])
    statuses = {e: p["status"] for _, e, p in heard.notes if p["backup_id"] == incremental}
    assert statuses["backup.create.end"] == "available"
    assert statuses["backup.delete.end"] == "deleted"
    end = next(p for _, e, p in heard.notes if e == "backup.create.end" and p["backup_id"] == full)
    assert end["display_name"] == "full" and end["volume_id"] == volume and end["size"] == 1


@pytest.mark.parametrize(
    "fault",
    [
        "task.ended:1",  # the create's last transition committed, its notifications not yet sent
        "notify.sent:2",  # the second notification handed to the bus, not yet marked sent
    ],
)
def test_a_kill_loses_no_notification(
    rabbitmq_server: RabbitServer, tmp_path: Path, fault: str
) -> None:
    server = _server(tmp_path, rabbitmq_server)
    with heard_on(rabbitmq_server.transport_url) as heard:
        server.start()
        try:
            volume = server.import_volume(_image(tmp_path / "v.raw", 8 * MiB))["id"]
            server.halt()
            server.env["ASHBOX_FAULT"] = fault
            server.start()
            backup = server.create_backup(volume)
            assert server.proc is not None
            server.proc.wait(120)
            del server.env["ASHBOX_FAULT"]
            server.start()
            assert server.wait_backup(backup)["status"] == "available"
            heard.wait_for(backup, "backup.create.end")
        finally:
            server.stop()
    events = heard.of(backup)
    assert _without_repeats(events) == CREATE, events
    assert events.count("backup.create.start") == 1
    if fault.startswith("notify.sent"):
        # The notification cut off before its mark came again after the restart.
        assert events[1] == events[2] == "backup.createprogress", events
