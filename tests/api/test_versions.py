"""Version discovery and microversion negotiation (CINDER-CONTRACT §1.1)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.api.conftest import Api

REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_root_answers_300_with_the_versions_document(server: str) -> None:
    r = httpx.get(f"{server}/")
    assert r.status_code == 300
    (version,) = r.json()["versions"]
    assert version["id"] == "v3.0"
    assert version["status"] == "CURRENT"
    assert (version["min_version"], version["version"]) == ("3.0", "3.71")
    assert version["updated"] == "2023-08-31T00:00:00Z"
    assert {"rel": "self", "href": f"{server}/v3/"} in version["links"]
    assert version["media-types"][0]["type"] == "application/vnd.openstack.volume+json;version=3"


@pytest.mark.parametrize("path", ["/v3", "/v3/"])
def test_v3_answers_200_with_the_same_document_and_needs_no_token(server: str, path: str) -> None:
    r = httpx.get(server + path)
    assert r.status_code == 200
    assert r.json() == httpx.get(f"{server}/").json()


def test_self_link_follows_the_request_host(server: str) -> None:
    r = httpx.get(f"{server}/v3/", headers={"Host": "volumes.example:8776"})
    assert r.json()["versions"][0]["links"][1]["href"] == "http://volumes.example:8776/v3/"


def test_every_response_carries_a_request_id(api: Api, server: str) -> None:
    responses = [
        httpx.get(f"{server}/"),
        httpx.get(f"{server}/healthcheck"),
        api.get("/backups"),
        api.get("/backups/nope"),
        api.get("/no-such-thing"),
    ]
    ids = [r.headers["x-openstack-request-id"] for r in responses]
    assert all(REQUEST_ID.match(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_faults_also_carry_the_compute_request_id(api: Api) -> None:
    r = api.get("/backups/nope")
    assert r.headers["x-compute-request-id"] == r.headers["x-openstack-request-id"]


def test_no_header_means_3_0_and_is_echoed(api: Api) -> None:
    r = httpx.get(f"{api.url}/backups", headers={"X-Auth-Token": f"u1:{api.project}"})
    assert r.headers["OpenStack-API-Version"] == "volume 3.0"
    assert r.headers["Vary"] == "OpenStack-API-Version"


@pytest.mark.parametrize(
    ("asked", "echoed"),
    [
        ("volume latest", "volume 3.71"),
        ("volume 3.43", "volume 3.43"),
        ("compute 2.1, volume 3.64", "volume 3.64"),
        ("VOLUME 3.5", "volume 3.5"),
    ],
)
def test_the_negotiated_version_is_echoed(api: Api, asked: str, echoed: str) -> None:
    r = api.get("/backups", headers={"OpenStack-API-Version": asked})
    assert r.status_code == 200
    assert r.headers["OpenStack-API-Version"] == echoed
    assert r.headers["Vary"] == "OpenStack-API-Version"


@pytest.mark.parametrize("asked", ["3.99", "3.72", "2.0", "4.0"])
def test_a_version_out_of_range_is_406_with_cinders_message(api: Api, asked: str) -> None:
    r = api.get("/backups", headers={"OpenStack-API-Version": f"volume {asked}"})
    assert r.status_code == 406
    assert r.json() == {
        "computeFault": {
            "code": 406,
            "message": f"Version {asked} is not supported by the API. "
            "Minimum is 3.0 and maximum is 3.71.",
        }
    }
    assert r.headers["OpenStack-API-Version"] == "volume 3.0"


@pytest.mark.parametrize("asked", ["3", "3.x", "3.05", "three"])
def test_a_malformed_version_is_400(api: Api, asked: str) -> None:
    r = api.get("/backups", headers={"OpenStack-API-Version": f"volume {asked}"})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        f"API Version String {asked} is of invalid format. Must be of format MajorNum.MinorNum."
    )


def test_a_header_without_a_volume_entry_is_400(api: Api) -> None:
    r = api.get("/backups", headers={"OpenStack-API-Version": "compute 2.1"})
    assert r.status_code == 400
    assert "volume X.Y" in r.json()["badRequest"]["message"]


def test_version_documents_outside_v3_carry_no_version_header(server: str) -> None:
    r = httpx.get(f"{server}/")
    assert "OpenStack-API-Version" not in r.headers
