"""The calls of the service's Cinder v3 API that the `ashbox` command makes.

Project-less URLs (`/v3/volumes`, `/v3/backups`), Cinder's noauth token
(`user:project`) and microversion 3.64, over cli/transport.py: errors are
`ApiError` (the service said no) and `ServerUnreachable` (no answer).

`wait_backup` and `wait_volume` ask the service to hold its answer while
the object is busy (`X-Ashbox-Wait`, an ashbox extension: docs/api.md); a
service without it answers at once, and says nothing back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import (
    Literal,
    NotRequired,
    TypedDict,
    TypeVar,
    cast,
)
from urllib.parse import quote

from ashbox.cli import keystone_login
from ashbox.cli.transport import (
    WAIT_HEADER,
    ApiError,
    ClientError,
    Response,
    ServerUnreachable,
    Transport,
    decode,
)

__all__ = ["ApiError", "CinderClient", "ClientError", "Response", "ServerUnreachable"]

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
        "os-backup-progress:queued": NotRequired[bool],
        "os-backup-stats:stored_size": NotRequired[int | None],
    },
)


class Snapshot(TypedDict):
    id: str
    name: str | None
    status: str
    volume_id: str
    size: int


class Restore(TypedDict):
    backup_id: str
    volume_id: str
    volume_name: str | None


class CinderClient:
    """The volume, snapshot, backup, quota and message calls of the Cinder v3 API that
    the CLI makes."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str = DEFAULT_TOKEN,
        *,
        timeout: float = 30.0,
        cafile: str | None = None,
    ) -> None:
        headers = {
            "X-Auth-Token": token,
            "OpenStack-API-Version": API_VERSION,
            "X-Ashbox-Extras": "true",  # progress, stored size, volume paths
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        self._http = Transport(url, headers, timeout=timeout, cafile=cafile)
        self.url = self._http.url

    @classmethod
    def from_environment(cls, url: str | None = None, token: str | None = None) -> CinderClient:
        """A client for `url`, else `ASHBOX_URL`, with `token`, else `ASHBOX_TOKEN`;
        else, where `OS_CLOUD` or `OS_AUTH_URL` is set, Keystone's token and catalog
        (cli/keystone_login.py); else noauth's `admin:admin` on the default URL."""
        url = url or os.environ.get("ASHBOX_URL")
        token = token or os.environ.get("ASHBOX_TOKEN")
        cafile = os.environ.get("ASHBOX_CACERT") or None
        if token is None and keystone_login.configured(os.environ):
            try:
                login = keystone_login.log_in(os.environ)
            except keystone_login.KeystoneUnreachable as exc:
                raise ServerUnreachable(f"Keystone {exc.url}", exc.reason) from exc
            return cls(url or login.url, login.token, cafile=cafile or login.cafile)
        return cls(url or DEFAULT_URL, token or DEFAULT_TOKEN, cafile=cafile)

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
        self._http.request("DELETE", f"/v3/volumes/{volume_id}")

    def volume_action(self, volume_id: str, action: str, value: object) -> None:
        self._http.request("POST", f"/v3/volumes/{volume_id}/action", {action: value})

    # Snapshots

    def create_snapshot(self, volume_id: str, name: str | None, *, force: bool) -> Snapshot:
        body = {"snapshot": {"volume_id": volume_id, "name": name, "force": force}}
        return cast(Snapshot, self._object("POST", "/v3/snapshots", "snapshot", body))

    def get_snapshot(self, snapshot_id: str) -> Snapshot:
        return cast(Snapshot, self._object("GET", f"/v3/snapshots/{snapshot_id}", "snapshot"))

    def wait_snapshot(self, snapshot_id: str, seconds: float) -> tuple[Snapshot, bool]:
        snapshot, held = self._held(f"/v3/snapshots/{snapshot_id}", "snapshot", seconds)
        return cast(Snapshot, snapshot), held

    def list_snapshots(self, name: str | None = None) -> list[Snapshot]:
        params = {"name": name} if name is not None else None
        return cast(list[Snapshot], self._list("/v3/snapshots/detail", "snapshots", params))

    def find_snapshot(self, ref: str) -> Snapshot:
        if _UUID.match(ref):
            return self.get_snapshot(ref)
        return _only("snapshot", ref, [s for s in self.list_snapshots(ref) if s["name"] == ref])

    def update_snapshot(self, snapshot_id: str, changes: Mapping[str, object]) -> Snapshot:
        body = {"snapshot": dict(changes)}
        path = f"/v3/snapshots/{snapshot_id}"
        return cast(Snapshot, self._object("PUT", path, "snapshot", body))

    def delete_snapshot(self, snapshot_id: str) -> None:
        self._http.request("DELETE", f"/v3/snapshots/{snapshot_id}")

    def snapshot_action(self, snapshot_id: str, action: str, value: object) -> None:
        self._http.request("POST", f"/v3/snapshots/{snapshot_id}/action", {action: value})

    # Backups

    def create_backup(
        self,
        volume_id: str,
        *,
        name: str | None = None,
        container: str | None = None,
        incremental: bool = False,
        force: bool = False,
        snapshot_id: str | None = None,
    ) -> str:
        """Start a backup; its id (the answer is Cinder's summary)."""
        spec: dict[str, object] = {
            "volume_id": volume_id,
            "name": name,
            "container": container,
            "incremental": incremental,
            "force": force,
        }
        if snapshot_id is not None:
            spec["snapshot_id"] = snapshot_id
        body = {"backup": spec}
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
        self._http.request("DELETE", f"/v3/backups/{backup_id}")

    def update_backup(self, backup_id: str, changes: Mapping[str, object]) -> None:
        self._object("PUT", f"/v3/backups/{backup_id}", "backup", {"backup": dict(changes)})

    def backup_action(self, backup_id: str, action: str, value: object) -> None:
        self._http.request("POST", f"/v3/backups/{backup_id}/action", {action: value})

    def export_backup(self, backup_id: str) -> dict[str, object]:
        return self._object("GET", f"/v3/backups/{backup_id}/export_record", "backup-record")

    def import_backup(self, backup_service: str, backup_url: str) -> str:
        """Import a record; the id of the backup it makes."""
        body = {"backup-record": {"backup_service": backup_service, "backup_url": backup_url}}
        return _text(self._object("POST", "/v3/backups/import_record", "backup", body), "id")

    # Quotas and limits

    def quota_set(self, project_id: str, *, usage: bool = False) -> dict[str, object]:
        """The project's limits; with `usage`, each as {limit, in_use, reserved}."""
        path = f"/v3/os-quota-sets/{quote(project_id, safe='')}"
        params = {"usage": "True"} if usage else None
        return _member(
            decode(self._http.request("GET", path, params=params)), "GET", path, "quota_set"
        )

    def default_quota_set(self, project_id: str) -> dict[str, object]:
        path = f"/v3/os-quota-sets/{quote(project_id, safe='')}/defaults"
        return self._object("GET", path, "quota_set")

    def update_quota_set(self, project_id: str, limits: Mapping[str, int]) -> dict[str, object]:
        path = f"/v3/os-quota-sets/{quote(project_id, safe='')}"
        return self._object("PUT", path, "quota_set", {"quota_set": dict(limits)})

    def delete_quota_set(self, project_id: str) -> None:
        self._http.request("DELETE", f"/v3/os-quota-sets/{quote(project_id, safe='')}")

    def limits(self) -> dict[str, object]:
        """The caller's project's absolute limits and usage."""
        limits = self._object("GET", "/v3/limits", "limits")
        absolute = limits.get("absolute")
        if not isinstance(absolute, dict):
            raise ApiError(502, "the service answered GET /v3/limits without absolute limits")
        return absolute

    # User messages

    def list_messages(self, filters: Mapping[str, str] | None = None) -> list[dict[str, object]]:
        """Every message the caller may see (those `filters` match), page after page."""
        params = dict(filters or {})
        messages: list[dict[str, object]] = []
        while True:
            body = decode(self._http.request("GET", "/v3/messages", params=params or None))
            page = body.get("messages")
            if not isinstance(page, list) or not all(isinstance(m, dict) for m in page):
                raise ApiError(502, "the service answered GET /v3/messages without a list")
            messages += page
            if not page or not body.get("messages_links"):
                return messages
            params["marker"] = _text(page[-1], "id")

    def get_message(self, message_id: str) -> dict[str, object]:
        return self._object("GET", f"/v3/messages/{quote(message_id, safe='')}", "message")

    def delete_message(self, message_id: str) -> None:
        self._http.request("DELETE", f"/v3/messages/{quote(message_id, safe='')}")

    # Transport

    def _object(
        self,
        method: Literal["GET", "POST", "PUT"],
        path: str,
        key: str,
        body: Mapping[str, object] | None = None,
    ) -> dict[str, object]:
        return _member(decode(self._http.request(method, path, body)), method, path, key)

    def _held(self, path: str, key: str, seconds: float) -> tuple[dict[str, object], bool]:
        response = self._http.request("GET", path, headers={WAIT_HEADER: f"{seconds:g}"})
        return _member(decode(response), "GET", path, key), response.held

    def _list(self, path: str, key: str, params: dict[str, str] | None) -> list[dict[str, object]]:
        items = decode(self._http.request("GET", path, params=params)).get(key)
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ApiError(502, f"the service answered GET {path} without a list {key!r}")
        return items


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


def _text(obj: dict[str, object], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ApiError(502, f"the service answered without a string {key!r}")
    return value
