"""Snapshots over HTTP, backups of snapshots, and volumes created from backups
(CINDER-CONTRACT §1.7, §2.1 step 2, §2.6)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api.conftest import Api

NINE = {
    "id", "created_at", "updated_at", "name", "description", "volume_id", "status", "size",
    "metadata",
}  # fmt: skip
EXTENDED = {
    "os-extended-snapshot-attributes:progress",
    "os-extended-snapshot-attributes:project_id",
}
LATEST = {"group_snapshot_id", "user_id", "consumes_quota"}


def _snapshot(api: Api, volume_id: str, **spec: Any) -> dict[str, Any]:
    r = api.post("/snapshots", json={"snapshot": {"volume_id": volume_id, **spec}})
    assert r.status_code == 202, r.text
    return _wait(api, r.json()["snapshot"]["id"])


def _wait(api: Api, snapshot_id: str) -> dict[str, Any]:
    for _ in range(1000):
        r = api.get(f"/snapshots/{snapshot_id}")
        if r.status_code == 404:
            return {}
        snapshot: dict[str, Any] = r.json()["snapshot"]
        if snapshot["status"] not in ("creating", "deleting", "backing-up"):
            return snapshot
        api.http.get("/snapshots", params={"limit": 1})  # a pause that asks the server
    raise TimeoutError(snapshot_id)


def test_a_snapshot_keeps_the_volume_as_it_was(api: Api) -> None:
    volume_id = api.volume()
    api.fill(volume_id)
    r = api.post(
        "/snapshots",
        json={"snapshot": {"volume_id": volume_id, "name": "s1", "metadata": {"k": "v"}}},
        headers=api.at("3.0"),
    )
    assert r.status_code == 202, r.text
    created = r.json()["snapshot"]
    assert set(created) == NINE and created["status"] == "creating"
    snapshot = _wait(api, created["id"])
    assert snapshot["status"] == "available"
    assert (snapshot["name"], snapshot["metadata"], snapshot["size"]) == ("s1", {"k": "v"}, 1)
    assert set(snapshot) == NINE | EXTENDED | LATEST
    assert snapshot["os-extended-snapshot-attributes:progress"] == "100%"
    listed = api.get("/snapshots").json()["snapshots"]
    assert [set(s) for s in listed] == [NINE]
    detailed = api.get("/snapshots/detail").json()["snapshots"]
    assert [s["id"] for s in detailed] == [snapshot["id"]]
    r = api.http.put(f"/snapshots/{snapshot['id']}", json={"snapshot": {"name": "s2"}})
    assert r.status_code == 200 and r.json()["snapshot"]["name"] == "s2"


def test_a_backup_of_a_snapshot_holds_the_data_of_the_snapshot(api: Api) -> None:
    volume_id = api.volume()
    at_snapshot = api.fill(volume_id)
    snapshot = _snapshot(api, volume_id)
    api.scribble(volume_id)  # the volume moves on; the snapshot does not
    backup_id = api.backup(volume_id, snapshot_id=snapshot["id"])
    assert _wait(api, snapshot["id"])["status"] == "available"
    backup = api.get(f"/backups/{backup_id}").json()["backup"]
    assert backup["snapshot_id"] == snapshot["id"]
    assert backup["data_timestamp"] == snapshot["created_at"]
    assert api.digest(api.restore(backup_id)["volume_id"]) == at_snapshot


def test_a_backup_of_a_snapshot_needs_the_volumes_available_snapshot(api: Api) -> None:
    volume_id, other = api.volume(), api.volume()
    snapshot = _snapshot(api, volume_id)
    body = {"backup": {"volume_id": other, "snapshot_id": snapshot["id"]}}
    r = api.post("/backups", json=body)
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        f"Invalid volume: Volume {other} does not match with snapshot.volume_id {volume_id}."
    )
    body = {"backup": {"volume_id": volume_id, "snapshot_id": str(uuid.uuid4())}}
    assert api.post("/backups", json=body).status_code == 404


def test_an_attached_volume_is_snapshotted_only_with_force_before_3_66(api: Api) -> None:
    volume_id = api.volume()
    attach = {"os-attach": {"instance_uuid": str(uuid.uuid4()), "mountpoint": "/dev/vdb"}}
    assert api.post(f"/volumes/{volume_id}/action", json=attach).status_code == 202
    body: dict[str, Any] = {"snapshot": {"volume_id": volume_id}}
    r = api.post("/snapshots", json=body, headers=api.at("3.65"))
    assert r.status_code == 400
    assert "status must be available, but current status is: in-use" in r.text
    body["snapshot"]["force"] = False
    r = api.post("/snapshots", json=body, headers=api.at("3.66"))
    assert r.status_code == 400 and "the 'force' flag is invalid" in r.text
    body["snapshot"]["force"] = True
    assert api.post("/snapshots", json=body, headers=api.at("3.65")).status_code == 202
    del body["snapshot"]["force"]
    assert api.post("/snapshots", json=body, headers=api.at("3.66")).status_code == 202


def test_a_volume_with_snapshots_is_not_deleted_and_snapshots_go_first(api: Api) -> None:
    volume_id = api.volume()
    snapshot = _snapshot(api, volume_id)
    path = api.stack.settings.resolved_volumes_dir / f"snapshot-{snapshot['id']}.raw"
    assert path.exists()
    r = api.delete(f"/volumes/{volume_id}")
    assert r.status_code == 400 and "have snapshots" in r.text
    assert api.delete(f"/snapshots/{snapshot['id']}").status_code == 202
    assert _wait(api, snapshot["id"]) == {}
    assert not path.exists()
    assert api.delete(f"/volumes/{volume_id}").status_code == 202


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"snapshot": {"volume_id": None}}, 404),
        ({"snapshot": {"volume_id": str(uuid.uuid4())}}, 404),
        ({"snapshot": {}}, 400),
        ({"snapshot": {"volume_id": "x", "colour": 1}}, 400),
    ],
)
def test_bad_snapshot_creates_change_nothing(api: Api, body: Any, status: int) -> None:
    assert api.post("/snapshots", json=body).status_code == status
    assert api.get("/snapshots").json()["snapshots"] == []


def test_snapshot_reset_and_force_delete_are_for_admins_and_exact(api: Api) -> None:
    snapshot = _snapshot(api, api.volume())
    action = f"/snapshots/{snapshot['id']}/action"
    assert api.post(action, json={"os-reset_status": {"status": "error"}}).status_code == 202
    assert api.get(f"/snapshots/{snapshot['id']}").json()["snapshot"]["status"] == "error"
    r = api.post(action, json={"os-reset_status": {"status": "bogus"}})
    assert r.status_code == 400 and "Snapshot status: bogus is invalid" in r.text
    assert api.post(action, json={"os-force_delete": {}}).status_code == 202
    assert _wait(api, snapshot["id"]) == {}


def test_a_volume_created_from_a_backup_holds_it(api: Api) -> None:
    volume_id = api.volume()
    original = api.fill(volume_id)
    backup_id = api.backup(volume_id)
    body = {"volume": {"backup_id": backup_id, "name": "from-backup", "size": None}}
    r = api.post("/volumes", json=body, headers=api.at("3.47"))
    assert r.status_code == 202, r.text
    created = r.json()["volume"]
    assert created["status"] == "creating" and created["name"] == "from-backup"
    assert api.wait_volume(created["id"])["status"] == "available"
    assert api.wait_backup(backup_id)["status"] == "available"
    assert api.digest(created["id"]) == original
    r = api.post("/volumes", json=body, headers=api.at("3.46"))
    assert r.status_code == 400
    body["volume"]["size"] = 2
    r = api.post("/volumes", json=body, headers=api.at("3.47"))
    assert r.status_code == 202
    assert api.wait_volume(r.json()["volume"]["id"])["size"] == 2
