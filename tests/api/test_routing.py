"""URL shapes, noauth, unknown routes and methods (CINDER-CONTRACT §1.0)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ashbox.api.app import create_app
from ashbox.backups.service import Service
from ashbox.config import Settings
from ashbox.db.engine import Database
from ashbox.errors import InvalidInput
from tests.api.conftest import Api, stack_settings


def test_routes_exist_with_and_without_the_project_segment(api: Api) -> None:
    volume_id = api.volume(name="both")
    with httpx.Client(base_url=f"{api.root}/v3", headers=dict(api.http.headers)) as bare:
        assert bare.get(f"/volumes/{volume_id}").json()["volume"]["name"] == "both"
        created = bare.post("/backups", json={"backup": {"volume_id": volume_id}})
        backup_id = created.json()["backup"]["id"]
        assert api.get(f"/backups/{backup_id}").status_code == 200
        assert [b["id"] for b in bare.get("/backups").json()["backups"]] == [backup_id]


def test_links_name_the_project_only_when_the_url_had_it(api: Api) -> None:
    volume_id = api.volume()
    backup_id = api.backup(volume_id)
    with_project = api.get(f"/backups/{backup_id}").json()["backup"]["links"]
    assert with_project == [
        {"rel": "self", "href": f"{api.root}/v3/{api.project}/backups/{backup_id}"},
        {"rel": "bookmark", "href": f"{api.root}/{api.project}/backups/{backup_id}"},
    ]
    bare = httpx.get(f"{api.root}/v3/backups/{backup_id}", headers=dict(api.http.headers))
    assert bare.json()["backup"]["links"] == [
        {"rel": "self", "href": f"{api.root}/v3/backups/{backup_id}"},
        {"rel": "bookmark", "href": f"{api.root}/backups/{backup_id}"},
    ]


def test_a_url_project_other_than_the_tokens_is_a_malformed_url(api: Api) -> None:
    r = httpx.get(f"{api.root}/v3/someone-else/backups", headers=dict(api.http.headers))
    assert r.status_code == 400
    assert r.json() == {"badRequest": {"code": 400, "message": "Malformed request url"}}


def test_a_token_without_a_project_takes_the_project_from_the_url(api: Api) -> None:
    volume_id = api.volume()
    r = httpx.get(f"{api.url}/volumes/{volume_id}", headers={"X-Auth-Token": "notused"})
    assert r.status_code == 200
    assert r.json()["volume"]["os-vol-tenant-attr:tenant_id"] == api.project
    assert r.json()["volume"]["user_id"] == "u1"


def test_a_token_without_a_project_or_url_project_is_user_and_project(server: str) -> None:
    headers = {"X-Auth-Token": "solo"}
    r = httpx.post(f"{server}/v3/volumes", json={"volume": {"size": 1}}, headers=headers)
    assert r.status_code == 202
    assert r.json()["volume"]["user_id"] == "solo"
    shown = httpx.get(f"{server}/v3/volumes/{r.json()['volume']['id']}", headers=headers)
    assert shown.json()["volume"]["os-vol-tenant-attr:tenant_id"] == "solo"


def test_a_request_without_a_token_is_401(api: Api) -> None:
    r = httpx.get(f"{api.url}/backups")
    assert r.status_code == 401
    assert "X-Auth-Token" in r.json()["unauthorized"]["message"]


def test_a_collection_name_is_never_taken_for_a_project(api: Api) -> None:
    r = api.http.post(f"{api.root}/v3/volumes/backups", json={"backup": {}})
    assert r.status_code == 404


def test_an_unknown_route_is_a_json_404(api: Api) -> None:
    r = api.get("/os-hypervisors")
    assert r.status_code == 404
    assert r.json() == {
        "itemNotFound": {"code": 404, "message": "The resource could not be found."}
    }
    assert r.headers["OpenStack-API-Version"] == "volume 3.71"


def test_a_wrong_method_is_a_json_405(api: Api) -> None:
    volume_id = api.volume()
    backup_id = api.backup(volume_id)
    r = api.http.patch(f"/backups/{backup_id}", json={"backup": {"name": "x"}})
    assert r.status_code == 405
    assert r.json()["badMethod"]["code"] == 405
    assert "GET" in r.headers["Allow"]


def test_healthcheck_answers_200(server: str) -> None:
    r = httpx.get(f"{server}/healthcheck")
    assert (r.status_code, r.text) == (200, "OK")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Service, Settings]]:
    """A real service; creating an app does not touch its (empty) database."""
    url = f"sqlite:///{tmp_path / 'ashbox.db'}"
    database = Database(url)
    settings = stack_settings(tmp_path, url)
    yield Service(database, settings), settings
    database.dispose()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_noauth_is_accepted_on_loopback(service: tuple[Service, Settings], host: str) -> None:
    real, settings = service
    create_app(real, dataclasses.replace(settings, host=host))


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "volumes.example"])
def test_noauth_is_refused_off_loopback(service: tuple[Service, Settings], host: str) -> None:
    real, settings = service
    with pytest.raises(InvalidInput, match="loopback"):
        create_app(real, dataclasses.replace(settings, host=host))


def test_an_unknown_auth_strategy_is_refused(service: tuple[Service, Settings]) -> None:
    real, settings = service
    with pytest.raises(InvalidInput, match="keystone"):
        create_app(real, dataclasses.replace(settings, auth_strategy="keystone"))
