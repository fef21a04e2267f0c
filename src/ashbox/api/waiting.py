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
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ashbox.changes import RECHECK_SECONDS, Changes, announced
from ashbox.errors import InvalidInput

HEADER = "X-Ashbox-Wait"
MAX_SECONDS = 60.0
_T = TypeVar("_T")


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


async def read_settled(
    changes: Changes,
    object_id: str,
    read: Callable[[], _T],
    busy: Callable[[_T], bool],
    seconds: float,
) -> _T:
    """`read()` once `busy` is false of it, or once `seconds` have passed; it is
    read again when the object's change is announced, and every
    RECHECK_SECONDS for a change made by another process."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        with changes.listening(object_id) as event:
            record = await run_in_threadpool(read)
            left = deadline - loop.time()
            if not busy(record) or left <= 0:
                return record
            await announced(event, min(left, RECHECK_SECONDS))
