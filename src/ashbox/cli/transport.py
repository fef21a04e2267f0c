"""HTTP/1.1 to the service, as the `ashbox` command speaks it: one keep-alive
connection per command, on a socket of its own (answers parsed by http11.py;
`ssl` is imported for an https URL only).

Every `ashbox` run pays for what it imports: httpx and its client cost
~100 ms, and then `http.client` ~17 ms of the ~45 ms of `python -X importtime
-c "import ashbox.cli.main"` (it imports the `email` package, ~11 ms, and
`ssl`); with `dataclasses` (and `inspect`) gone from the CLI's modules too,
that import takes ~27 ms (docs/performance.md).

An answer's body ends at its Content-Length, after its last chunk
(`Transfer-Encoding: chunked`), or where the service closes the connection.
Not supported, as the service needs none of them: proxies (`*_PROXY` is not
read), redirects (a 3xx is an `ApiError`) and compression (the client sends
`Accept-Encoding: identity`). A non-2xx answer raises `ApiError` with the
message of Cinder's fault body (`{"badRequest": {"code": 400, "message": ...}}`);
no answer at all raises `ServerUnreachable`.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple, cast
from urllib.parse import urlencode, urlsplit

from ashbox.cli.http11 import BadAnswer, Connection, ask, read_answer

if TYPE_CHECKING:
    import ssl

WAIT_HEADER = "X-Ashbox-Wait"
_UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")


class ClientError(Exception):
    """The service could not be asked, or said no; `message` is shown to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiError(ClientError):
    """The service answered with an error status."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServerUnreachable(ClientError):
    """No answer: connection refused, reset or timed out, or a URL that cannot be reached."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the ashbox service at {url}: {reason}")
        self.url = url


class Response(NamedTuple):
    """An answer of the service, read whole. A NamedTuple, not a dataclass: importing
    `dataclasses` (it imports `inspect`) costs every command ~6 ms."""

    status_code: int
    reason: str
    body: bytes
    held: bool = False  # the service held it while the object was busy (WAIT_HEADER)

    @property
    def is_error(self) -> bool:
        return not 200 <= self.status_code < 300


class Transport:
    """Requests to one service URL with the same headers, on a kept connection."""

    def __init__(
        self, url: str, headers: Mapping[str, str], *, timeout: float, cafile: str | None
    ) -> None:
        self.url = url.rstrip("/")
        self._parts = urlsplit(self.url)
        self._headers = dict(headers)
        self._timeout = timeout
        self._cafile = cafile
        self._connection: Connection | None = None
        self._tls: ssl.SSLContext | None = None  # built on the first https connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, object] | None = None,
        *,
        params: dict[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        target = self._parts.path + path + (f"?{urlencode(params)}" if params else "")
        sent = {**self._headers, **(headers or {})}
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
            sent["Content-Length"] = str(len(content))
        try:
            response = self._send(method, target, content, sent)
        except (OSError, BadAnswer) as exc:
            self.close()
            raise ServerUnreachable(self.url, str(exc) or type(exc).__name__) from exc
        if response.is_error:
            raise ApiError(response.status_code, fault_message(response))
        return response

    def _send(
        self, method: str, target: str, content: bytes | None, headers: dict[str, str]
    ) -> Response:
        """One exchange on the kept connection. A kept connection may have been closed
        by the service while idle (uvicorn does after 5 s), the close perhaps
        still on its way: a GET that breaks on it (an EOF or a reset before the
        status line) is sent again, once, on a new connection. Any other request
        goes on a new connection from the start, and is never sent twice: the
        service may have acted on it before the connection broke."""
        request = self._head(method, target, headers) + (content or b"")
        if method != "GET":
            self.close()
        connection = self._connection or self._connect()
        try:
            status_line = ask(connection, request)
        except ConnectionError:
            if not connection.answered:
                raise
            self.close()
            connection = self._connect()
            status_line = ask(connection, request)
        answer = read_answer(connection.reader, status_line)
        connection.answered = True
        if not answer.keep:
            self.close()
        held = WAIT_HEADER.lower() in answer.headers
        return Response(answer.status_code, answer.reason, answer.body, held)

    def _head(self, method: str, target: str, headers: dict[str, str]) -> bytes:
        """The request line and headers, ready to send."""
        if _UNSAFE_TARGET.search(target):
            raise ServerUnreachable(self.url, f"{target!r} holds a space or control character")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._parts.netloc.rpartition('@')[2]}"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"the value of the {name} header holds a line break")
            lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _connect(self) -> Connection:
        """A new connection, kept as the client's: an https one over TLS checked
        against the trusted certificates (`ssl` is imported for it only)."""
        scheme, host = self._parts.scheme, self._parts.hostname
        if scheme not in ("http", "https") or not host:
            raise ServerUnreachable(self.url, "the URL must be http://HOST[:PORT] or https://...")
        try:
            port = self._parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise ServerUnreachable(self.url, str(exc)) from None
        sock = socket.create_connection((host, port), self._timeout)
        if scheme == "https":
            try:
                sock = self._tls_context().wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        self._connection = Connection(sock)
        return self._connection

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            import ssl

            # Without a CA file: the system's, or SSL_CERT_FILE and SSL_CERT_DIR.
            self._tls = ssl.create_default_context(cafile=self._cafile)
        return self._tls


def fault_message(response: Response) -> str:
    """The message of Cinder's fault body, else the status line."""
    try:
        body = json.loads(response.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and len(body) == 1:
        (fault,) = body.values()
        if isinstance(fault, dict) and isinstance(fault.get("message"), str):
            return str(fault["message"])
    return f"HTTP {response.status_code} {response.reason}".strip()


def decode(response: Response) -> dict[str, object]:
    try:
        body = json.loads(response.body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(502, f"the service answered with no JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(502, "the service answered with JSON that is not an object")
    return cast(dict[str, object], body)
