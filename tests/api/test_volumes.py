"""Volume create, show, list, delete and manage (CINDER-CONTRACT §1.7)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.api.conftest import Api

BASE_KEYS = {
    "id", "status", "size", "availability_zone", "created_at", "updated_at", "name",
    "description", "volume_type", "snapshot_id", "source_volid", "metadata", "links",
    "user_id", "bootable", "encrypted", "replication_status", "consistencygroup_id",
    "multiattach", "attachments",
}  # fmt: skip
ADMIN_KEYS = {
    "migration_status", "os-vol-host-attr:host", "os-vol-mig-status-attr:migstat",
    "os-vol-mig-status-attr:name_id", "os-vol-tenant-attr:tenant_id", "os-vol-ashbox-attr:path",
}  # fmt: skip
CREATE_ADMIN_KEYS = {"migration_status", "os-vol-ashbox-attr:path"}
LATEST_KEYS = {
    "group_id", "provider_id", "shared_targets", "service_uuid", "cluster_name",
    "volume_type_id", "consumes_quota", "encryption_key_id",
}  # fmt: skip

CINDERCLIENT_CREATE = {
    "volume": {
        "size": 1, "consistencygroup_id": None, "snapshot_id": None, "name": "vol1",
        "description": None, "volume_type": None, "availability_zone": None, "metadata": {},
        "imageRef": None, "source_volid": None, "backup_id": None,
    }
}  # fmt: skip
OSC_CREATE = {
    "volume": {
        "metadata": None, "consistencygroup_id": None, "source_volid": None, "description": None,
        "name": "oscvol", "volume_type": None, "snapshot_id": None, "size": 1, "backup_id": None,
        "availability_zone": None, "imageRef": None,
    }
}  # fmt: skip


@pytest.mark.parametrize("body", [CINDERCLIENT_CREATE, OSC_CREATE, {"volume": {"size": "1"}}])
def test_create_accepts_what_the_clients_send(api: Api, body: dict[str, object]) -> None:
    r = api.post("/volumes", json=body)
    assert r.status_code == 202, r.text
    volume = r.json()["volume"]
    assert (volume["size"], volume["status"], volume["bootable"]) == (1, "creating", "false")
    # As Cinder's: a create answers without the os-vol-*-attr keys of show and detail.
    assert set(volume) == BASE_KEYS | CREATE_ADMIN_KEYS | LATEST_KEYS
    assert api.wait_volume(volume["id"])["status"] == "available"


def test_show_gates_keys_by_microversion(api: Api) -> None:
    volume_id = api.volume(name="v", description="d", metadata={"k": "v"})
    volume = api.get(f"/volumes/{volume_id}", headers=api.at("3.0")).json()["volume"]
    assert set(volume) == BASE_KEYS | ADMIN_KEYS
    assert (volume["name"], volume["description"], volume["metadata"]) == ("v", "d", {"k": "v"})
    assert volume["os-vol-tenant-attr:tenant_id"] == api.project
    assert volume["links"][0]["href"] == f"{api.url}/volumes/{volume_id}"


def test_every_listed_volume_has_the_same_keys(api: Api) -> None:
    api.volume(name="a")
    api.volume(name="b", metadata={"k": "v"})
    volumes = api.get("/volumes/detail").json()["volumes"]
    assert len({frozenset(v) for v in volumes}) == 1
    assert [set(v) for v in api.get("/volumes").json()["volumes"]] == [{"id", "name", "links"}] * 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "Invalid input received: Volume size 'None' must be an integer and greater than 0"),
        (
            {"size": 0},
            "Invalid input for field/attribute size. Value: 0. 0 is less than the minimum",
        ),
        ({"size": "0"}, "Volume size '0' must be an integer"),
        ({"size": "one"}, "Invalid input for field/attribute size. Value: one."),
        ({"size": 1.5}, "Invalid input for field/attribute size. Value: 1.5."),
        ({"size": 1, "snapshot_id": str(uuid.uuid4())}, "snapshot_id is not supported"),
        ({"size": 1, "imageRef": "img"}, "imageRef is not supported"),
        ({"size": 1, "bogus": 1}, "Additional properties are not allowed ('bogus' was unexpected)"),
    ],
)
def test_invalid_volume_creates_are_400_and_create_nothing(
    api: Api, spec: dict[str, object], message: str
) -> None:
    r = api.post("/volumes", json={"volume": spec})
    assert r.status_code == 400
    assert message in r.json()["badRequest"]["message"]
    assert api.get("/volumes").json()["volumes"] == []


def test_unknown_volume_keys_are_ignored_before_3_53(api: Api) -> None:
    body = {"volume": {"size": 1, "bogus": 1}}
    assert api.post("/volumes", json=body, headers=api.at("3.52")).status_code == 202


def test_scheduler_hints_are_accepted(api: Api) -> None:
    body = {"volume": {"size": 1}, "OS-SCH-HNT:scheduler_hints": {"same_host": []}}
    assert api.post("/volumes", json=body).status_code == 202


def test_an_unknown_volume_is_404_with_cinders_message(api: Api) -> None:
    r = api.get("/volumes/nope")
    assert r.status_code == 404
    assert r.json() == {"itemNotFound": {"code": 404, "message": "Volume nope could not be found."}}


def test_delete_honours_the_sdk_query_and_answers_202(api: Api) -> None:
    volume_id = api.volume()
    r = api.delete(f"/volumes/{volume_id}", params={"cascade": "False", "force": "False"})
    assert (r.status_code, r.content) == (202, b"")
    assert api.wait_volume(volume_id) == {}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"force": "true"}, "Invalid input received: force-deleting volumes is not supported."),
        ({"cascade": "perhaps"}, "Value 'perhaps' for 'cascade' is not a boolean."),
    ],
)
def test_delete_refuses_what_it_cannot_do(api: Api, params: dict[str, str], message: str) -> None:
    volume_id = api.volume()
    r = api.delete(f"/volumes/{volume_id}", params=params)
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == message
    assert api.get(f"/volumes/{volume_id}").status_code == 200


def test_backups_do_not_block_volume_deletion(api: Api) -> None:
    volume_id = api.volume()
    path = api.path_of(volume_id)
    api.fill(volume_id)
    backup_id = api.backup(volume_id)
    assert api.delete(f"/volumes/{volume_id}").status_code == 202
    assert api.wait_volume(volume_id) == {}
    assert not path.exists()
    assert api.get(f"/backups/{backup_id}").json()["backup"]["status"] == "available"
    restored = api.restore(backup_id)
    assert api.show_volume(restored["volume_id"])["status"] == "available"


@pytest.mark.parametrize("status", ["backing-up", "restoring-backup", "creating", "in-use"])
def test_a_busy_volume_cannot_be_deleted(api: Api, status: str) -> None:
    volume_id = api.volume()
    api.stack.set_volume_status(volume_id, status)
    r = api.delete(f"/volumes/{volume_id}")
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"].startswith(
        "Invalid volume: Volume status must be available or error or error_restoring"
    )
    assert api.show_volume(volume_id)["status"] == status


@pytest.mark.parametrize("status", ["error", "error_restoring"])
def test_a_failed_volume_can_be_deleted(api: Api, status: str) -> None:
    volume_id = api.volume()
    path = api.path_of(volume_id)
    api.stack.set_volume_status(volume_id, status)
    assert api.delete(f"/volumes/{volume_id}").status_code == 202
    assert api.wait_volume(volume_id) == {}
    assert not path.exists()


@pytest.mark.parametrize("status", ["error_deleting", "error_backing-up", "available"])
def test_an_admin_force_deletes_a_volume_a_delete_refuses_or_left_failed(
    api: Api, status: str
) -> None:
    volume_id = api.volume()
    path = api.path_of(volume_id)
    api.stack.set_volume_status(volume_id, status)
    r = api.post(f"/volumes/{volume_id}/action", json={"os-force_delete": {}})
    assert r.status_code == 202, r.text
    assert api.wait_volume(volume_id) == {}
    assert not path.exists()


@pytest.mark.parametrize("status", ["backing-up", "restoring-backup", "creating", "in-use"])
def test_a_force_delete_never_takes_a_volume_in_use_or_worked_on(api: Api, status: str) -> None:
    volume_id = api.volume()
    api.stack.set_volume_status(volume_id, status)
    r = api.post(f"/volumes/{volume_id}/action", json={"os-force_delete": {}})
    assert r.status_code == 400
    assert "Volume status must be available or error" in r.json()["badRequest"]["message"]
    assert api.show_volume(volume_id)["status"] == status


def test_a_created_volume_is_a_sparse_file_of_its_size(api: Api) -> None:
    path = api.path_of(api.volume(size=2))
    assert path.stat().st_size == 2 * 1024**3
    assert path.stat().st_blocks * 512 < 1024**2


def test_an_unknown_availability_zone_is_400(api: Api) -> None:
    r = api.post("/volumes", json={"volume": {"size": 1, "availability_zone": "mars"}})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == "Availability zone 'mars' is invalid."
    assert api.get("/volumes").json()["volumes"] == []
    r = api.post("/volumes", json={"volume": {"size": 1, "availability_zone": "nova"}})
    assert r.json()["volume"]["availability_zone"] == "nova"


@pytest.mark.parametrize("path", ["/manageable_volumes", "/os-volume-manage"])
def test_manage_imports_an_existing_file(api: Api, path: str, tmp_path: Path) -> None:
    image = tmp_path / "image.raw"
    with image.open("wb") as f:
        f.truncate(1024**3)  # a sparse 1 GiB raw image
    source = str(image)
    body = {
        "volume": {
            "host": None, "ref": {"source-name": source}, "name": "imported",
            "description": None, "metadata": {}, "bootable": False, "volume_type": None,
            "availability_zone": None,
        }
    }  # fmt: skip
    r = api.post(path, json=body)
    assert r.status_code == 202, r.text
    volume = r.json()["volume"]
    assert (volume["name"], volume["os-vol-ashbox-attr:path"]) == ("imported", source)
    assert volume["status"] == "creating"  # Cinder shows "managing" so
    volume = api.wait_volume(volume["id"])
    assert (volume["size"], volume["status"]) == (1, "available")
    original = api.fill(volume["id"])
    backup_id = api.backup(volume["id"])
    assert api.digest(api.restore(backup_id)["volume_id"]) == original
    assert api.delete(f"/volumes/{volume['id']}").status_code == 202
    assert api.wait_volume(volume["id"]) == {}
    assert image.exists()  # an imported volume's file is never removed


def test_a_file_cannot_be_managed_twice(api: Api, tmp_path: Path) -> None:
    image = tmp_path / "twice.raw"
    image.write_bytes(b"x" * 4096)
    body = {"volume": {"ref": {"source-name": str(image)}}}
    volume_id = api.post("/manageable_volumes", json=body).json()["volume"]["id"]
    r = api.post("/manageable_volumes", json=body)
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        f"Invalid volume: {image} is already managed as volume {volume_id}."
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "'ref' is a required property"),
        ({"ref": {"source-id": "x"}}, "'source-name' is a required property"),
        ({"ref": {"source-name": "relative.raw"}}, "must be an absolute path"),
        ({"ref": {"source-name": "/a.raw"}, "bootable": True}, "bootable volumes are not"),
        ({"ref": {"source-name": "/a.raw"}, "availability_zone": "mars"}, "'mars' does not"),
        ({"ref": {"source-name": "/a.raw"}, "bogus": 1}, "'bogus' was unexpected"),
    ],
)
def test_invalid_manage_requests_are_400_and_import_nothing(
    api: Api, spec: dict[str, object], message: str
) -> None:
    r = api.post("/manageable_volumes", json={"volume": spec})
    assert r.status_code == 400
    assert message in r.json()["badRequest"]["message"]
    assert api.get("/volumes").json()["volumes"] == []
