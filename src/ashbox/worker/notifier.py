"""Sends the usage notifications that transitions recorded (ashbox.db.notifications).

One sender at a time over the deployment (an exclusive lock, ashbox.db.exclusive)
takes the oldest unsent rows, hands each to the emitter in order and marks it
sent. A crash between the send and the mark sends it again: at least once,
never lost. Emitters: `log` writes each to this log, `noop` drops it,
`messaging` publishes it with oslo.messaging, waiting while the bus is away,
so a notification stays unsent until the bus takes it. The worker is the
publisher: `backup.<worker name>`, as Cinder's backup host is.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Protocol

from ashbox import faults
from ashbox.config import Settings
from ashbox.db import notifications
from ashbox.db.engine import Database
from ashbox.db.exclusive import exclusive

log = logging.getLogger(__name__)

NOTIFIER_LOCK = "notifier"
_POLL_SECONDS = 1.0
_RETRY_SECONDS = 5.0


class Emitter(Protocol):
    def emit(self, publisher_id: str, note: notifications.Pending) -> None:
        """Send one notification, or raise."""

    def close(self) -> None: ...


class LogEmitter:
    def emit(self, publisher_id: str, note: notifications.Pending) -> None:
        log.info(
            "notification %s publisher_id=%s payload=%s",
            note.event_type,
            publisher_id,
            json.dumps(note.payload, sort_keys=True),
        )

    def close(self) -> None:
        pass


class NoopEmitter:
    def emit(self, publisher_id: str, note: notifications.Pending) -> None:
        pass

    def close(self) -> None:
        pass


class MessagingEmitter:
    """oslo.messaging's Notifier with its `messagingv2` driver (the 2.0 envelope
    every OpenStack listener reads), on a transport of its own. It retries a
    bus it cannot reach for ever (`retry=-1`): a send returns once the broker
    has the message, so nothing is marked sent that the bus did not take."""

    def __init__(self, transport_url: str, topics: list[str]) -> None:
        import oslo_messaging
        from oslo_config import cfg

        conf = cfg.ConfigOpts()
        conf(args=[], project="ashbox", default_config_files=[], default_config_dirs=[])
        self._transport = oslo_messaging.get_notification_transport(conf, url=transport_url)
        self._notifier = oslo_messaging.Notifier(
            self._transport, driver="messagingv2", topics=topics, retry=-1
        )

    def emit(self, publisher_id: str, note: notifications.Pending) -> None:
        context = {
            "project_id": note.payload.get("tenant_id"),
            "user_id": note.payload.get("user_id"),
        }
        notifier = self._notifier.prepare(publisher_id=publisher_id)
        notifier.info(context, note.event_type, note.payload)

    def close(self) -> None:
        self._transport.cleanup()


def open_emitter(settings: Settings) -> Emitter:
    if settings.notification_driver == "noop":
        return NoopEmitter()
    if settings.notification_driver == "messaging":
        topics = [t.strip() for t in settings.notification_topics.split(",") if t.strip()]
        return MessagingEmitter(settings.notification_transport_url, topics)
    return LogEmitter()


class NotificationSender:
    def __init__(self, db: Database, settings: Settings, emitter: Emitter) -> None:
        self.db = db
        self.emitter = emitter
        self.publisher_id = f"backup.{settings.resolved_worker_name}"

    def send_pending(self) -> int:
        """Send what is unsent, oldest first, if no other sender is at it; how
        many went. Raises what the emitter raised, after marking what went before."""
        sent_total = 0
        with exclusive(self.db, NOTIFIER_LOCK) as held:
            if not held:
                return 0
            while True:
                with self.db.reading() as s:
                    batch = notifications.unsent(s)
                if not batch:
                    return sent_total
                sent: list[int] = []
                try:
                    for note in batch:
                        self.emitter.emit(self.publisher_id, note)
                        faults.point("notify.sent")
                        sent.append(note.id)
                finally:
                    with self.db.transaction() as s:
                        notifications.mark_sent(s, sent)
                    sent_total += len(sent)

    def run_until(self, stopping: threading.Event, wake: threading.Event) -> None:
        """Send as notifications are recorded until `stopping`; a bus or database
        away is logged and tried again."""
        while not stopping.is_set():
            wake.wait(_POLL_SECONDS)
            wake.clear()
            try:
                self.send_pending()
            except Exception as exc:
                log.warning("could not send notifications, will retry: %s", _reason(exc))
                stopping.wait(_RETRY_SECONDS)
        self.emitter.close()


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
