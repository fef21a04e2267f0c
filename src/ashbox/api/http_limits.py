"""What the HTTP server refuses before the application sees a request (docs/api.md,
"Input limits"), and how: with a Cinder fault body, then a lingering close.

A request line of MAX_REQUEST_LINE bytes or more gets 414, as eventlet, Cinder's
server, answers past its 8 KiB; a head (request line and headers) of MAX_HEAD
bytes or more gets 431; any other request h11 cannot parse gets 400.

uvicorn alone served a head of any length that arrived in one read; one past
16 KiB that arrived in pieces got a plain-text 400 and an immediate close,
which, with the rest of the request unread, resets the connection: the client
often saw no answer at all. Here the answer is written, the sending side shut
(where the transport can), and what the client still sends is read and dropped
until it closes, or LINGER_SECONDS pass.
"""

from __future__ import annotations

import re
import uuid
from http import HTTPStatus
from typing import TypedDict

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ashbox.api.errors import fault_response

MAX_REQUEST_LINE = 8 * 1024
MAX_HEAD = 64 * 1024
LINGER_SECONDS = 5.0
_HEAD_END = re.compile(rb"\n\r?\n")
_MESSAGES = {
    400: "Invalid HTTP request received.",
    414: f"The request line is longer than {MAX_REQUEST_LINE} bytes.",
    431: f"The request's headers are longer than {MAX_HEAD} bytes.",
}


class UvicornOptions(TypedDict):
    http: type[H11Protocol]
    h11_max_incomplete_event_size: int


def uvicorn_options() -> UvicornOptions:
    """Keyword arguments of `uvicorn.Config` that put these limits in place."""
    return {"http": LimitedH11Protocol, "h11_max_incomplete_event_size": MAX_HEAD}


def head_status(received: bytes) -> int | None:
    """414 or 431 if the start of a request, `received`, is already too long; else None."""
    if len(received) >= MAX_REQUEST_LINE and received.find(b"\n", 0, MAX_REQUEST_LINE) < 0:
        return 414
    if len(received) >= MAX_HEAD and _HEAD_END.search(received, 0, MAX_HEAD) is None:
        return 431
    return None


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with the limits above and fault bodies for what it refuses."""

    _refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the rest of a refused request: read, and dropped
        super().data_received(data)

    def handle_events(self) -> None:
        """Refuse a request whose head is too long before h11 parses it."""
        if self.conn.their_state is h11.IDLE:
            status = head_status(self.conn.trailing_data[0])
            if status is not None:
                self._refuse(status)
                return
        super().handle_events()

    def send_400_response(self, msg: str) -> None:
        """h11 found the request malformed, or its head past MAX_HEAD while incomplete."""
        self._refuse(head_status(self.conn.trailing_data[0]) or 400)

    def _refuse(self, status: int) -> None:
        self.logger.warning("HTTP request refused with %d: %s", status, _MESSAGES[status])
        self._refused = True
        fault = fault_response(status, _MESSAGES[status])
        request_id = f"req-{uuid.uuid4()}".encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(fault.body)).encode()),
            (b"x-openstack-request-id", request_id),
            (b"x-compute-request-id", request_id),
            (b"connection", b"close"),
        ]
        try:
            for event in (
                h11.Response(status_code=status, headers=headers, reason=HTTPStatus(status).phrase),
                h11.Data(data=bytes(fault.body)),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event) or b"")
        except h11.LocalProtocolError:  # a response had begun (a bad body): none can follow
            self.transport.close()
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
