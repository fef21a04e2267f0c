"""Usage notifications: recorded with their transitions, sent in order, at least once."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
from sqlalchemy import select

from ashbox.config import settings_from
from ashbox.db import notifications
from ashbox.db.engine import Database
from ashbox.db.exclusive import exclusive
from ashbox.db.models import Notification
from ashbox.errors import InvalidInput
from ashbox.statuses import BackupStatus
from ashbox.worker.notifier import NOTIFIER_LOCK, LogEmitter, NotificationSender
from ashbox.worker.running import Running, _progress_to_tell
from tests.harness import Harness

DATA = os.urandom(256 * 1024)
PAYLOAD_KEYS = {
    "tenant_id",
    "user_id",
    "availability_zone",
    "backup_id",
    "host",
    "display_name",
    "created_at",
    "status",
    "volume_id",
    "size",
    "service_metadata",
    "service",
    "fail_reason",
    "parent_id",
    "num_dependent_backups",
    "snapshot_id",
}


def _recorded(db: Database) -> list[tuple[str, dict[str, Any]]]:
    with db.reading() as s:
        rows = s.execute(select(Notification).order_by(Notification.id)).scalars()
        return [(r.event_type, r.payload) for r in rows]


def _of(db: Database, backup_id: str) -> list[tuple[str, str, int | None]]:
    return [
        (event, p["status"], p.get("backup_percent"))
        for event, p in _recorded(db)
        if p["backup_id"] == backup_id
    ]


def test_a_backup_s_life_is_told_in_cinder_s_events_and_order(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    full = harness.backup(vid, name="monday")
    incremental = harness.backup(vid, incremental=True)
    restore = harness.service.restore_backup(harness.ctx, full)
    harness.run_tasks()
    harness.service.reset_backup_status(harness.ctx, full, "error")
    harness.service.delete_backup(harness.ctx, incremental)
    harness.run_tasks()

    assert _of(harness.db, full) == [
        ("backup.create.start", "creating", None),
        ("backup.createprogress", "available", 100),
        ("backup.create.end", "available", None),
        ("backup.restore.start", "restoring", None),
        ("backup.restore.end", "available", None),
        ("backup.reset_status.start", "available", None),
        ("backup.reset_status.end", "error", None),
    ]
    assert _of(harness.db, incremental) == [
        ("backup.create.start", "creating", None),
        ("backup.createprogress", "available", 100),
        ("backup.create.end", "available", None),
        ("backup.delete.start", "deleting", None),
        ("backup.delete.end", "deleted", None),
    ]
    assert restore.volume_id
    payloads = [p for _, p in _recorded(harness.db)]
    assert all(set(p) - {"backup_percent"} == PAYLOAD_KEYS for p in payloads)
    end = next(p for e, p in _recorded(harness.db) if e == "backup.create.end")
    assert end["tenant_id"] == "p1" and end["user_id"] == "u1"
    assert end["display_name"] == "monday" and end["volume_id"] == vid and end["size"] == 1
    assert end["created_at"].endswith("+00:00") and "." not in end["created_at"]
    [inc_end] = [
        p
        for e, p in _recorded(harness.db)
        if e == "backup.create.end" and p["backup_id"] == incremental
    ]
    assert inc_end["parent_id"] == full


def test_a_failed_create_sends_no_end_as_cinder_does(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    backup = harness.service.create_backup(harness.ctx, volume_id=vid)
    (harness.root / "v.raw").unlink()
    harness.run_tasks()
    assert harness.service.get_backup(harness.ctx, backup.id).status == BackupStatus.ERROR
    assert _of(harness.db, backup.id) == [("backup.create.start", "creating", None)]


def test_a_refused_transition_records_nothing(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    bid = harness.backup(vid)
    before = _recorded(harness.db)
    with pytest.raises(InvalidInput):
        harness.service.reset_backup_status(harness.ctx, bid, "restoring")
    assert _recorded(harness.db) == before


class Recording:
    def __init__(self, fail_at: int | None = None) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.fail_at = fail_at

    def emit(self, publisher_id: str, note: notifications.Pending) -> None:
        if self.fail_at is not None and len(self.sent) == self.fail_at:
            raise ConnectionError("bus away")
        self.sent.append((publisher_id, note.event_type, note.payload["backup_id"]))

    def close(self) -> None:
        pass


def test_the_sender_sends_each_once_in_order(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    first = harness.backup(vid)
    second = harness.backup(vid, incremental=True)
    emitter = Recording()
    sender = NotificationSender(harness.db, harness.settings, emitter)
    assert sender.send_pending() == 6
    host = harness.settings.resolved_worker_name
    assert emitter.sent == [
        (f"backup.{host}", e, b)
        for b in (first, second)
        for e in ("backup.create.start", "backup.createprogress", "backup.create.end")
    ]
    assert sender.send_pending() == 0
    with harness.db.reading() as s:
        assert notifications.count_unsent(s) == 0


def test_a_bus_away_keeps_the_rest_unsent_and_the_next_pass_resumes(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    harness.backup(vid)
    failing = Recording(fail_at=1)
    with pytest.raises(ConnectionError):
        NotificationSender(harness.db, harness.settings, failing).send_pending()
    assert [e for _, e, _ in failing.sent] == ["backup.create.start"]
    again = Recording()
    assert NotificationSender(harness.db, harness.settings, again).send_pending() == 2
    assert [e for _, e, _ in again.sent] == ["backup.createprogress", "backup.create.end"]


def test_one_sender_at_a_time(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    harness.backup(vid)
    emitter = Recording()
    with exclusive(harness.db, NOTIFIER_LOCK) as held:
        assert held
        assert NotificationSender(harness.db, harness.settings, emitter).send_pending() == 0
    assert emitter.sent == []


def test_the_log_emitter_writes_one_line_each(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    vid = harness.import_image("v.raw", DATA)
    bid = harness.backup(vid)
    with caplog.at_level(logging.INFO, logger="ashbox.worker.notifier"):
        NotificationSender(harness.db, harness.settings, LogEmitter()).send_pending()
    lines = [r.getMessage() for r in caplog.records if r.name == "ashbox.worker.notifier"]
    assert len(lines) == 3
    assert lines[0].startswith("notification backup.create.start publisher_id=backup.")
    assert f'"backup_id": "{bid}"' in lines[0]


def test_sent_notifications_are_reaped(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    harness.backup(vid)
    NotificationSender(harness.db, harness.settings, Recording()).send_pending()
    from datetime import UTC, datetime, timedelta

    with harness.db.transaction() as s:
        assert notifications.reap(s, datetime.now(UTC) - timedelta(hours=1)) == 0
        assert notifications.reap(s, datetime.now(UTC) + timedelta(seconds=1)) == 3


@pytest.mark.parametrize(
    ("done", "told", "expected"),
    [(0, 0, None), (99, 0, None), (100, 0, 1), (150, 1, None), (550, 1, 5), (1000, 5, 9)],
)
def test_progress_is_told_at_each_new_tenth(done: int, told: int, expected: int | None) -> None:
    running = Running("t", "backup", "b", "creating", 1, notifies_progress=True)  # type: ignore[arg-type]
    running.done, running.total, running.notified_tenth = done, 1000, told
    assert _progress_to_tell(running) == expected


def test_only_a_create_tells_its_progress() -> None:
    running = Running("t", "backup", "b", "restoring", 1)  # type: ignore[arg-type]
    running.done, running.total = 500, 1000
    assert _progress_to_tell(running) is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"notification_driver": "amqp"}, "notification_driver: 'amqp'"),
        ({"notification_driver": "messaging"}, "needs notification_transport_url"),
    ],
)
def test_a_bad_notification_setting_is_refused(values: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        settings_from(values)
