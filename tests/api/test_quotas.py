"""Quotas and limits over HTTP (CINDER-CONTRACT §1.8): os-quota-sets,
os-quota-class-sets and limits in Tempest's schemas, usage counted from the
rows, and a backup or import over quota refused with 413 and Cinder's
message, changing nothing."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tempest.lib.api_schema.response.volume import limits as limits_schema
from tempest.lib.api_schema.response.volume import quota_classes as classes_schema
from tempest.lib.api_schema.response.volume import quotas as quotas_schema

from tests.api.conftest import Api
from tests.api.test_tempest_schemas import check

DEFAULTS = {
    "volumes": 10,
    "snapshots": 10,
    "gigabytes": 1000,
    "backups": 10,
    "backup_gigabytes": 1000,
    "groups": 10,
    "per_volume_gigabytes": -1,
}


def _base(quota_set: dict[str, Any]) -> dict[str, Any]:
    """The quota set without each volume type's keys (other tests make types)."""
    return {k: v for k, v in quota_set.items() if k in DEFAULTS or k == "id"}


def _quota_set(api: Api, **params: str) -> dict[str, Any]:
    r = api.get(f"/os-quota-sets/{api.project}", params=params)
    schema = quotas_schema.show_quota_set_usage if params else quotas_schema.show_quota_set
    check(schema, r)
    return r.json()["quota_set"]  # type: ignore[no-any-return]


def _set(api: Api, **limits: int) -> httpx.Response:
    return api.http.put(f"/os-quota-sets/{api.project}", json={"quota_set": limits})


def test_a_new_project_has_the_defaults_and_uses_nothing(api: Api) -> None:
    assert _base(_quota_set(api)) == {"id": api.project, **DEFAULTS}
    r = api.get(f"/os-quota-sets/{api.project}/defaults")
    check(quotas_schema.show_quota_set, r)
    assert _base(r.json()["quota_set"]) == {"id": api.project, **DEFAULTS}
    used = _quota_set(api, usage="True")
    assert used["backups"] == {"limit": 10, "in_use": 0, "reserved": 0}


def test_usage_counts_the_rows_backups_at_their_volumes_size(api: Api) -> None:
    volume_id = api.volume(size=2)
    api.backup(volume_id)
    api.backup(volume_id, incremental=True)
    used = _quota_set(api, usage="true")
    assert used["volumes"]["in_use"] == 1 and used["gigabytes"]["in_use"] == 2
    assert used["backups"]["in_use"] == 2
    assert used["backup_gigabytes"]["in_use"] == 4  # an incremental counts the whole volume
    r = api.get("/limits", headers={"X-Ashbox-Extras": "false"})
    check(limits_schema.show_limits, r)
    absolute = r.json()["limits"]["absolute"]
    assert (absolute["totalBackupsUsed"], absolute["totalBackupGigabytesUsed"]) == (2, 4)
    assert (absolute["maxTotalBackups"], absolute["totalVolumesUsed"]) == (10, 1)
    # ashbox's extra: what the two backups hold in the store, within the project.
    stored = [
        b["os-backup-stats:stored_size"] for b in api.get("/backups/detail").json()["backups"]
    ]
    extras = api.get("/limits").json()["limits"]["absolute"]
    assert extras["os-backup-stats:totalBackupStoredBytesUsed"] == sum(stored)


def test_an_admin_sets_limits_and_deleting_them_gives_the_defaults_back(api: Api) -> None:
    r = _set(api, backups=11, backup_gigabytes=1009, volumes=-1)
    check(quotas_schema.update_quota_set, r)
    assert {k: r.json()["quota_set"][k] for k in ("backups", "backup_gigabytes", "volumes")} == {
        "backups": 11,
        "backup_gigabytes": 1009,
        "volumes": -1,
    }
    assert _quota_set(api)["backups"] == 11
    r = api.delete(f"/os-quota-sets/{api.project}")
    check(quotas_schema.delete_quota_set, r)
    assert _base(_quota_set(api)) == {"id": api.project, **DEFAULTS}


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"backups": 1, "volume_type_x": 3}, "Bad key(s) in quota set: volume_type_x"),
        ({"backups": -2}, "Invalid input received: backups must be >= -1"),
        ({"backups": "many"}, "Invalid input received: backups must be an integer."),
        ({"backups": True}, "Invalid input received: backups must be an integer."),
        ({"backups": 2**31}, "Invalid input received: backups must be <= 2147483647"),
    ],
)
def test_a_bad_quota_set_is_refused_and_changes_nothing(
    api: Api, limits: dict[str, Any], message: str
) -> None:
    r = api.http.put(f"/os-quota-sets/{api.project}", json={"quota_set": limits})
    assert r.status_code == 400, r.text
    assert r.json()["badRequest"]["message"] == message
    assert _quota_set(api)["backups"] == 10


def test_a_limit_below_the_usage_is_refused(api: Api) -> None:
    api.backup(api.volume())
    r = _set(api, backups=0)
    assert r.status_code == 400, r.text
    assert r.json()["badRequest"]["message"] == (
        "Invalid input received: Quota backups limit must be equal or greater than existing "
        "resources. Current usage is 1 and the requested limit is 0."
    )
    assert _set(api, backups=1).status_code == 200


def test_a_backup_over_the_count_is_413_and_changes_nothing(api: Api) -> None:
    volume_id = api.volume()
    api.backup(volume_id)
    assert _set(api, backups=1).status_code == 200
    r = api.post("/backups", json={"backup": {"volume_id": volume_id}})
    assert r.status_code == 413, r.text
    assert r.headers["Retry-After"] == "0"
    assert r.json() == {
        "overLimit": {
            "code": 413,
            "message": "BackupLimitExceeded: Maximum number of backups allowed (1) exceeded",
            "retryAfter": "0",
        }
    }
    assert api.show_volume(volume_id)["status"] == "available"
    assert len(api.get("/backups").json()["backups"]) == 1


def test_a_backup_over_the_gigabytes_is_413_with_cinders_figures(api: Api) -> None:
    volume_id = api.volume(size=3)
    api.backup(volume_id)
    assert _set(api, backup_gigabytes=5).status_code == 200
    r = api.post("/backups", json={"backup": {"volume_id": volume_id}})
    assert r.status_code == 413, r.text
    assert r.json()["overLimit"]["message"] == (
        "VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup "
        "gigabytes quota. Requested 3G, quota is 5G and 3G has been consumed."
    )
    assert _set(api, backup_gigabytes=-1).status_code == 200
    api.backup(volume_id)  # unlimited


def test_an_import_over_quota_is_413(api: Api) -> None:
    backup_id = api.backup(api.volume())
    r = api.get(f"/backups/{backup_id}/export_record")
    record = r.json()["backup-record"]
    other = api.other_project()
    try:
        assert (
            other.http.put(
                f"/os-quota-sets/{other.project}", json={"quota_set": {"backups": 0}}
            ).status_code
            == 200
        )
        fields = json.loads(base64.b64decode(record["backup_url"]))
        fields["id"] = "d0e0a6a8-1b5c-4a4b-9a4e-3b1f3c9d6e71"
        url = base64.b64encode(json.dumps(fields).encode()).decode()
        body = {"backup-record": {"backup_service": record["backup_service"], "backup_url": url}}
        r = other.post("/backups/import_record", json=body)
        assert r.status_code == 413, r.text
        assert "Maximum number of backups allowed (0) exceeded" in r.text
        assert other.get("/backups").json()["backups"] == []
    finally:
        other.http.close()


@pytest.fixture
def default_class_restored(api: Api) -> Iterator[dict[str, Any]]:
    """The stack is shared: the default class's limits are set back afterwards."""
    r = api.get("/os-quota-class-sets/default")
    check(classes_schema.show_quota_classes, r)
    saved = {k: v for k, v in r.json()["quota_class_set"].items() if k != "id"}
    yield saved
    r = api.http.put("/os-quota-class-sets/default", json={"quota_class_set": saved})
    assert r.status_code == 200, r.text


def test_the_default_class_gives_every_project_without_limits_its_defaults(
    api: Api, default_class_restored: dict[str, Any]
) -> None:
    assert _base(default_class_restored) == DEFAULTS
    r = api.http.put("/os-quota-class-sets/default", json={"quota_class_set": {"backups": 7}})
    check(classes_schema.update_quota_classes, r)
    assert r.json()["quota_class_set"]["backups"] == 7
    other = api.other_project()
    try:
        assert _quota_set(other)["backups"] == 7
        assert (
            other.get(f"/os-quota-sets/{other.project}/defaults").json()["quota_set"]["backups"]
            == 7
        )
    finally:
        other.http.close()


def test_volumes_and_snapshots_over_quota_are_413_with_cinders_messages(api: Api) -> None:
    volume_id = api.volume()
    assert _set(api, volumes=1, gigabytes=-1).status_code == 200
    r = api.post("/volumes", json={"volume": {"size": 1}})
    assert (r.status_code, r.json()["overLimit"]["message"]) == (
        413,
        "VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded for quota 'volumes'.",
    )
    assert _set(api, volumes=-1, gigabytes=2, per_volume_gigabytes=5).status_code == 200
    r = api.post("/volumes", json={"volume": {"size": 2}})
    assert (r.status_code, r.json()["overLimit"]["message"]) == (
        413,
        "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
        "gigabytes quota. Requested 2G, quota is 2G and 1G has been consumed.",
    )
    r = api.post("/volumes", json={"volume": {"size": 6}})
    assert "Requested volume size 6G is larger than maximum allowed limit 5G." in r.text
    r = api.post("/snapshots", json={"snapshot": {"volume_id": volume_id}})
    assert r.status_code == 202, r.text  # 1G of volume + 1G of snapshot: at the limit
    snapshot_id = r.json()["snapshot"]["id"]
    assert _set(api, gigabytes=-1, snapshots=1).status_code == 200
    r = api.post("/snapshots", json={"snapshot": {"volume_id": volume_id}})
    assert (r.status_code, r.json()["overLimit"]["message"]) == (
        413,
        "SnapshotLimitExceeded: Maximum number of snapshots allowed (1) exceeded",
    )
    used = _quota_set(api, usage="1")
    assert (used["volumes"]["in_use"], used["snapshots"]["in_use"]) == (1, 1)
    assert used["gigabytes"]["in_use"] == 2
    assert api.get(f"/snapshots/{snapshot_id}").status_code == 200


def test_a_restore_to_a_new_volume_over_quota_is_413_and_the_backup_stays(api: Api) -> None:
    backup_id = api.backup(api.volume())
    assert _set(api, volumes=1).status_code == 200
    r = api.post(f"/backups/{backup_id}/restore", json={"restore": {}})
    assert r.status_code == 413, r.text
    assert "Maximum number of volumes allowed (1) exceeded" in r.text
    assert api.wait_backup(backup_id)["status"] == "available"
    assert len(api.get("/volumes").json()["volumes"]) == 1


def test_limits_for_a_name_too_long_to_keep_are_400(api: Api) -> None:
    long = "p" * 256
    r = api.http.put(f"/os-quota-sets/{long}", json={"quota_set": {"backups": 3}})
    assert r.status_code == 400, r.text
    r = api.http.put(f"/os-quota-class-sets/{long}", json={"quota_class_set": {"backups": 3}})
    assert r.status_code == 400, r.text
    assert api.get(f"/os-quota-sets/{long}").json()["quota_set"]["backups"] == 10


def test_each_volume_type_has_quotas_of_its_own(api: Api) -> None:
    """Cinder's per-type quotas: `volumes_<type>`, `gigabytes_<type>` and
    `snapshots_<type>`, unlimited unless set, checked beside the totals."""
    name = f"q-{uuid.uuid4().hex[:8]}"
    r = api.post("/types", json={"volume_type": {"name": name}})
    assert r.status_code == 200, r.text
    type_id = r.json()["volume_type"]["id"]
    keys = (f"volumes_{name}", f"gigabytes_{name}", f"snapshots_{name}")
    assert {k: _quota_set(api)[k] for k in keys} == dict.fromkeys(keys, -1)
    assert _set(api, **{f"volumes_{name}": 1}).status_code == 200
    api.volume(volume_type=name)
    api.volume()  # another type: not counted in this one's
    r = api.post("/volumes", json={"volume": {"size": 1, "volume_type": name}})
    assert r.status_code == 413, r.text
    assert r.json()["overLimit"]["message"] == (
        f"VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded for quota "
        f"'volumes_{name}'."
    )
    used = _quota_set(api, usage="True")
    assert used[f"volumes_{name}"] == {"limit": 1, "in_use": 1, "reserved": 0}
    assert used[f"gigabytes_{name}"]["in_use"] == 1
    # A renamed type keeps its limits.
    renamed = f"{name}-new"
    r = api.http.put(f"/types/{type_id}", json={"volume_type": {"name": renamed}})
    assert r.status_code == 200, r.text
    assert _quota_set(api)[f"volumes_{renamed}"] == 1
    assert f"volumes_{name}" not in _quota_set(api)
    r = _set(api, **{"volumes_no-such-type": 1})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == "Bad key(s) in quota set: volumes_no-such-type"
