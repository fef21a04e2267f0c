"""Announcements, inside one process, that a backup's or a volume's status moved on.

`ashbox serve` runs the API and a worker in one process. The worker announces
the backup and the volume of each task it finishes; a GET that asked to wait
for a busy object (`X-Ashbox-Wait`, docs/api.md) is answered then, instead of
at its client's next poll. A change made by another process (a second
worker on the same database) is not announced here: a waiting request
also reads the database again every `RECHECK_SECONDS`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

RECHECK_SECONDS = 0.5


@dataclass(eq=False)
class _Listener:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)


class Changes:
    """Thread-safe: `announce` from any thread, `listening` on an event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[str, set[_Listener]] = {}

    def announce(self, *object_ids: str | None) -> None:
        """Wake every request listening for one of these ids."""
        with self._lock:
            woken = [
                listener
                for object_id in object_ids
                if object_id is not None
                for listener in self._listeners.pop(object_id, ())
            ]
        for listener in woken:
            listener.loop.call_soon_threadsafe(listener.event.set)

    def listening_to(self) -> set[str]:
        """The ids some request listens for now."""
        with self._lock:
            return set(self._listeners)

    @contextmanager
    def listening(self, object_id: str) -> Iterator[asyncio.Event]:
        """An event set by the next announcement of `object_id`. Listen before
        reading the status, so a change between the read and the wait is not
        missed."""
        listener = _Listener(asyncio.get_running_loop())
        with self._lock:
            self._listeners.setdefault(object_id, set()).add(listener)
        try:
            yield listener.event
        finally:
            with self._lock:
                listeners = self._listeners.get(object_id)
                if listeners is not None:
                    listeners.discard(listener)
                    if not listeners:
                        del self._listeners[object_id]


async def announced(event: asyncio.Event, timeout: float) -> bool:
    """Whether `event` was set within `timeout` seconds."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True
