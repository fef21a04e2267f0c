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
    "os-backup-stats:stored_size",
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


def test_over_quota_is_413_with_retry_after(api: Api, service: object) -> None:
    from tests.api.fake_service import FakeService

    if not isinstance(service, FakeService):
        pytest.skip("the quota limit is set on the fake")
    volume_id = api.volume()
    limit = service.max_backups
    service.max_backups = 1
    try:
        api.backup(volume_id)
        r = api.post("/backups", json={"backup": {"volume_id": volume_id}})
    finally:
        service.max_backups = limit
    assert r.status_code == 413
    assert r.headers["Retry-After"] == "0"
    assert r.json() == {
        "overLimit": {
            "code": 413,
            "message": "BackupLimitExceeded: Maximum number of backups allowed (1) exceeded",
            "retryAfter": "0",
        }
    }
