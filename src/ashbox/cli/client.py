"""HTTP client of the service's Cinder v3 API, as the `ashbox` command uses it.

Project-less URLs (`/v3/volumes`, `/v3/backups`), Cinder's noauth token
(`user:project`) and microversion 3.64. A non-2xx answer raises `ApiError` with
the message of Cinder's fault body (`{"badRequest": {"code": 400, "message": ...}}`);
no answer at all raises `ServerUnreachable`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Literal, NotRequired, TypedDict, TypeVar, cast

import httpx

DEFAULT_URL = "http://127.0.0.1:8776"
DEFAULT_TOKEN = "admin:admin"
API_VERSION = "volume 3.64"
PATH_KEY = "os-vol-ashbox-attr:path"
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
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the ashbox service at {url}: {reason}")
        self.url = url


class CinderClient:
    """The volume and backup calls of the Cinder v3 API that the CLI makes."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str = DEFAULT_TOKEN,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={
                "X-Auth-Token": token,
                "OpenStack-API-Version": API_VERSION,
                "Accept": "application/json",
            },
            transport=transport,
            timeout=timeout,
        )

    @classmethod
    def from_environment(
        cls, url: str | None = None, *, transport: httpx.BaseTransport | None = None
    ) -> CinderClient:
        """A client for `url`, else `ASHBOX_URL`, with the token of `ASHBOX_TOKEN`."""
        return cls(
            url or os.environ.get("ASHBOX_URL") or DEFAULT_URL,
            os.environ.get("ASHBOX_TOKEN") or DEFAULT_TOKEN,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

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
        value = _decode(self._request(method, path, body)).get(key)
        if not isinstance(value, dict):
            raise ApiError(502, f"the service answered {method} {path} without {key!r}")
        return value

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
    ) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=body, params=params)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, str(exc) or type(exc).__name__) from exc
        if response.is_error:
            raise ApiError(response.status_code, fault_message(response))
        return response


def fault_message(response: httpx.Response) -> str:
    """The message of Cinder's fault body, else the status line."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and len(body) == 1:
        (fault,) = body.values()
        if isinstance(fault, dict) and isinstance(fault.get("message"), str):
            return str(fault["message"])
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


def _only(kind: str, ref: str, matches: list[_T]) -> _T:
    """The one match of a name; 404 for none and 400 for several, as if the service said so."""
    if not matches:
        raise ApiError(404, f"No {kind} with a name or ID of '{ref}' exists.")
    if len(matches) > 1:
        raise ApiError(400, f"More than one {kind} is named '{ref}'; give its ID.")
    return matches[0]


def _decode(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
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
