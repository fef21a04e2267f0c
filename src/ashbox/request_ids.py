"""The request an operation acts for: its `x-openstack-request-id`.

The API sets it for the whole of a request; a task queued then keeps it in its
payload, and the worker that runs the task acts for it again. A user message
written on a failure names it (`request_id`), as Cinder's do, so a user can
find the message of the request that failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

PAYLOAD_KEY = "request_id"  # in a task's payload

_current: ContextVar[str | None] = ContextVar("ashbox_request_id", default=None)


def current() -> str | None:
    return _current.get()


@contextmanager
def acting_for(request_id: str | None) -> Iterator[None]:
    token = _current.set(request_id)
    try:
        yield
    finally:
        _current.reset(token)
