"""Backup create, show, delete and restore over HTTP (CINDER-CONTRACT §1.2-1.4, §2)."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.api.conftest import Api

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
BASE_DETAIL_KEYS = {
    "id", "status", "size", "object_count", "availability_zone", "container", "created_at",
    "updated_at", "name", "description", "fail_reason", "volume_id", "links", "is_incremental",
    "has_dependent_backups", "snapshot_id", "data_timestamp",
    "os-backup-progress:done_bytes", "os-backup-progress:total_bytes",
    "os-backup-progress:queued", "os-backup-stats:stored_size",
}  # fmt: skip


def test_create_answers_202_with_the_summary(api: Api) -> None:
    volume_id = api.volume()
    r = api.post("/backups", json={"backup": {"volume_id": volume_id, "name": " b1 "}})
    assert r.status_code == 202
    backup = r.json()["backup"]
    assert set(backup) == {"id", "name", "links"}
    assert backup["name"] == "b1"
    assert backup["links"][0]["href"] == f"{api.url}/backups/{backup['id']}"


def test_create_accepts_what_cinderclient_sends(api: Api) -> None:
    volume_id = api.volume()
    body = {
        "backup": {
            "volume_id": volume_id, "container": "cont1", "name": "b1", "description": None,
            "incremental": False, "force": True, "snapshot_id": None, "metadata": {"k": "v"},
        }
    }  # fmt: skip
    r = api.post("/backups", json=body)
    assert r.status_code == 202, r.text
    shown = api.get(f"/backups/{r.json()['backup']['id']}").json()["backup"]
    assert (shown["container"], shown["metadata"]) == ("cont1", {"k": "v"})


@pytest.mark.parametrize("value", ["true", "1", "on", "YES", "y", "t", True])
def test_boolean_fields_take_cinders_boolean_strings(api: Api, value: object) -> None:
    volume_id = api.volume()
    api.backup(volume_id)
    backup_id = api.backup(volume_id, incremental=value)
    assert api.get(f"/backups/{backup_id}").json()["backup"]["is_incremental"] is True


def test_show_returns_the_detail_at_3_0(api: Api) -> None:
    volume_id = api.volume(size=2)
    backup_id = api.backup(volume_id, name="b1", description="d1")
    r = api.get(f"/backups/{backup_id}", headers=api.at("3.0"))
    backup = r.json()["backup"]
    assert set(backup) == BASE_DETAIL_KEYS
    assert backup["status"] == "available"
    assert (backup["size"], backup["volume_id"], backup["name"]) == (2, volume_id, "b1")
    assert backup["is_incremental"] is False
    assert backup["has_dependent_backups"] is False
    assert TIME.match(backup["created_at"]) and TIME.match(backup["data_timestamp"])
    assert backup["os-backup-progress:done_bytes"] is None
    assert backup["os-backup-progress:total_bytes"] is None
    assert backup["os-backup-progress:queued"] is False
    assert isinstance(backup["os-backup-stats:stored_size"], int)


@pytest.mark.parametrize(
    ("version", "extra"),
    [
        ("3.17", set()),
        ("3.18", {"os-backup-project-attr:project_id"}),
        ("3.43", {"os-backup-project-attr:project_id", "metadata"}),
        ("3.56", {"os-backup-project-attr:project_id", "metadata", "user_id"}),
        ("3.71", {"os-backup-project-attr:project_id", "metadata", "user_id"}),
    ],
)
def test_detail_keys_follow_the_microversion(api: Api, version: str, extra: set[str]) -> None:
    backup_id = api.backup(api.volume())
    for path in (f"/backups/{backup_id}", "/backups/detail"):
        r = api.get(path, headers=api.at(version))
        body = r.json()
        backup = body["backup"] if "backup" in body else body["backups"][0]
        assert set(backup) == BASE_DETAIL_KEYS | extra
    shown = api.get(f"/backups/{backup_id}", headers=api.at(version)).json()["backup"]
    if "user_id" in extra:
        assert shown["user_id"] == "u1"
    if extra:
        assert shown["os-backup-project-attr:project_id"] == api.project


def test_an_unknown_backup_is_404_with_cinders_message(api: Api) -> None:
    missing = str(uuid.uuid4())
    for r in (
        api.get(f"/backups/{missing}"),
        api.delete(f"/backups/{missing}"),
        api.post(f"/backups/{missing}/restore", json={"restore": {}}),
    ):
        assert r.status_code == 404
        assert r.json() == {
            "itemNotFound": {"code": 404, "message": f"Backup {missing} could not be found."}
        }


def test_a_name_instead_of_an_id_is_404_not_400(api: Api) -> None:
    r = api.get("/backups/sdkb")
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == "Backup sdkb could not be found."


def test_backing_up_an_unknown_volume_is_404(api: Api) -> None:
    missing = str(uuid.uuid4())
    r = api.post("/backups", json={"backup": {"volume_id": missing}})
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == f"Volume {missing} could not be found."


def test_incremental_without_a_parent_is_400(api: Api) -> None:
    r = api.post("/backups", json={"backup": {"volume_id": api.volume(), "incremental": True}})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        "Invalid backup: No backups available to do an incremental backup."
    )


def test_delete_answers_202_and_the_backup_is_gone(api: Api) -> None:
    backup_id = api.backup(api.volume())
    r = api.delete(f"/backups/{backup_id}")
    assert (r.status_code, r.content) == (202, b"")
    assert api.wait_backup(backup_id) == {}
    assert api.get(f"/backups/{backup_id}").status_code == 404


def test_delete_with_dependent_backups_is_400_and_changes_nothing(api: Api) -> None:
    volume_id = api.volume()
    parent = api.backup(volume_id)
    api.backup(volume_id, incremental=True)
    r = api.delete(f"/backups/{parent}")
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        "Invalid backup: Incremental backups exist for this backup."
    )
    shown = api.get(f"/backups/{parent}").json()["backup"]
    assert (shown["status"], shown["has_dependent_backups"]) == ("available", True)


def test_restore_onto_a_volume_answers_202_with_the_restore(api: Api) -> None:
    volume_id = api.volume()
    backup_id = api.backup(volume_id)
    target = api.volume(name="target")
    r = api.post(f"/backups/{backup_id}/restore", json={"restore": {"volume_id": target}})
    assert r.status_code == 202
    assert r.json() == {
        "restore": {"backup_id": backup_id, "volume_id": target, "volume_name": "target"}
    }


def test_restore_without_a_volume_creates_one_named_after_the_backup(api: Api) -> None:
    backup_id = api.backup(api.volume())
    r = api.post(f"/backups/{backup_id}/restore", json={"restore": {"volume_id": None}})
    restore = r.json()["restore"]
    assert restore["volume_name"] == f"restore_backup_{backup_id}"
    assert api.get(f"/volumes/{restore['volume_id']}").status_code == 200


def test_restore_with_a_name_names_the_new_volume(api: Api) -> None:
    backup_id = api.backup(api.volume())
    r = api.post(f"/backups/{backup_id}/restore", json={"restore": {"name": "restored"}})
    assert r.json()["restore"]["volume_name"] == "restored"


def test_restore_onto_a_too_small_volume_is_400(api: Api) -> None:
    backup_id = api.backup(api.volume(size=2))
    target = api.volume(size=1)
    r = api.post(f"/backups/{backup_id}/restore", json={"restore": {"volume_id": target}})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        "Invalid volume: volume size 1 is too small to restore backup of size 2."
    )


def test_restore_null_is_a_clean_400(api: Api) -> None:
    backup_id = api.backup(api.volume())
    r = api.post(f"/backups/{backup_id}/restore", json={"restore": None})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        "Invalid input for field/attribute restore. Value: None. None is not of type 'object'"
    )


def _count(api: Api) -> int:
    return len(api.get("/backups").json()["backups"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"name": "x", "bogus": 1},
            "Additional properties are not allowed ('bogus' was unexpected)",
        ),
        ({"name": 5}, "Invalid input for field/attribute name. Value: 5. 5 is not of type"),
        ({"incremental": "maybe"}, "Invalid input for field/attribute incremental. Value: maybe."),
        ({"force": 1}, "Invalid input for field/attribute force. Value: 1."),
        ({"container": "c" * 256}, "Invalid input for field/attribute container."),
        ({"description": "a\x00b"}, "Invalid input for field/attribute description."),
        ({"snapshot_id": "not-a-uuid"}, "'not-a-uuid' is not a 'uuid'"),
        ({"metadata": {"k": 1}}, "Invalid input for field/attribute k. Value: 1."),
    ],
)
def test_invalid_create_bodies_are_400_and_change_nothing(
    api: Api, spec: dict[str, object], message: str
) -> None:
    volume_id = api.volume()
    r = api.post("/backups", json={"backup": {"volume_id": volume_id, **spec}})
    assert r.status_code == 400
    assert message in r.json()["badRequest"]["message"]
    assert _count(api) == 0


def test_the_unknown_key_message_is_cinders_word_for_word(api: Api) -> None:
    volume_id = api.volume()
    r = api.post("/backups", json={"backup": {"volume_id": volume_id, "bogus": 1}})
    assert r.json()["badRequest"]["message"] == (
        f"Invalid input for field/attribute backup. Value: {{'volume_id': '{volume_id}', "
        "'bogus': 1}. Additional properties are not allowed ('bogus' was unexpected)"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'backup' is a required property"),
        ({"backup": {}}, "'volume_id' is a required property"),
        ({"backup": None}, "None is not of type 'object'"),
        ({"backup": {"volume_id": str(uuid.uuid4())}, "extra": 1}, "are not allowed"),
        ({"backup": {"volume_id": "nope"}}, "'nope' is not a 'uuid'"),
    ],
)
def test_malformed_envelopes_are_400(api: Api, body: dict[str, object], message: str) -> None:
    r = api.post("/backups", json=body)
    assert r.status_code == 400
    assert message in r.json()["badRequest"]["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b'{"backup": '])
def test_a_body_that_is_not_json_is_malformed(api: Api, raw: bytes) -> None:
    r = api.post("/backups", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"badRequest": {"code": 400, "message": "Malformed request body"}}


def test_metadata_needs_3_43(api: Api) -> None:
    volume_id = api.volume()
    body = {"backup": {"volume_id": volume_id, "metadata": {"k": "v"}}}
    r = api.post("/backups", json=body, headers=api.at("3.42"))
    assert r.status_code == 400
    assert "'metadata' was unexpected" in r.json()["badRequest"]["message"]
    assert api.post("/backups", json=body, headers=api.at("3.43")).status_code == 202


def test_availability_zone_needs_3_51(api: Api) -> None:
    volume_id = api.volume()
    body = {"backup": {"volume_id": volume_id, "availability_zone": "nova"}}
    r = api.post("/backups", json=body, headers=api.at("3.50"))
    assert r.status_code == 400
    assert "'availability_zone' was unexpected" in r.json()["badRequest"]["message"]
    assert api.post("/backups", json=body, headers=api.at("3.51")).status_code == 202


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"bogus": 1}, "'bogus' was unexpected"),
        ({"volume_id": "nope"}, "'nope' is not a 'uuid'"),
        ({"name": 7}, "7 is not of type"),
    ],
)
def test_invalid_restore_bodies_are_400_and_create_nothing(
    api: Api, spec: dict[str, object], message: str
) -> None:
    backup_id = api.backup(api.volume())
    volumes_before = len(api.get("/volumes").json()["volumes"])
    r = api.post(f"/backups/{backup_id}/restore", json={"restore": spec})
    assert r.status_code == 400
    assert message in r.json()["badRequest"]["message"]
    assert len(api.get("/volumes").json()["volumes"]) == volumes_before


# --- real work: the worker writes backups and restores volume files -----------------


def test_a_backup_becomes_available_with_its_stats(api: Api) -> None:
    volume_id = api.volume()
    api.fill(volume_id)
    backup_id = api.start_backup(volume_id)
    assert api.get(f"/backups/{backup_id}").json()["backup"]["status"] in ("creating", "available")
    backup = api.wait_backup(backup_id)
    assert backup["status"] == "available"
    assert backup["object_count"] >= 1
    assert backup["os-backup-stats:stored_size"] > 0
    assert backup["container"] == "volumebackups"
    assert backup["availability_zone"] == "nova"
    assert api.wait_volume(volume_id)["status"] == "available"


def test_a_backup_restores_the_same_bytes_onto_its_volume_and_a_new_one(api: Api) -> None:
    volume_id = api.volume()
    original = api.fill(volume_id)
    backup_id = api.backup(volume_id, name="full")
    api.scribble(volume_id)
    assert api.digest(volume_id) != original
    api.restore(backup_id, volume_id=volume_id)
    assert api.digest(volume_id) == original
    restored = api.restore(backup_id, name="copy")
    assert api.digest(restored["volume_id"]) == original
    volume = api.show_volume(restored["volume_id"])
    assert (volume["name"], volume["size"]) == ("copy", 1)
    assert volume["metadata"] == {"src_backup_id": backup_id}


def test_an_incremental_backup_restores_the_newer_bytes(api: Api) -> None:
    volume_id = api.volume()
    first = api.fill(volume_id)
    full = api.backup(volume_id)
    api.write(volume_id, b"changed" * 1000, offset=123 * 1024**2)
    second = api.digest(volume_id)
    incremental = api.backup(volume_id, incremental=True)
    shown = api.get(f"/backups/{incremental}").json()["backup"]
    assert shown["is_incremental"] is True
    assert api.get(f"/backups/{full}").json()["backup"]["has_dependent_backups"] is True
    assert api.digest(api.restore(incremental)["volume_id"]) == second
    assert api.digest(api.restore(full)["volume_id"]) == first


def test_deleting_the_incremental_frees_its_parent(api: Api) -> None:
    volume_id = api.volume()
    api.fill(volume_id)
    full = api.backup(volume_id)
    incremental = api.backup(volume_id, incremental=True)
    assert api.delete(f"/backups/{incremental}").status_code == 202
    assert api.wait_backup(incremental) == {}
    assert api.get(f"/backups/{full}").json()["backup"]["has_dependent_backups"] is False
    assert api.delete(f"/backups/{full}").status_code == 202
    assert api.wait_backup(full) == {}


# --- states reached by reset-state (admin), refused as Cinder refuses them ------------


@pytest.mark.parametrize("status", ["creating", "restoring", "deleting"])
def test_deleting_a_busy_backup_is_400(api: Api, status: str) -> None:
    backup_id = api.backup(api.volume())
    api.stack.set_backup_status(backup_id, status)
    r = api.delete(f"/backups/{backup_id}")
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        "Invalid backup: Backup status must be available or error"
    )
    assert api.get(f"/backups/{backup_id}").json()["backup"]["status"] == status


def test_a_backup_in_error_can_be_deleted(api: Api) -> None:
    backup_id = api.backup(api.volume())
    api.stack.set_backup_status(backup_id, "error")
    assert api.delete(f"/backups/{backup_id}").status_code == 202
    assert api.wait_backup(backup_id) == {}


@pytest.mark.parametrize("status", ["creating", "error", "deleting"])
def test_restoring_a_backup_that_is_not_available_is_400(api: Api, status: str) -> None:
    backup_id = api.backup(api.volume())
    api.stack.set_backup_status(backup_id, status)
    volumes_before = len(api.get("/volumes").json()["volumes"])
    r = api.post(f"/backups/{backup_id}/restore", json={"restore": {}})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == "Invalid backup: Backup status must be available"
    assert len(api.get("/volumes").json()["volumes"]) == volumes_before


def test_restoring_onto_a_busy_volume_is_400(api: Api) -> None:
    backup_id = api.backup(api.volume())
    target = api.volume()
    api.stack.set_volume_status(target, "backing-up")
    r = api.post(f"/backups/{backup_id}/restore", json={"restore": {"volume_id": target}})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        "Invalid volume: Volume to be restored to must be available"
    )
    assert api.get(f"/backups/{backup_id}").json()["backup"]["status"] == "available"


@pytest.mark.parametrize("status", ["error", "backing-up", "restoring-backup"])
def test_backing_up_a_volume_that_is_not_available_is_400(api: Api, status: str) -> None:
    volume_id = api.volume()
    api.stack.set_volume_status(volume_id, status)
    r = api.post("/backups", json={"backup": {"volume_id": volume_id}})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        "Invalid volume: Volume to be backed up must be available or in-use, "
        f'but the current status is "{status}".'
    )
    assert _count(api) == 0


def test_an_in_use_volume_needs_force_and_stays_in_use(api: Api) -> None:
    volume_id = api.volume()
    api.stack.set_volume_status(volume_id, "in-use")
    r = api.post("/backups", json={"backup": {"volume_id": volume_id}})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        "Invalid volume: Backing up an in-use volume must use the force flag."
    )
    api.backup(volume_id, force=True)
    assert api.wait_volume(volume_id)["status"] == "in-use"


def test_incremental_when_the_newest_backup_is_not_available_is_400(api: Api) -> None:
    volume_id = api.volume()
    backup_id = api.backup(volume_id)
    api.stack.set_backup_status(backup_id, "error")
    r = api.post("/backups", json={"backup": {"volume_id": volume_id, "incremental": True}})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        "Invalid backup: No backups available to do an incremental backup."
    )


@pytest.mark.parametrize(
    "container",
    ["volumebackups/backups", "a//b", "a\u0000b", "x" * 256, "/abs", ".hidden", "a/data", "a b"],
)
def test_a_container_name_the_store_cannot_hold_is_400(api: Api, container: str) -> None:
    volume_id = api.volume()
    r = api.post("/backups", json={"backup": {"volume_id": volume_id, "container": container}})
    assert r.status_code == 400, r.text
    assert "container" in r.json()["badRequest"]["message"]
    assert api.get("/backups").json()["backups"] == []
    assert api.show_volume(volume_id)["status"] == "available"


def test_a_nested_container_is_a_repository_of_its_own(api: Api) -> None:
    volume_id = api.volume()
    original = api.fill(volume_id)
    backup_id = api.backup(volume_id, container="team-a/nightly")
    assert api.get(f"/backups/{backup_id}").json()["backup"]["container"] == "team-a/nightly"
    assert api.digest(api.restore(backup_id)["volume_id"]) == original
