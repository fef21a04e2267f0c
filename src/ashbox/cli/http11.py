"""HTTP/1.1 answers read off a socket: the transport of the CLI's client (client.py).

Written for the `ashbox` command's start-up time: `http.client` imports the
`email` package and `ssl` (~17 ms of every command). Status line, header
fields (names lower-cased), and a body that ends at its Content-Length,
after its last chunk (`Transfer-Encoding: chunked`), or where the server
closes the connection. Lines, header counts and body reads are bounded, so
a broken or hostile answer cannot make the client allocate without limit.
"""

from __future__ import annotations

import socket
from typing import BinaryIO, NamedTuple

_MAX_LINE = 65536  # bytes of a status, header or chunk-size line
_MAX_HEADERS = 100
_PIECE = 1 << 20  # a body is read in pieces: a lying length cannot allocate it at once


class Answer(NamedTuple):
    status_code: int
    reason: str
    headers: dict[str, str]  # by lower-cased name
    body: bytes
    keep: bool  # whether the connection may serve another request


class BadAnswer(Exception):
    """The service's answer does not parse as HTTP/1.1."""


class Connection:
    """A socket to the service, and the buffered reader of its answers."""

    __slots__ = ("answered", "reader", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.answered = False  # once it has served an answer, it may be closed while idle

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def ask(connection: Connection, request: bytes) -> bytes:
    """Sends `request`; the status line of its answer. ConnectionError for a
    connection that closes or resets before that line."""
    connection.sock.sendall(request)
    line = connection.reader.readline(_MAX_LINE + 1)
    if not line:
        raise ConnectionAbortedError("the service closed the connection without an answer")
    return line


def read_answer(reader: BinaryIO, status_line: bytes) -> Answer:
    """The rest of the answer that starts with `status_line`."""
    version, status, reason = _status(status_line)
    headers = _headers(reader)
    while 100 <= status < 200:  # interim (100 Continue, 103 Early Hints): the answer follows
        version, status, reason = _status(reader.readline(_MAX_LINE + 1))
        headers = _headers(reader)
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    coding = headers.get("transfer-encoding")
    if status in (204, 304):
        body = b""
    elif coding is not None and coding.rsplit(",", 1)[-1].strip().lower() == "chunked":
        body = _chunked(reader)
    elif coding is None and "content-length" in headers:
        body = _exactly(reader, _length(headers["content-length"]))
    else:  # no length: the body ends where the service closes the connection
        body, keep = reader.read(), False
    return Answer(status, reason, headers, body, keep)


def _status(line: bytes) -> tuple[str, int, str]:
    """Version, status code and reason of a status line (`HTTP/1.1 200 OK`)."""
    version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
    code, _, reason = rest.partition(" ")
    if (
        not line.endswith(b"\n")
        or version not in ("HTTP/1.0", "HTTP/1.1")
        or not (len(code) == 3 and code.isascii() and code.isdigit())
    ):
        raise BadAnswer(f"the service answered with a malformed status line {line[:80]!r}")
    return version, int(code), reason.strip()


def _headers(reader: BinaryIO) -> dict[str, str]:
    """The header fields up to the empty line, by lower-cased name; a repeated
    field's values joined with commas."""
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        line = _line(reader)
        if line in (b"\r\n", b"\n"):
            return headers
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name or name != name.strip():  # folded lines are refused too
            raise BadAnswer(f"the service answered with a malformed header {line[:80]!r}")
        name, value = name.lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    raise BadAnswer(f"the service answered with more than {_MAX_HEADERS} headers")


def _chunked(reader: BinaryIO) -> bytes:
    """A chunked body: chunk extensions and trailer fields are read and dropped."""
    chunks = []
    while True:
        size_text = _line(reader).partition(b";")[0].strip()
        if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
            raise BadAnswer(f"the service answered with a malformed chunk size {size_text[:80]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        chunks.append(_exactly(reader, size))
        if _line(reader) not in (b"\r\n", b"\n"):
            raise BadAnswer("the service answered with a chunk longer than its size")
    _headers(reader)  # the trailer
    return b"".join(chunks)


def _length(value: str) -> int:
    """A Content-Length value (repeated ones must agree)."""
    lengths = {v.strip() for v in value.split(",")}
    length = lengths.pop() if len(lengths) == 1 else ""
    if not (length.isascii() and length.isdigit()):
        raise BadAnswer(f"the service answered with a malformed Content-Length {value[:80]!r}")
    return int(length)


def _exactly(reader: BinaryIO, size: int) -> bytes:
    pieces = []
    left = size
    while left:
        piece = reader.read(min(left, _PIECE))
        if not piece:
            raise BadAnswer(f"the answer ended after {size - left} of its {size} bytes")
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


def _line(reader: BinaryIO) -> bytes:
    line = reader.readline(_MAX_LINE + 1)
    if not line.endswith(b"\n"):
        too_long = len(line) > _MAX_LINE
        raise BadAnswer("the answer has a line too long" if too_long else "the answer ended early")
    return line
