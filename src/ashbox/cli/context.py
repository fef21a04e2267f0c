"""What every command gets: the API client, the output streams, the clock it waits by."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from ashbox.cli.client import CinderClient

POLL_SECONDS = 0.1  # between the GETs of a service that does not hold them
WAIT_SECONDS = 1.0  # that a service holding GETs (X-Ashbox-Wait) holds one at most


class Context:
    """What an HTTP command gets. A plain class, not a dataclass: importing
    `dataclasses` (it imports `inspect`) costs every command ~6 ms."""

    __slots__ = (
        "client",
        "clock",
        "interactive",
        "poll_seconds",
        "sleep",
        "stderr",
        "stdout",
        "wait_seconds",
    )

    def __init__(
        self,
        client: CinderClient,
        stdout: TextIO,
        stderr: TextIO,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_seconds: float = POLL_SECONDS,
        wait_seconds: float = WAIT_SECONDS,
        interactive: bool | None = None,
    ) -> None:
        self.client = client
        self.stdout = stdout
        self.stderr = stderr
        self.sleep = sleep
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.wait_seconds = wait_seconds
        self.interactive = interactive  # progress bar redrawn in place; None: if stderr is a tty

    def print(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def error(self, message: str) -> None:
        self.stderr.write(f"error: {message}\n")
        self.stderr.flush()
