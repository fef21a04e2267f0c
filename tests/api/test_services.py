"""os-services over HTTP: the stack's worker as Cinder's `cinder-backup`
service, disabling and enabling it, and what creates, restores and deletes
answer while no service can take them (CINDER-CONTRACT §2.2)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from tempest.lib.api_schema.response.volume import services as services_schema
from tempest.lib.api_schema.response.volume.v3_7 import services as services_37

from ashbox.db import services as service_rows
from ashbox.db.models import Service
from tests.api.conftest import Api, Stack
from tests.api.test_tempest_schemas import check


@pytest.fixture
def host(stack: Stack) -> str:
    return stack.settings.resolved_worker_name


@pytest.fixture
def enabled_afterwards(api: Api, host: str) -> Iterator[None]:
    """The stack is shared: its service is enabled again whatever the test did."""
    yield
    r = api.http.put("/os-services/enable", json={"host": host, "binary": "cinder-backup"})
    assert r.status_code == 200, r.text


def _services(api: Api, **params: str) -> list[dict[str, Any]]:
    r = api.get("/os-services", params=params)
    assert r.status_code == 200, r.text
    return r.json()["services"]  # type: ignore[no-any-return]


def test_the_worker_is_listed_as_an_enabled_up_backup_service(api: Api, host: str) -> None:
    listed = _services(api)
    assert [s["host"] for s in listed] == [host]
    (service,) = listed
    assert service["binary"] == "cinder-backup"
    assert (service["zone"], service["status"], service["state"]) == ("nova", "enabled", "up")
    assert service["disabled_reason"] is None and service["cluster"] is None
    seen = datetime.fromisoformat(service["updated_at"]).replace(tzinfo=UTC)
    assert datetime.now(UTC) - seen < timedelta(seconds=60)


def test_lists_match_tempests_schemas_before_and_from_3_7(api: Api) -> None:
    plain = {"X-Ashbox-Extras": "false"}
    for schema, version in ((services_schema, "3.0"), (services_37, "3.7")):
        check(schema.list_services, api.get("/os-services", headers={**api.at(version), **plain}))
    assert "cluster" not in _services_at(api, "3.6")[0]


def test_the_extras_say_how_the_workers_last_found_the_store(api: Api) -> None:
    (service,) = _services(api)
    assert service["os-ashbox-service:store_state"] == "up"
    assert service["os-ashbox-service:store_error"] is None


def _services_at(api: Api, version: str) -> list[dict[str, Any]]:
    return api.get("/os-services", headers=api.at(version)).json()["services"]  # type: ignore[no-any-return]


def test_host_and_binary_filter_the_list(api: Api, host: str) -> None:
    assert len(_services(api, host=host, binary="cinder-backup")) == 1
    assert _services(api, host="elsewhere") == []
    assert _services(api, binary="cinder-volume") == []


@pytest.mark.usefixtures("enabled_afterwards")
def test_a_disabled_service_fails_a_create_as_cinder_does_and_refuses_restores(
    api: Api, host: str
) -> None:
    volume_id = api.volume()
    backup_id = api.backup(volume_id)
    r = api.http.put(
        "/os-services/disable-log-reason",
        json={"host": host, "binary": "cinder-backup", "disabled_reason": "maintenance"},
    )
    check(services_schema.disable_log_reason, r)
    assert r.json() == {
        "host": host, "service": "", "binary": "cinder-backup", "status": "disabled",
        "disabled": True, "disabled_reason": "maintenance",
    }  # fmt: skip
    (service,) = _services(api)
    assert (service["status"], service["disabled_reason"]) == ("disabled", "maintenance")

    r = api.post("/backups", json={"backup": {"volume_id": volume_id}})
    assert r.status_code == 202, r.text
    failed = api.wait_backup(r.json()["backup"]["id"])
    assert (failed["status"], failed["fail_reason"]) == (
        "error",
        "Service not found for creating backup.",
    )
    assert api.show_volume(volume_id)["status"] == "available"
    # The restore names the host that holds its volume: no other worker can reach it.
    for method, path, body, where in (
        ("POST", f"/backups/{backup_id}/restore", {"restore": {"volume_id": volume_id}},
         f" on host {host}"),
        ("DELETE", f"/backups/{backup_id}", None, ""),
    ):  # fmt: skip
        r = api.http.request(method, path, json=body)
        assert r.status_code == 404, r.text
        message = f"Service cinder-backup could not be found{where}."
        assert r.json() == {"itemNotFound": {"code": 404, "message": message}}
    assert api.wait_backup(backup_id)["status"] == "available"

    r = api.http.put("/os-services/enable", json={"host": host, "binary": "cinder-backup"})
    check(services_schema.enable_service, r)
    assert r.json()["disabled_reason"] is None
    assert _services(api)[0]["status"] == "enabled"
    assert api.wait_backup(api.start_backup(volume_id))["status"] == "available"


@pytest.mark.usefixtures("enabled_afterwards")
def test_a_disabled_worker_claims_nothing_until_enabled(api: Api, host: str) -> None:
    volume_id = api.volume()
    r = api.http.put("/os-services/disable", json={"host": host, "service": "cinder-backup"})
    check(services_schema.disable_service, r)
    r = api.post("/volumes", json={"volume": {"size": 1}})  # a volume task, not placed
    assert r.status_code == 202, r.text
    new_id = r.json()["volume"]["id"]
    r = api.http.delete(f"/volumes/{volume_id}")
    assert r.status_code == 202, r.text
    # The worker polls every 50 ms: a second is many chances to claim wrongly.
    time.sleep(1.0)
    assert api.show_volume(new_id)["status"] == "creating"
    assert api.show_volume(volume_id)["status"] == "deleting"
    api.http.put("/os-services/enable", json={"host": host, "binary": "cinder-backup"})
    assert api.wait_volume(new_id)["status"] == "available"
    assert api.wait_volume(volume_id) == {}


def test_a_service_whose_heartbeat_is_old_is_down_and_takes_no_create(
    api: Api, stack: Stack, host: str
) -> None:
    volume_id = api.volume()
    old = datetime.now(UTC) - timedelta(seconds=stack.settings.service_down_seconds + 5)
    with stack.db.transaction() as s:
        s.execute(update(Service).where(Service.host == host).values(updated_at=old))
    assert _services(api)[0]["state"] == "down"
    r = api.post("/backups", json={"backup": {"volume_id": volume_id}})
    failed = api.wait_backup(r.json()["backup"]["id"])
    assert failed["fail_reason"] == "Service not found for creating backup."
    with stack.db.transaction() as s:
        service_rows.report_alive(s, host, stack.settings.availability_zone)
    assert _services(api)[0]["state"] == "up"


@pytest.mark.parametrize(
    ("action", "body", "status", "message"),
    [
        ("enable", {"binary": "cinder-backup"}, 400,
         "Invalid input received: Host field is missing."),
        ("disable", {"host": "nowhere", "binary": "cinder-backup"}, 404,
         "Service cinder-backup could not be found on host nowhere."),
        ("disable", {"host": "h"}, 400, None),
        ("disable", {"host": "h", "binary": "cinder-backup", "zone": "x"}, 400, None),
        ("disable", {"host": "bad host!", "binary": "cinder-backup"}, 400, None),
        ("disable-log-reason", {"host": "h", "binary": "b", "disabled_reason": "   "}, 400, None),
        ("disable-log-reason", {"host": "h", "binary": "b", "disabled_reason": 7}, 400, None),
        ("freeze", {"host": "h"}, 400, "Invalid input received: No service found with host=h"),
        ("thaw", {}, 400,
         "Invalid input received: One and only one of cluster and host must be set."),
        ("failover_host", {"host": "h", "backend_id": "b"}, 400, None),
        ("freeze", {"host": "h", "backend_id": "b"}, 400, None),
    ],
)  # fmt: skip
def test_bad_switches_are_refused_and_change_nothing(
    api: Api, action: str, body: dict[str, Any], status: int, message: str | None
) -> None:
    r = api.http.put(f"/os-services/{action}", json=body)
    assert r.status_code == status, r.text
    if message is not None:
        assert next(iter(r.json().values()))["message"] == message
    assert _services(api)[0]["status"] == "enabled"
