"""The relay: delivers the outbox's status changes to this process's waiting requests.

Every status transition writes an outbox row in its own transaction
(ashbox.db.lifecycle). The relay reads the rows written since its last look
and announces their resources (ashbox.changes), so a GET waiting for a backup
is answered when any process, any worker on the same database, moved it on.
A commit in this process wakes the relay at once; otherwise it looks every
`poll_seconds`. A row that commits after a newer one was read (possible on
PostgreSQL) is not announced; its waiting request still reads the database
again every `changes.RECHECK_SECONDS`.
"""

from __future__ import annotations

import logging
import threading

from ashbox.changes import Changes
from ashbox.db import outbox
from ashbox.db.engine import Database

log = logging.getLogger(__name__)

_RETRY_SECONDS = 2.0


class Relay:
    def __init__(self, db: Database, changes: Changes, *, poll_seconds: float = 0.5) -> None:
        self.db = db
        self.changes = changes
        self.poll_seconds = poll_seconds
        self._cursor: int | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        db.on_outbox_commit(self._wake.set)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def deliver(self) -> int:
        """Announce the rows written since the last call; how many there were."""
        with self.db.reading() as s:
            if self._cursor is None or not self.changes.listening_to():
                # Nobody waits: what happened until now concerns no one.
                self._cursor = outbox.last_id(s)
                return 0
            rows = outbox.rows_after(s, self._cursor)
        if rows:
            self._cursor = rows[-1].id
            self.changes.announce(*(r.resource_id for r in rows))
        return len(rows)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            try:
                while self.deliver() >= 1000:
                    pass
            except Exception:
                # The database may be away for a while; waiting requests recheck
                # on their own, and the relay tries again.
                log.exception("relay could not read the outbox")
                self._stopping.wait(_RETRY_SECONDS)
