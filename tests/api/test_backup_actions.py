"""Backup update, reset status and force delete; volume attach, detach and reset
(CINDER-CONTRACT §1.2 rows 5, 10, 11; §1.7; docs/states.md rows R4, X1, B6)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api.conftest import Api


def _reset(api: Api, backup_id: str, status: str) -> Any:
    return api.post(f"/backups/{backup_id}/action", json={"os-reset_status": {"status": status}})


def _manifest(api: Api, backup_id: str) -> Any:
    store = api.stack.settings.data_dir / "store"
    return next(store.rglob(f"backups/{backup_id}"))


def test_update_renames_describes_and_replaces_metadata(api: Api) -> None:
    backup_id = api.backup(api.volume(), name="old", metadata={"a": "1"})
    body = {"backup": {"name": " new ", "description": "d", "metadata": {"b": "2"}}}
    r = api.http.put(f"/backups/{backup_id}", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "backup": {"id": backup_id, "name": "new", "links": r.json()["backup"]["links"]}
    }
    shown = api.get(f"/backups/{backup_id}").json()["backup"]
    assert (shown["name"], shown["description"], shown["metadata"]) == ("new", "d", {"b": "2"})
    assert api.http.put(f"/backups/{backup_id}", json={"backup": {}}).status_code == 200
    assert api.get(f"/backups/{backup_id}").json()["backup"]["name"] == "new"


@pytest.mark.parametrize(
    ("version", "body", "status"),
    [
        ("3.8", {"backup": {"name": "n"}}, 404),
        ("3.9", {"backup": {"metadata": {"k": "v"}}}, 400),
        ("3.43", {"backup": None}, 400),
        ("3.43", {"backup": {"colour": "red"}}, 400),
        ("3.43", {"backup": {"name": "x" * 256}}, 400),
    ],
)
def test_an_update_the_version_or_schema_refuses_changes_nothing(
    api: Api, version: str, body: dict[str, Any], status: int
) -> None:
    backup_id = api.backup(api.volume(), name="kept")
    r = api.http.put(f"/backups/{backup_id}", json=body, headers=api.at(version))
    assert r.status_code == status, r.text
    assert api.get(f"/backups/{backup_id}").json()["backup"]["name"] == "kept"


def test_an_unknown_backup_cannot_be_updated(api: Api) -> None:
    r = api.http.put(f"/backups/{uuid.uuid4()}", json={"backup": {"name": "n"}})
    assert r.status_code == 404


def test_reset_to_error_then_back_to_available(api: Api) -> None:
    backup_id = api.backup(api.volume())
    assert _reset(api, backup_id, "ERROR").status_code == 202
    assert api.get(f"/backups/{backup_id}").json()["backup"]["status"] == "error"
    assert _reset(api, backup_id, "available").status_code == 202
    assert api.wait_backup(backup_id)["status"] == "available"
    api.restore(backup_id)


def test_reset_to_available_needs_the_manifest_in_the_store(api: Api) -> None:
    backup_id = api.backup(api.volume())
    assert _reset(api, backup_id, "error").status_code == 202
    _manifest(api, backup_id).unlink()
    r = _reset(api, backup_id, "available")
    assert r.status_code == 400
    assert "has no manifest" in r.json()["badRequest"]["message"]
    assert api.get(f"/backups/{backup_id}").json()["backup"]["status"] == "error"


def test_a_backup_left_creating_is_reset_and_its_volume_settled(api: Api) -> None:
    volume_id = api.volume()
    backup_id = api.backup(volume_id)
    api.stack.set_backup_status(backup_id, "creating")
    api.stack.set_volume_status(volume_id, "backing-up")
    assert _reset(api, backup_id, "error").status_code == 202
    assert api.get(f"/backups/{backup_id}").json()["backup"]["status"] == "error"
    assert api.show_volume(volume_id)["status"] == "available"


@pytest.mark.parametrize("status", ["creating", "deleted", "bogus", ""])
def test_reset_takes_only_available_or_error(api: Api, status: str) -> None:
    backup_id = api.backup(api.volume())
    r = _reset(api, backup_id, status)
    assert r.status_code == 400
    assert api.get(f"/backups/{backup_id}").json()["backup"]["status"] == "available"


def test_a_deleting_backup_cannot_be_reset(api: Api) -> None:
    backup_id = api.backup(api.volume())
    api.stack.set_backup_status(backup_id, "deleting")
    r = _reset(api, backup_id, "available")
    assert r.status_code == 400
    assert "delete is under way" in r.json()["badRequest"]["message"]
    api.stack.set_backup_status(backup_id, "available")


@pytest.mark.parametrize("body", [{"os-force_delete": None}, {"os-force_delete": {}}])
def test_force_delete_deletes_in_any_status(api: Api, body: dict[str, Any]) -> None:
    volume_id = api.volume()
    backup_id = api.backup(volume_id)
    api.stack.set_backup_status(backup_id, "error_deleting")
    assert api.post(f"/backups/{backup_id}/action", json=body).status_code == 202
    assert api.wait_backup(backup_id) == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"os-frobnicate": {}}, "There is no such action: os-frobnicate."),
        ({"os-force_delete": {}, "os-reset_status": {"status": "error"}}, "Malformed request"),
        ({}, "Malformed request body"),
        ({"os-reset_status": {}}, "'status' is a required property"),
        ({"os-reset_status": {"status": "error", "x": 1}}, "'x' was unexpected"),
    ],
)
def test_a_bad_action_is_400_and_changes_nothing(
    api: Api, body: dict[str, Any], message: str
) -> None:
    backup_id = api.backup(api.volume())
    r = api.post(f"/backups/{backup_id}/action", json=body)
    assert r.status_code == 400
    assert message in r.json()["badRequest"]["message"]
    assert api.get(f"/backups/{backup_id}").json()["backup"]["status"] == "available"


def test_an_attached_volume_is_backed_up_only_with_force(api: Api) -> None:
    volume_id = api.volume()
    original = api.fill(volume_id)
    attach = {"os-attach": {"instance_uuid": str(uuid.uuid4()), "mountpoint": "/dev/vdb"}}
    assert api.post(f"/volumes/{volume_id}/action", json=attach).status_code == 202
    assert api.show_volume(volume_id)["status"] == "in-use"
    r = api.post("/backups", json={"backup": {"volume_id": volume_id}})
    assert r.status_code == 400
    assert "must use the force flag" in r.json()["badRequest"]["message"]
    backup_id = api.backup(volume_id, force=True)
    assert api.wait_volume(volume_id)["status"] == "in-use"
    r = api.post(f"/volumes/{volume_id}/action", json={"os-detach": {"attachment_id": None}})
    assert r.status_code == 202
    assert api.show_volume(volume_id)["status"] == "available"
    assert api.digest(api.restore(backup_id)["volume_id"]) == original


def test_a_volume_a_failed_restore_left_can_be_reset(api: Api) -> None:
    volume_id = api.volume()
    api.stack.set_volume_status(volume_id, "error_restoring")
    body = {"os-reset_status": {"status": "available"}}
    assert api.post(f"/volumes/{volume_id}/action", json=body).status_code == 202
    assert api.show_volume(volume_id)["status"] == "available"
    body = {"os-reset_status": {"status": "maintenance"}}
    r = api.post(f"/volumes/{volume_id}/action", json=body)
    assert r.status_code == 400
    body = {"os-reset_status": {"status": "bogus"}}
    r = api.post(f"/volumes/{volume_id}/action", json=body)
    assert r.status_code == 400 and "Volume status: bogus is invalid" in r.text
    assert api.show_volume(volume_id)["status"] == "available"
