"""The worker's chores on a timer, besides leases: queueing a gc of every
container every `gc_interval_seconds` (docs/format.md, "Reclaiming space and
checking"), which any worker then runs, one at a time; reaping the
outbox's old rows; and reaping the user messages past `message_ttl` every
`message_reap_interval` (Cinder's scheduler does it). A database away for a
while stops none: the next pass tries again."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from ashbox.config import Settings
from ashbox.db import messages, notifications, outbox
from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.manager.garbage import queue_gc

log = logging.getLogger(__name__)

_OUTBOX_RETENTION = timedelta(hours=1)


def queue_gc_until(
    db: Database, settings: Settings, stopping: threading.Event, wake: threading.Event
) -> None:
    """Every `gc_interval_seconds` until `stopping`, queue a gc task per container
    (one queued or running already is enough); `wake` the claimer if any was."""
    while not stopping.wait(settings.gc_interval_seconds):
        try:
            queued = 0
            for container in DbIndex(db).containers():
                with db.transaction() as s:
                    queued += queue_gc(s, container, max_attempts=settings.max_attempts)
            if queued:
                wake.set()
        except Exception:
            log.exception("could not queue gc")


def reap_outbox(db: Database) -> None:
    """Delete the outbox rows older than an hour, and the notifications sent
    over an hour ago."""
    try:
        with db.transaction() as s:
            outbox.reap(s, datetime.now(UTC) - _OUTBOX_RETENTION)
            notifications.reap(s, datetime.now(UTC) - _OUTBOX_RETENTION)
    except Exception:
        log.exception("could not reap the outbox")


def reap_messages(db: Database, settings: Settings) -> None:
    """Delete the user messages written over `message_ttl` seconds ago: those
    past their `guaranteed_until`."""
    try:
        with db.transaction() as s:
            reaped = messages.reap(s, datetime.now(UTC) - timedelta(seconds=settings.message_ttl))
    except Exception:
        log.exception("could not reap the expired messages")
        return
    if reaped:
        log.info("expired messages deleted count=%d", reaped)
