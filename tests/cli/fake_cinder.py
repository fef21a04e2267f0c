"""A fake of the service's Cinder v3 API behind `httpx.MockTransport`, for CLI tests.

It keeps volumes and backups in dicts and records every request. A backup's
status moves along a timeline given by the test: each GET of the backup applies
the next step of the timeline to it before answering.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import httpx

_ids = itertools.count(1)


def new_id() -> str:
    return f"00000000-0000-4000-8000-{next(_ids):012d}"


class FakeCinder:
    def __init__(self) -> None:
        self.volumes: dict[str, dict[str, Any]] = {}
        self.backups: dict[str, dict[str, Any]] = {}
        self.timelines: dict[str, list[dict[str, Any] | None]] = {}
        self.next_timeline: list[dict[str, Any] | None] = []
        self.requests: list[httpx.Request] = []
        self.restore_targets: dict[str, str] = {}
        self.refusals: dict[tuple[str, str], httpx.Response] = {}

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def add_volume(self, name: str, **fields: Any) -> dict[str, Any]:
        volume = {
            "id": new_id(),
            "name": name,
            "status": "available",
            "size": 1,
            "os-vol-ashbox-attr:path": f"/data/volumes/{name}.img",
            "links": [],
        }
        volume.update(fields)
        self.volumes[volume["id"]] = volume
        return volume

    def add_backup(self, volume_id: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
        backup = {
            "id": new_id(),
            "name": name,
            "status": "available",
            "size": 1,
            "volume_id": volume_id,
            "is_incremental": False,
            "fail_reason": None,
            "os-backup-progress:done_bytes": None,
            "os-backup-progress:total_bytes": None,
            "os-backup-stats:stored_size": 1000,
            "links": [{"rel": "self", "href": "x"}],
        }
        backup.update(fields)
        self.backups[backup["id"]] = backup
        return backup

    def refuse(self, method: str, path: str, status: int, name: str, message: str) -> None:
        """Answer `method path` with this Cinder fault from now on."""
        self.refusals[(method, path)] = _fault(status, name, message)

    def bodies(self, method: str, path: str) -> list[dict[str, Any]]:
        """The JSON bodies sent with `method` to `path`."""
        return [
            json.loads(r.content)
            for r in self.requests
            if r.method == method and r.url.path == path
        ]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        method, path = request.method, request.url.path
        if (method, path) in self.refusals:
            return self.refusals[(method, path)]
        body = json.loads(request.content) if request.content else None
        if (method, path) == ("GET", "/v3/volumes/detail"):
            return self._list("volumes", self.volumes, request)
        if (method, path) == ("GET", "/v3/backups/detail"):
            return self._list("backups", self.backups, request)
        if m := re.fullmatch(r"/v3/volumes/([^/]+)", path):
            return self._volume(method, m.group(1))
        if m := re.fullmatch(r"/v3/backups/([^/]+)/restore", path):
            return self._restore(m.group(1), body)
        if m := re.fullmatch(r"/v3/backups/([^/]+)", path):
            return self._backup(method, m.group(1))
        if (method, path) in (("POST", "/v3/volumes"), ("POST", "/v3/manageable_volumes")):
            ref = body["volume"].get("ref")
            volume = self.add_volume(
                body["volume"]["name"],
                status="creating",
                size=body["volume"].get("size", 2),
                **({"os-vol-ashbox-attr:path": ref["source-name"]} if ref else {}),
            )
            answer = dict(volume)
            volume["status"] = "available"
            return httpx.Response(202, json={"volume": answer})
        if (method, path) == ("POST", "/v3/backups"):
            backup = self.add_backup(body["backup"]["volume_id"], body["backup"]["name"])
            backup["status"] = "creating"
            self.timelines[backup["id"]] = self.next_timeline
            return httpx.Response(
                202, json={"backup": {"id": backup["id"], "name": backup["name"], "links": []}}
            )
        return _fault(400, "badRequest", f"unexpected {method} {path}")

    def _volume(self, method: str, volume_id: str) -> httpx.Response:
        if volume_id not in self.volumes:
            return _fault(404, "itemNotFound", f"Volume {volume_id} could not be found.")
        if method == "DELETE":
            del self.volumes[volume_id]
            return httpx.Response(202)
        return httpx.Response(200, json={"volume": self.volumes[volume_id]})

    def _backup(self, method: str, backup_id: str) -> httpx.Response:
        if backup_id not in self.backups:
            return _fault(404, "itemNotFound", f"Backup {backup_id} could not be found.")
        backup = self.backups[backup_id]
        if method == "DELETE":
            backup["status"] = "deleting"
            self.timelines[backup_id] = self.next_timeline
            return httpx.Response(202)
        timeline = self.timelines.get(backup_id)
        if timeline:
            step = timeline.pop(0)
            if step is None:
                del self.backups[backup_id]
                return _fault(404, "itemNotFound", f"Backup {backup_id} could not be found.")
            step = dict(step)
            if "_volume" in step:  # what the restore does to its target volume
                self.volumes[self.restore_targets[backup_id]].update(step.pop("_volume"))
            backup.update(step)
        return httpx.Response(200, json={"backup": backup})

    def _restore(self, backup_id: str, body: dict[str, Any]) -> httpx.Response:
        backup = self.backups[backup_id]
        volume_id = body["restore"]["volume_id"]
        if volume_id is None:
            name = body["restore"]["name"] or f"restore_backup_{backup_id}"
            volume_id = self.add_volume(name, status="creating")["id"]
        backup["status"] = "restoring"
        self.restore_targets[backup_id] = volume_id
        self.timelines[backup_id] = self.next_timeline
        name = self.volumes[volume_id]["name"]
        return httpx.Response(
            202,
            json={"restore": {"backup_id": backup_id, "volume_id": volume_id, "volume_name": name}},
        )

    def _list(
        self, key: str, items: dict[str, dict[str, Any]], request: httpx.Request
    ) -> httpx.Response:
        name = request.url.params.get("name")
        found = [i for i in items.values() if name is None or i["name"] == name]
        return httpx.Response(200, json={key: found})


def _fault(status: int, name: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={name: {"code": status, "message": message}})


class Run:
    """One `ashbox` command run against a FakeCinder: exit code, output, sleeps."""

    def __init__(self, fake: FakeCinder, *argv: str) -> None:
        from io import StringIO

        from ashbox.cli.main import main

        out, err = StringIO(), StringIO()
        self.sleeps: list[float] = []
        self.code = main(
            list(argv),
            transport=fake.transport(),
            stdout=out,
            stderr=err,
            sleep=self.sleeps.append,
            clock=lambda: sum(self.sleeps),
        )
        self.out = out.getvalue()
        self.err = err.getvalue()

    def json(self) -> Any:
        return json.loads(self.out)
