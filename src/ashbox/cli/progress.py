"""The progress bar `--wait` draws on stderr: bytes done of total, and the rate.

On a terminal the bar is redrawn in place; elsewhere (a log, a pipe) a line is
written when the status changes and at most every `line_seconds` otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from ashbox.cli.output import human_bytes

BAR_WIDTH = 30


def render_bar(
    status: str,
    done_bytes: int | None,
    total_bytes: int | None,
    rate: float | None,
    *,
    width: int = BAR_WIDTH,
) -> str:
    """`creating [#########.....]  33%  512.0 MiB / 1.5 GiB  98.3 MB/s` (rate in bytes/s).

    With no byte counts (no task is running yet) the bar is empty and says so; with
    a total of 0 the task has not yet measured its work.
    """
    if done_bytes is None or total_bytes is None:
        return f"{status} [{' ' * width}] waiting for a worker"
    if total_bytes <= 0:
        return f"{status} [{' ' * width}] starting"
    fraction = min(1.0, done_bytes / total_bytes)
    filled = int(fraction * width)
    bar = "#" * filled + "." * (width - filled)
    text = (
        f"{status} [{bar}] {fraction * 100:3.0f}%  "
        f"{human_bytes(done_bytes)} / {human_bytes(total_bytes)}"
    )
    if rate is not None:
        text += f"  {rate / 1e6:.1f} MB/s"
    return text


class ProgressBar:
    """Draws the progress of one task from successive samples of its byte counts."""

    def __init__(
        self,
        stream: TextIO,
        *,
        interactive: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        line_seconds: float = 5.0,
    ) -> None:
        self._stream = stream
        self._interactive = stream.isatty() if interactive is None else interactive
        self._clock = clock
        self._line_seconds = line_seconds
        self._start: tuple[float, int] | None = None  # first sample with counts: time, done
        self._counts: tuple[int, int, float | None] | None = None  # last: done, total, rate
        self._last_text = ""
        self._last_status = ""
        self._last_line_at = float("-inf")
        self._drawn_width = 0

    def update(self, status: str, done_bytes: int | None, total_bytes: int | None) -> None:
        now = self._clock()
        rate = self._rate(now, done_bytes)
        if done_bytes is not None and total_bytes:
            self._counts = (done_bytes, total_bytes, rate)
        text = render_bar(status, done_bytes, total_bytes, rate)
        if self._interactive:
            self._redraw(text)
        elif status != self._last_status or now - self._last_line_at >= self._line_seconds:
            self._write_line(text)
            self._last_line_at = now
        self._last_status = status

    def finish(self, status: str, *, complete: bool) -> None:
        """Leaves the final state on its own line; `complete` fills the bar."""
        if self._counts is None:
            text = status
        else:
            done, total, rate = self._counts
            text = render_bar(status, total if complete else done, total, rate)
        if self._interactive:
            self._redraw(text)
            self._stream.write("\n")
            self._stream.flush()
        else:
            self._write_line(text)

    def _rate(self, now: float, done_bytes: int | None) -> float | None:
        if done_bytes is None:
            return None
        restarted = self._counts is not None and done_bytes < self._counts[0]
        if self._start is None or restarted:  # a new task starts over from its first bytes
            self._start = (now, done_bytes)
            return None
        started_at, started_done = self._start
        if now <= started_at:
            return None
        return (done_bytes - started_done) / (now - started_at)

    def _write_line(self, text: str) -> None:
        if text != self._last_text:
            self._stream.write(text + "\n")
            self._stream.flush()
            self._last_text = text

    def _redraw(self, text: str) -> None:
        pad = max(0, self._drawn_width - len(text))
        self._stream.write("\r" + text + " " * pad)
        self._stream.flush()
        self._drawn_width = len(text)
        self._last_text = text
