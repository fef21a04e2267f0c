"""HTTP client of the service's Cinder v3 API, as the `ashbox` command uses it.

Project-less URLs (`/v3/volumes`, `/v3/backups`), Cinder's noauth token
(`user:project`) and microversion 3.64. A non-2xx answer raises `ApiError` with
the message of Cinder's fault body (`{"badRequest": {"code": 400, "message": ...}}`);
no answer at all raises `ServerUnreachable`.

`wait_backup` and `wait_volume` ask the service to hold its answer while
the object is busy (`X-Ashbox-Wait`, an ashbox extension: docs/api.md); a
service without it answers at once, and says nothing back.

Built on `http.client` rather than httpx: importing httpx and building its
client (an SSL context) cost ~100 ms of every `ashbox` run. One keep-alive
connection serves all the calls of a command.
"""

from __future__ import annotations

import http.client
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NotRequired, TypedDict, TypeVar, cast
from urllib.parse import urlencode, urlsplit

DEFAULT_URL = "http://127.0.0.1:8776"
DEFAULT_TOKEN = "admin:admin"
API_VERSION = "volume 3.64"
PATH_KEY = "os-vol-ashbox-attr:path"
WAIT_HEADER = "X-Ashbox-Wait"
_T = TypeVar("_T")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")

Volume = TypedDict(
    "Volume",
    {
        "id": str,
        "name": str | None,
        "status": str,
        "size": int,
        "os-vol-ashbox-attr:path": NotRequired[str],
    },
)

Backup = TypedDict(
    "Backup",
    {
        "id": str,
        "name": str | None,
        "status": str,
        "size": int,
        "volume_id": str,
        "fail_reason": NotRequired[str | None],
        "os-backup-progress:done_bytes": NotRequired[int | None],
        "os-backup-progress:total_bytes": NotRequired[int | None],
        "os-backup-stats:stored_size": NotRequired[int | None],
    },
)


class Restore(TypedDict):
    backup_id: str
    volume_id: str
    volume_name: str | None


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


@dataclass(frozen=True, slots=True)
class Response:
    """An answer of the service, read whole."""

    status_code: int
    reason: str
    body: bytes
    held: bool = False  # the service held it while the object was busy (WAIT_HEADER)

    @property
    def is_error(self) -> bool:
        return not 200 <= self.status_code < 300


class CinderClient:
    """The volume and backup calls of the Cinder v3 API that the CLI makes."""

    def __init__(
        self, url: str = DEFAULT_URL, token: str = DEFAULT_TOKEN, *, timeout: float = 30.0
    ) -> None:
        self.url = url.rstrip("/")
        self._parts = urlsplit(self.url)
        self._timeout = timeout
        self._headers = {
            "X-Auth-Token": token,
            "OpenStack-API-Version": API_VERSION,
            "Accept": "application/json",
        }
        self._connection: http.client.HTTPConnection | None = None

    @classmethod
    def from_environment(cls, url: str | None = None) -> CinderClient:
        """A client for `url`, else `ASHBOX_URL`, with the token of `ASHBOX_TOKEN`."""
        return cls(
            url or os.environ.get("ASHBOX_URL") or DEFAULT_URL,
            os.environ.get("ASHBOX_TOKEN") or DEFAULT_TOKEN,
        )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()

    # Volumes

    def create_volume(self, size: int, name: str | None) -> Volume:
        body = {"volume": {"size": size, "name": name}}
        return cast(Volume, self._object("POST", "/v3/volumes", "volume", body))

    def import_volume(self, path: str, name: str | None) -> Volume:
        """Put an existing file or block device under management (Cinder's manage API)."""
        body = {"volume": {"host": None, "ref": {"source-name": path}, "name": name}}
        return cast(Volume, self._object("POST", "/v3/manageable_volumes", "volume", body))

    def get_volume(self, volume_id: str) -> Volume:
        return cast(Volume, self._object("GET", f"/v3/volumes/{volume_id}", "volume"))

    def wait_volume(self, volume_id: str, seconds: float) -> tuple[Volume, bool]:
        """The volume once it is no longer busy or `seconds` have passed, and
        whether the service held the answer that long (else it answered at once)."""
        volume, held = self._held(f"/v3/volumes/{volume_id}", "volume", seconds)
        return cast(Volume, volume), held

    def list_volumes(self, name: str | None = None) -> list[Volume]:
        params = {"name": name} if name is not None else None
        return cast(list[Volume], self._list("/v3/volumes/detail", "volumes", params))

    def find_volume(self, ref: str) -> Volume:
        """The volume whose id, or else whose unique name, is `ref`."""
        if _UUID.match(ref):
            return self.get_volume(ref)
        return _only("volume", ref, [v for v in self.list_volumes(ref) if v["name"] == ref])

    def delete_volume(self, volume_id: str) -> None:
        self._request("DELETE", f"/v3/volumes/{volume_id}")

    # Backups

    def create_backup(
        self,
        volume_id: str,
        *,
        name: str | None = None,
        container: str | None = None,
        incremental: bool = False,
        force: bool = False,
    ) -> str:
        """Start a backup; its id (the answer is Cinder's summary)."""
        body = {
            "backup": {
                "volume_id": volume_id,
                "name": name,
                "container": container,
                "incremental": incremental,
                "force": force,
            }
        }
        summary = self._object("POST", "/v3/backups", "backup", body)
        return _text(summary, "id")

    def get_backup(self, backup_id: str) -> Backup:
        return cast(Backup, self._object("GET", f"/v3/backups/{backup_id}", "backup"))

    def wait_backup(self, backup_id: str, seconds: float) -> tuple[Backup, bool]:
        """The backup once it is no longer busy or `seconds` have passed, and
        whether the service held the answer that long (else it answered at once)."""
        backup, held = self._held(f"/v3/backups/{backup_id}", "backup", seconds)
        return cast(Backup, backup), held

    def list_backups(self, name: str | None = None) -> list[Backup]:
        params = {"name": name} if name is not None else None
        return cast(list[Backup], self._list("/v3/backups/detail", "backups", params))

    def find_backup(self, ref: str) -> Backup:
        """The backup whose id, or else whose unique name, is `ref`."""
        if _UUID.match(ref):
            return self.get_backup(ref)
        return _only("backup", ref, [b for b in self.list_backups(ref) if b["name"] == ref])

    def restore_backup(
        self, backup_id: str, *, volume_id: str | None = None, name: str | None = None
    ) -> Restore:
        body = {"restore": {"volume_id": volume_id, "name": name}}
        restore = self._object("POST", f"/v3/backups/{backup_id}/restore", "restore", body)
        return cast(Restore, restore)

    def delete_backup(self, backup_id: str) -> None:
        self._request("DELETE", f"/v3/backups/{backup_id}")

    # Transport

    def _object(
        self,
        method: Literal["GET", "POST"],
        path: str,
        key: str,
        body: Mapping[str, object] | None = None,
    ) -> dict[str, object]:
        return _member(_decode(self._request(method, path, body)), method, path, key)

    def _held(self, path: str, key: str, seconds: float) -> tuple[dict[str, object], bool]:
        response = self._request("GET", path, headers={WAIT_HEADER: f"{seconds:g}"})
        return _member(_decode(response), "GET", path, key), response.held

    def _list(self, path: str, key: str, params: dict[str, str] | None) -> list[dict[str, object]]:
        items = _decode(self._request("GET", path, params=params)).get(key)
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ApiError(502, f"the service answered GET {path} without a list {key!r}")
        return items

    def _request(
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
        try:
            response = self._send(method, target, content, sent)
        except (OSError, http.client.HTTPException) as exc:
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
        still on its way: a GET that breaks on it is sent again, once, on a new
        connection. Any other request goes on a new connection from the start,
        and is never sent twice: the service may have acted on it before the
        connection broke."""
        connection = self._connection or self._connect()
        if method != "GET":
            connection.close()  # the request opens a new socket
        reused = connection.sock is not None
        try:
            return _exchange(connection, method, target, content, headers)
        except ConnectionError:
            if not reused:
                raise
            connection.close()
            return _exchange(connection, method, target, content, headers)

    def _connect(self) -> http.client.HTTPConnection:
        """The connection, made on first use: an https one builds an SSL context."""
        scheme, host = self._parts.scheme, self._parts.hostname
        if scheme not in ("http", "https") or not host:
            raise ServerUnreachable(self.url, "the URL must be http://HOST[:PORT] or https://...")
        try:
            port = self._parts.port
        except ValueError as exc:
            raise ServerUnreachable(self.url, str(exc)) from None
        kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        self._connection = kind(host, port, timeout=self._timeout)
        return self._connection


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


def _exchange(
    connection: http.client.HTTPConnection,
    method: str,
    target: str,
    content: bytes | None,
    headers: dict[str, str],
) -> Response:
    """Sends a request and reads its whole answer, which frees the connection for the next."""
    connection.request(method, target, body=content, headers=headers)
    answer = connection.getresponse()
    held = answer.getheader(WAIT_HEADER) is not None
    return Response(answer.status, answer.reason, answer.read(), held)


def _member(body: dict[str, object], method: str, path: str, key: str) -> dict[str, object]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise ApiError(502, f"the service answered {method} {path} without {key!r}")
    return value


def _only(kind: str, ref: str, matches: list[_T]) -> _T:
    """The one match of a name; 404 for none and 400 for several, as if the service said so."""
    if not matches:
        raise ApiError(404, f"No {kind} with a name or ID of '{ref}' exists.")
    if len(matches) > 1:
        raise ApiError(400, f"More than one {kind} is named '{ref}'; give its ID.")
    return matches[0]


def _decode(response: Response) -> dict[str, object]:
    try:
        body = json.loads(response.body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(502, f"the service answered with no JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(502, "the service answered with JSON that is not an object")
    return cast(dict[str, object], body)


def _text(obj: dict[str, object], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ApiError(502, f"the service answered without a string {key!r}")
    return value
