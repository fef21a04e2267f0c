"""Hostile input gets a 400 (or 414) fault and changes nothing (issue 11, point 6).

Each case was found by fuzzing the API: before, it gave a 500, a dropped
connection, or minutes of work. After each refused request the project's
lists and the volume files are checked to be as they were.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ashbox.api.http_limits import MAX_HEAD, MAX_REQUEST_LINE, head_status
from ashbox.db.models import Task
from tests.api.conftest import Api
from tests.file_size import file_size_limit
from tests.server import Server

JSON = {"Content-Type": "application/json"}
INT64_PAST = "99999999999999999999"


@contextmanager
def unchanged(api: Api) -> Iterator[None]:
    """Assert the block changes no volume, backup or snapshot of the project and
    creates no volume file."""
    volumes_dir = api.stack.settings.resolved_volumes_dir
    files = set(volumes_dir.iterdir()) if volumes_dir.exists() else set()
    lists = {key: _listed(api, key) for key in ("volumes", "backups", "snapshots")}
    yield
    assert {key: _listed(api, key) for key in lists} == lists
    now = set(volumes_dir.iterdir()) if volumes_dir.exists() else set()
    assert now - files == set()


def _listed(api: Api, key: str) -> list[dict[str, Any]]:
    r = api.get(f"/{key}/detail")
    assert r.status_code == 200, r.text
    return r.json()[key]  # type: ignore[no-any-return]


def _wait_snapshot(api: Api, snapshot_id: str) -> None:
    deadline = time.monotonic() + 60
    while api.get(f"/snapshots/{snapshot_id}").json()["snapshot"]["status"] == "creating":
        assert time.monotonic() < deadline, snapshot_id
        time.sleep(0.02)


def _fault(r: httpx.Response, status: int = 400) -> str:
    """The message of a Cinder fault of `status`."""
    assert r.status_code == status, r.text
    (name,) = r.json()
    assert name == {400: "badRequest"}.get(status, "computeFault")  # Cinder's default name
    assert r.json()[name]["code"] == status
    return str(r.json()[name]["message"])


# --- 1. JSON nested thousands deep ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/volumes", "/backups", "/manageable_volumes"])
def test_json_nested_thousands_deep_is_400(api: Api, path: str) -> None:
    with unchanged(api):
        r = api.post(path, content=b"[" * 100_000, headers=JSON)
        assert "nested" in _fault(r)
        r = api.post(path, content=b"[" * 5000 + b"]" * 5000, headers=JSON)
        assert "nested" in _fault(r)


def _hinted(levels: int) -> str:
    """A volume create body `levels` deep, in the hints, which the schema lets be anything."""
    deep: object = "x"
    for _ in range(levels - 1):  # the body's own object is the first level
        deep = {"k": deep}
    return json.dumps({"volume": {"size": 1}, "OS-SCH-HNT:scheduler_hints": deep})


def test_json_one_level_past_the_cap_is_400_where_the_schema_takes_any_value(api: Api) -> None:
    with unchanged(api):
        r = api.post("/volumes", content=_hinted(65), headers=JSON)
        assert _fault(r) == "Malformed request body: JSON nested more than 64 levels deep."


def test_json_as_deep_as_the_cap_is_accepted(api: Api) -> None:
    r = api.post("/volumes", content=_hinted(64), headers=JSON)
    assert r.status_code == 202, r.text


def test_brackets_inside_strings_do_not_count_as_nesting(api: Api) -> None:
    name = '[{\\"' * 50
    volume_id = api.volume(name=name, description="]}" * 100)
    assert api.show_volume(volume_id)["name"] == name


@pytest.mark.parametrize(
    "raw", [b"{", b'{"volume": }', b"\xff\xfe", b'"\\x"', b"[1,]", b"NaN", b'{"a": 1e999999}']
)
def test_invalid_json_is_400(api: Api, raw: bytes) -> None:
    with unchanged(api):
        assert _fault(api.post("/volumes", content=raw, headers=JSON))


# --- 2. lone surrogates (and NUL) in strings ------------------------------------------------


def _volume_spec(field: str, value: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"size": 1}
    if field == "metadata key":
        spec["metadata"] = {value: "v"}
    elif field == "metadata value":
        spec["metadata"] = {"k": value}
    else:
        spec[field] = value
    return {"volume": spec}


@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb", "\x00", "a\x00b"])
@pytest.mark.parametrize(
    "field", ["name", "description", "display_name", "metadata key", "metadata value"]
)
def test_a_lone_surrogate_or_nul_in_a_volume_string_is_400(api: Api, field: str, bad: str) -> None:
    with unchanged(api):
        # json.dumps writes them as \ud800 and \u0000 escapes, as a fuzzer sends them.
        r = api.post("/volumes", content=json.dumps(_volume_spec(field, bad)), headers=JSON)
        _fault(r)


def test_raw_surrogate_bytes_in_a_body_are_400(api: Api) -> None:
    with unchanged(api):
        r = api.post("/volumes", content=b'{"volume": {"size": 1, "name": "\xed\xa0\x80"}}')
        _fault(r)


@pytest.mark.parametrize("field", ["name", "description", "container", "metadata"])
def test_a_lone_surrogate_in_a_backup_string_is_400(api: Api, field: str) -> None:
    volume_id = api.volume()
    value: object = {"k\ud800": "v"} if field == "metadata" else "\ud800"
    with unchanged(api):
        body = {"backup": {"volume_id": volume_id, field: value}}
        _fault(api.post("/backups", content=json.dumps(body), headers=JSON))


def test_a_lone_surrogate_in_an_update_is_400_and_changes_nothing(api: Api) -> None:
    volume_id = api.volume()
    backup_id = api.backup(volume_id, name="kept")
    r = api.post("/snapshots", json={"snapshot": {"volume_id": volume_id, "name": "kept"}})
    assert r.status_code == 202, r.text
    snapshot_id = r.json()["snapshot"]["id"]
    _wait_snapshot(api, snapshot_id)
    with unchanged(api):
        body = json.dumps({"backup": {"name": "\udc00"}})
        _fault(api.http.put(f"/backups/{backup_id}", content=body, headers=JSON))
        body = json.dumps({"snapshot": {"name": "\udc00"}})
        _fault(api.http.put(f"/snapshots/{snapshot_id}", content=body, headers=JSON))


@pytest.mark.parametrize("query", ["name=%00", "name=a%00b", "name~=%00", "status=%ED%A0%80"])
@pytest.mark.parametrize("key", ["volumes", "backups", "snapshots"])
def test_nul_in_a_query_parameter_is_400_and_bad_utf8_matches_nothing(
    api: Api, key: str, query: str
) -> None:
    r = api.get(f"/{key}?{query}")
    if "%00" in query:
        assert "NUL" in _fault(r)
    else:  # undecodable escapes become U+FFFD, which matches nothing
        assert r.status_code == 200, r.text
        assert r.json()[key] == []


@pytest.mark.parametrize("path", ["/volumes/%00", "/backups/a%00b", "/snapshots/%00/action"])
def test_nul_in_a_path_is_400(api: Api, path: str) -> None:
    with unchanged(api):
        r = api.http.request("POST" if path.endswith("action") else "GET", path, json={})
        assert "NUL" in _fault(r)


# --- 3. offset and limit beyond int64 -------------------------------------------------------


@pytest.mark.parametrize("offset", [INT64_PAST, str(2**63), str(2**31)])
@pytest.mark.parametrize("key", ["volumes", "backups", "snapshots"])
@pytest.mark.parametrize("detail", ["", "/detail"])
def test_an_offset_beyond_int64_is_400(api: Api, key: str, detail: str, offset: str) -> None:
    message = _fault(api.get(f"/{key}{detail}", params={"offset": offset}))
    assert message == "offset must be <= 2147483647"  # Cinder's words and cap
    assert _fault(api.get(f"/{key}", params={"offset": "-1"})) == "offset must be >= 0"


@pytest.mark.parametrize("key", ["volumes", "backups", "snapshots"])
def test_a_limit_beyond_int64_is_the_max_limit_and_a_negative_one_400(api: Api, key: str) -> None:
    api.volume()
    r = api.get(f"/{key}", params={"limit": INT64_PAST, "with_count": "true"})
    assert r.status_code == 200, r.text
    assert _fault(api.get(f"/{key}", params={"limit": "-" + INT64_PAST})) == (
        "limit param must be positive"
    )
    assert _fault(api.get(f"/{key}", params={"limit": "9" * 5000})) == (
        "limit param must be an integer"
    )


def test_an_offset_at_the_cap_lists_nothing(api: Api) -> None:
    api.volume()
    r = api.get("/volumes", params={"offset": "2147483647"})
    assert r.status_code == 200, r.text
    assert r.json()["volumes"] == []


# --- 4. volume sizes ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [2**31, 2**33, 2**63, int(INT64_PAST), str(2**31)])
def test_a_volume_size_beyond_the_cap_is_400(api: Api, size: int | str) -> None:
    with unchanged(api):
        message = _fault(api.post("/volumes", json={"volume": {"size": size}}))
        assert "size" in message


def test_a_volume_the_filesystem_cannot_hold_ends_in_error_saying_why(api: Api) -> None:
    files = set(api.stack.settings.resolved_volumes_dir.iterdir())
    r = api.http.put(f"/os-quota-sets/{api.project}", json={"quota_set": {"gigabytes": -1}})
    assert r.status_code == 200, r.text  # 2 TiB is over the default quota
    with file_size_limit(1 << 40):
        r = api.post("/volumes", json={"volume": {"size": 2048}})
        assert r.status_code == 202, r.text
        volume_id = r.json()["volume"]["id"]
        assert api.wait_volume(volume_id)["status"] == "error"
    with api.stack.db.reading() as s:
        task = s.scalars(select(Task).where(Task.resource_id == volume_id)).one()
    assert f"cannot be {2048 << 30} bytes (2048 GiB) long" in (task.last_error or "")
    assert "allows no file that large" in (task.last_error or "")
    assert set(api.stack.settings.resolved_volumes_dir.iterdir()) - files == set()


# --- 5. NUL in a manage source-name -----------------------------------------------------------


@pytest.mark.parametrize("route", ["/manageable_volumes", "/os-volume-manage"])
@pytest.mark.parametrize("name", ["{image}\x00", "\x00{image}", "{image}\x00/../x"])
def test_nul_in_a_manage_source_name_is_400(
    api: Api, route: str, name: str, tmp_path: Path
) -> None:
    image = tmp_path / "image.raw"
    image.write_bytes(b"\1" * 4096)
    body = {"volume": {"ref": {"source-name": name.format(image=image)}}}
    with unchanged(api):
        message = _fault(api.post(route, content=json.dumps(body), headers=JSON))
    assert "source-name" in message and "NUL" in message


# --- 7. sort keys -------------------------------------------------------------------------------


def _one_of(api: Api, key: str) -> str:
    """The id of a new volume, backup or snapshot (`key`) of the project."""
    volume_id = api.volume()
    if key == "volumes":
        return volume_id
    if key == "backups":
        return api.backup(volume_id)
    r = api.post("/snapshots", json={"snapshot": {"volume_id": volume_id}})
    assert r.status_code == 202, r.text
    return str(r.json()["snapshot"]["id"])


@pytest.mark.parametrize("key", ["volumes", "backups", "snapshots"])
def test_hundreds_of_sort_keys_with_a_marker_are_400_at_once(api: Api, key: str) -> None:
    marker = _one_of(api, key)
    started = time.monotonic()
    r = api.get(f"/{key}", params={"sort": ",".join(["created_at"] * 500), "marker": marker})
    assert "sort key created_at is given more than once" in _fault(r)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "sort", ["name,name", "name:asc,name:desc", "display_name,name", "id,created_at,id"]
)
def test_a_sort_key_given_twice_is_400(api: Api, sort: str) -> None:
    assert "more than once" in _fault(api.get("/volumes", params={"sort": sort}))


def test_every_sort_key_once_pages_with_a_marker_a_boolean_one_too(api: Api) -> None:
    volumes = {api.volume(name="a"), api.volume(name="b")}
    keys = "bootable,id,name,description,size,status,created_at,updated_at,availability_zone"
    r = api.get("/volumes", params={"sort": keys, "limit": 1})
    assert r.status_code == 200, r.text
    (first,) = r.json()["volumes"]
    r = api.get("/volumes", params={"sort": keys, "limit": 1, "marker": first["id"]})
    assert r.status_code == 200, r.text  # a marker on `bootable` was a 500
    (second,) = r.json()["volumes"]
    assert {first["id"], second["id"]} == volumes


# --- 6. a request line of 64 KiB or more ------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`ashbox serve` in a subprocess, with the uvicorn settings it really uses."""
    data_dir = tmp_path_factory.mktemp("ashbox-serve")
    server = Server(data_dir, f"sqlite:///{data_dir / 'ashbox.db'}")
    server.start()
    yield server
    server.stop()


def _raw_exchange(port: int, request: bytes, *, pause: bool = False) -> bytes:
    """Send `request` on a fresh connection (with `pause`, its first 4 KiB alone
    first); everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        if pause:
            sock.sendall(request[:4096])
            time.sleep(0.2)
            request = request[4096:]
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return int(status_line.split(" ")[1]), headers, body


@pytest.mark.integration
@pytest.mark.parametrize("pause", [False, True], ids=["whole", "in-pieces"])
@pytest.mark.parametrize("length", [8 * 1024, 64 * 1024, 1024 * 1024])
def test_a_long_request_line_gets_414_with_a_fault_body(
    served: Server, length: int, pause: bool
) -> None:
    target = b"/v3/p1/volumes?name=" + b"a" * length
    request = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nX-Auth-Token: u1:p1\r\n\r\n"
    answer = _raw_exchange(served.port, request, pause=pause)
    assert answer.startswith(b"HTTP/1.1 414 Request-URI Too Long\r\n")
    status, headers, body = _answer(answer)
    assert headers["connection"] == "close"
    assert headers["x-openstack-request-id"].startswith("req-")
    assert "request line" in _fault(httpx.Response(status, content=body), 414)
    assert httpx.get(served.url + "/healthcheck").status_code == 200


@pytest.mark.integration
def test_a_request_line_under_the_cap_is_served(served: Server) -> None:
    target = b"/v3/p1/volumes?name=" + b"a" * 8000
    request = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nX-Auth-Token: u1:p1\r\n"
    status, _, body = _answer(_raw_exchange(served.port, request + b"Connection: close\r\n\r\n"))
    assert status == 200, body
    assert json.loads(body) == {"volumes": []}


@pytest.mark.integration
@pytest.mark.parametrize("pause", [False, True], ids=["whole", "in-pieces"])
def test_headers_past_64_kib_get_431_with_a_fault_body(served: Server, pause: bool) -> None:
    request = b"GET /v3/p1/volumes HTTP/1.1\r\nHost: x\r\n" + b"X-Big: a\r\n" * 10_000
    status, _, body = _answer(_raw_exchange(served.port, request + b"\r\n", pause=pause))
    assert status == 431
    assert "headers" in _fault(httpx.Response(status, content=body), 431)


@pytest.mark.integration
def test_a_malformed_request_line_gets_a_400_fault(served: Server) -> None:
    status, _, body = _answer(_raw_exchange(served.port, b"NOT HTTP AT ALL\r\n\r\n"))
    assert status == 400
    assert _fault(httpx.Response(status, content=body)) == "Invalid HTTP request received."


def test_a_request_head_is_judged_by_its_line_and_its_length() -> None:
    line = b"GET /" + b"a" * (MAX_REQUEST_LINE - 20) + b" HTTP/1.1\r\n"
    assert head_status(line) is None
    assert head_status(b"GET /" + b"a" * MAX_REQUEST_LINE) == 414
    headers = b"Host: x\r\n" + b"X: y\r\n" * (MAX_HEAD // 6)
    assert head_status(line + headers) == 431
    assert head_status(line + b"Host: x\r\n\r\n" + b"body" * MAX_HEAD) is None
