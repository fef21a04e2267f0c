"""A fake of the service's Cinder v3 API, served over real HTTP on 127.0.0.1, for CLI tests.

It keeps volumes and backups in dicts and records every request. A backup's
status moves along a timeline given by the test: each GET of the backup applies
the next step of the timeline to it before answering. The `fake` fixture
(conftest.py) serves one and points `ASHBOX_URL` at it.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

_ids = itertools.count(1)


def new_id() -> str:
    return f"00000000-0000-4000-8000-{next(_ids):012d}"


@dataclass(frozen=True, slots=True)
class Request:
    """A request as the fake received it; `client_port` tells connections apart."""

    method: str
    path: str
    params: dict[str, str]
    headers: Message
    body: bytes
    client_port: int


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    raw: bytes | None = None  # sent as it is instead, then the connection is closed


def json_answer(status: int, value: object) -> Answer:
    return Answer(status, json.dumps(value).encode())


class FakeCinder:
    def __init__(self) -> None:
        self.url = ""  # set while served
        self.volumes: dict[str, dict[str, Any]] = {}
        self.backups: dict[str, dict[str, Any]] = {}
        self.timelines: dict[str, list[dict[str, Any] | None]] = {}
        self.next_timeline: list[dict[str, Any] | None] = []
        self.requests: list[Request] = []
        self.restore_targets: dict[str, str] = {}
        self.overrides: dict[tuple[str, str], Answer] = {}
        self.drop_connections = False  # close each connection after one answer, unannounced
        # How an answer tells where its body ends: Content-Length, chunks (of 13
        # bytes, with chunk extensions and a trailer), or closing the connection.
        self.framing: Literal["length", "chunked", "close"] = "length"
        # Echo X-Ashbox-Wait on a GET of one object, as `ashbox serve` does when it
        # held the answer until the object moved on (here each GET moves it a step).
        self.holds_waits = False
        self.unanswered: set[str] = (
            set()
        )  # methods whose requests are read, then the connection shut

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
        self.answer(method, path, _fault(status, name, message))

    def answer(self, method: str, path: str, answer: Answer) -> None:
        """Answer `method path` with `answer` from now on."""
        self.overrides[(method, path)] = answer

    def bodies(self, method: str, path: str) -> list[dict[str, Any]]:
        """The JSON bodies sent with `method` to `path`."""
        return [json.loads(r.body) for r in self.requests if r.method == method and r.path == path]

    def handle(self, request: Request) -> Answer:
        self.requests.append(request)
        method, path = request.method, request.path
        if (method, path) in self.overrides:
            return self.overrides[(method, path)]
        body = json.loads(request.body) if request.body else None
        if (method, path) == ("GET", "/v3/volumes/detail"):
            return self._list("volumes", self.volumes, request)
        if (method, path) == ("GET", "/v3/backups/detail"):
            return self._list("backups", self.backups, request)
        if m := re.fullmatch(r"/v3/volumes/([^/]+)", path):
            return self._held(request, self._volume(method, m.group(1)))
        if m := re.fullmatch(r"/v3/backups/([^/]+)/restore", path):
            return self._restore(m.group(1), body)
        if m := re.fullmatch(r"/v3/backups/([^/]+)", path):
            return self._held(request, self._backup(method, m.group(1)))
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
            return json_answer(202, {"volume": answer})
        if (method, path) == ("POST", "/v3/backups"):
            backup = self.add_backup(body["backup"]["volume_id"], body["backup"]["name"])
            backup["status"] = "creating"
            self.timelines[backup["id"]] = self.next_timeline
            return json_answer(
                202, {"backup": {"id": backup["id"], "name": backup["name"], "links": []}}
            )
        return _fault(400, "badRequest", f"unexpected {method} {path}")

    def _held(self, request: Request, answer: Answer) -> Answer:
        wait = request.headers.get("X-Ashbox-Wait")
        if not self.holds_waits or wait is None or request.method != "GET":
            return answer
        return dataclasses.replace(answer, headers=(("X-Ashbox-Wait", wait),))

    def _volume(self, method: str, volume_id: str) -> Answer:
        if volume_id not in self.volumes:
            return _fault(404, "itemNotFound", f"Volume {volume_id} could not be found.")
        if method == "DELETE":
            del self.volumes[volume_id]
            return Answer(202)
        return json_answer(200, {"volume": self.volumes[volume_id]})

    def _backup(self, method: str, backup_id: str) -> Answer:
        if backup_id not in self.backups:
            return _fault(404, "itemNotFound", f"Backup {backup_id} could not be found.")
        backup = self.backups[backup_id]
        if method == "DELETE":
            backup["status"] = "deleting"
            self.timelines[backup_id] = self.next_timeline
            return Answer(202)
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
        return json_answer(200, {"backup": backup})

    def _restore(self, backup_id: str, body: dict[str, Any]) -> Answer:
        backup = self.backups[backup_id]
        volume_id = body["restore"]["volume_id"]
        if volume_id is None:
            name = body["restore"]["name"] or f"restore_backup_{backup_id}"
            volume_id = self.add_volume(name, status="creating")["id"]
        backup["status"] = "restoring"
        self.restore_targets[backup_id] = volume_id
        self.timelines[backup_id] = self.next_timeline
        name = self.volumes[volume_id]["name"]
        return json_answer(
            202, {"restore": {"backup_id": backup_id, "volume_id": volume_id, "volume_name": name}}
        )

    def _list(self, key: str, items: dict[str, dict[str, Any]], request: Request) -> Answer:
        name = request.params.get("name")
        found = [i for i in items.values() if name is None or i["name"] == name]
        return json_answer(200, {key: found})


@contextmanager
def served(fake: FakeCinder, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serves `fake` on a free port of 127.0.0.1 until the block ends (over TLS with
    `tls`); its URL. An exception the fake raised is raised again at the end."""
    server = _Server(fake)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    scheme = "https" if tls else "http"
    fake.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    if server.errors:
        raise server.errors[0]


class Run:
    """One `ashbox` command run against the fake at $ASHBOX_URL: exit code, output, sleeps."""

    def __init__(self, *argv: str) -> None:
        from io import StringIO

        from ashbox.cli.main import main

        out, err = StringIO(), StringIO()
        self.sleeps: list[float] = []
        self.code = main(
            list(argv),
            stdout=out,
            stderr=err,
            sleep=self.sleeps.append,
            clock=lambda: sum(self.sleeps),
        )
        self.out = out.getvalue()
        self.err = err.getvalue()

    def json(self) -> Any:
        return json.loads(self.out)


def in_chunks(body: bytes, size: int = 13) -> bytes:
    """`body` in chunks of `size` bytes, each with a chunk extension, then a trailer."""
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    chunks = [b"%X;piece=%d\r\n%s\r\n" % (len(c), n, c) for n, c in enumerate(pieces)]
    return b"".join(chunks) + b"0\r\nX-Checksum: none\r\n\r\n"


def _fault(status: int, name: str, message: str) -> Answer:
    return json_answer(status, {name: {"code": status, "message": message}})


class _Server(ThreadingHTTPServer):
    def __init__(self, fake: FakeCinder) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self.lock = threading.Lock()
        self.errors: list[BaseException] = []

    def handle_error(self, request: object, client_address: object) -> None:
        self.errors.append(sys.exc_info()[1] or RuntimeError("unknown error"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the service's uvicorn
    server: _Server

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        size = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=url.path,
            params=dict(parse_qsl(url.query)),
            headers=self.headers,
            body=self.rfile.read(size),
            client_port=self.client_address[1],
        )
        with self.server.lock:
            if self.command in self.server.fake.unanswered:
                self.server.fake.requests.append(request)
                self.close_connection = True
                return
            answer = self.server.fake.handle(request)
        if answer.raw is not None:
            self.wfile.write(answer.raw)
            self.close_connection = True
            return
        framing = self.server.fake.framing
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        for name, value in answer.headers:
            self.send_header(name, value)
        if framing == "length":
            self.send_header("Content-Length", str(len(answer.body)))
        elif framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(in_chunks(answer.body) if framing == "chunked" else answer.body)
        if framing == "close" or self.server.fake.drop_connections:
            self.close_connection = True

    do_POST = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the requests are in `FakeCinder.requests`."""
