"""`X-Ashbox-Wait`: a GET of a busy backup or volume, held until it moves on.

An ashbox extension of Cinder's API (docs/api.md, "Waiting for a status").
`GET /v3/backups/{id}` or `/v3/volumes/{id}` with `X-Ashbox-Wait: SECONDS`
answers once the object's status is no longer transitional
(`ashbox.statuses`), or after SECONDS, whichever comes first; the answer
carries the header back, so a client knows it was held and need not sleep
between polls. `ashbox backup create --wait` so learns of the end of a
backup as the worker finishes it (`ashbox.changes`), where a poll every
0.1 s learnt of it 50 ms late on average. Without the header a GET answers
at once, as Cinder's does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import Protocol, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ashbox.changes import RECHECK_SECONDS, Changes, announced
from ashbox.errors import InvalidInput

HEADER = "X-Ashbox-Wait"
MAX_SECONDS = 60.0


def requested_wait(request: Request) -> float | None:
    """The seconds the request asks to be held at most; None if it does not ask."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= MAX_SECONDS:  # also refuses nan and inf
        raise InvalidInput(
            f"Invalid input received: {HEADER} must be a number of seconds above 0 and "
            f"at most {MAX_SECONDS:g}, not {raw!r}."
        )
    return seconds


class _Record(Protocol):
    @property
    def status(self) -> str: ...


_R = TypeVar("_R", bound=_Record)


async def read_maybe_held(
    request: Request,
    changes: Changes,
    object_id: str,
    read: Callable[[], _R],
    transitional: Collection[str],
) -> tuple[_R, dict[str, str] | None]:
    """`read()` at once without the header; with it, once the record's status
    is not among `transitional`, or once the seconds asked have passed. The
    record is read again when the object's change is announced, and every
    RECHECK_SECONDS for a change made by another process. Also the headers
    the answer carries (the header back, when the request was held)."""
    seconds = requested_wait(request)
    if seconds is None:
        return await run_in_threadpool(read), None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        with changes.listening(object_id) as event:
            record = await run_in_threadpool(read)
            left = deadline - loop.time()
            if record.status not in transitional or left <= 0:
                return record, {HEADER: f"{seconds:g}"}
            await announced(event, min(left, RECHECK_SECONDS))
