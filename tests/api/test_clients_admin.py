"""The admin and snapshot operations of issue 10 from the real `cinder` and
`openstack` commands (REAL-PARTS.md Part 3): reset-state, force delete,
update, export and import, snapshots, and backups of snapshots."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.test_clients import BIN, _run, _table_field

pytestmark = pytest.mark.integration


def _cinder(api: Api, *args: str) -> str:
    return _run(
        str(BIN / "cinder"), "--os-auth-type", "noauth",
        "--os-endpoint", f"{api.root}/v3", "--os-project-id", api.project,
        "--os-user-id", "u1", *args,
    )  # fmt: skip


def _osc(api: Api, *args: str) -> Any:
    out = _run(str(BIN / "openstack"), "--os-auth-type", "none", "--os-endpoint", api.url, *args)
    return json.loads(out) if "-f" in args else out


def _snapshot_status(api: Api, snapshot_id: str) -> str:
    for _ in range(600):
        r = api.get(f"/snapshots/{snapshot_id}")
        if r.status_code == 404:
            return "gone"
        status = str(r.json()["snapshot"]["status"])
        if status not in ("creating", "deleting"):
            return status
        api.get("/snapshots")
    raise TimeoutError(snapshot_id)


def test_cinder_cli_snapshots_updates_resets_exports_and_imports(api: Api) -> None:
    volume_id = _table_field(_cinder(api, "create", "--name", "v", "1"), "id")
    assert api.wait_volume(volume_id)["status"] == "available"
    original = api.fill(volume_id)

    snapshot_id = _table_field(_cinder(api, "snapshot-create", "--name", "s1", volume_id), "id")
    assert _snapshot_status(api, snapshot_id) == "available"
    assert snapshot_id in _cinder(api, "snapshot-list")
    created = _cinder(api, "backup-create", "--snapshot-id", snapshot_id, "--name", "b1", volume_id)
    backup_id = _table_field(created, "id")
    assert api.wait_backup(backup_id)["status"] == "available"
    assert _table_field(_cinder(api, "backup-show", backup_id), "snapshot_id") == snapshot_id

    _cinder(api, "backup-update", "--name", "b2", "--description", "d", backup_id)
    shown = _cinder(api, "backup-show", backup_id)
    assert (_table_field(shown, "name"), _table_field(shown, "description")) == ("b2", "d")

    _cinder(api, "backup-reset-state", "--state", "error", backup_id)
    assert api.wait_backup(backup_id)["status"] == "error"
    _cinder(api, "backup-reset-state", backup_id)  # to available, cinderclient's default
    assert api.wait_backup(backup_id)["status"] == "available"

    exported = _cinder(api, "backup-export", backup_id)
    service = _table_field(exported, "backup_service")
    url = _table_field(exported, "backup_url")
    assert service.startswith("cinder.backup.drivers")
    fields = json.loads(base64.b64decode(url))
    fields["id"] = str(uuid.uuid4())
    new_url = base64.b64encode(json.dumps(fields).encode()).decode()
    imported = _table_field(_cinder(api, "backup-import", service, new_url), "id")
    assert imported == fields["id"]
    assert api.wait_backup(imported)["status"] == "available"
    _cinder(api, "backup-delete", "--force", backup_id)
    assert api.wait_backup(backup_id) == {}
    assert api.digest(api.restore(imported)["volume_id"]) == original

    _cinder(api, "snapshot-reset-state", "--state", "error", snapshot_id)
    assert _snapshot_status(api, snapshot_id) == "error"
    _cinder(api, "snapshot-delete", snapshot_id)
    assert _snapshot_status(api, snapshot_id) == "gone"
    _cinder(api, "reset-state", "--state", "error", volume_id)
    assert api.show_volume(volume_id)["status"] == "error"
    _cinder(api, "reset-state", "--state", "available", volume_id)
    assert api.show_volume(volume_id)["status"] == "available"


def test_openstack_cli_sets_backup_and_volume_states_and_snapshots(api: Api) -> None:
    volume = _osc(api, "volume", "create", "--size", "1", "v", "-f", "json")
    assert api.wait_volume(volume["id"])["status"] == "available"
    snapshot = _osc(api, "volume", "snapshot", "create", "--volume", volume["id"], "s",
                    "-f", "json")  # fmt: skip
    assert _snapshot_status(api, snapshot["id"]) == "available"
    backup = _osc(api, "volume", "backup", "create", "--name", "b", volume["id"], "-f", "json")
    assert api.wait_backup(backup["id"])["status"] == "available"
    _osc(api, "volume", "backup", "set", "--state", "error", backup["id"])
    assert api.wait_backup(backup["id"])["status"] == "error"
    _osc(api, "volume", "backup", "set", "--name", "renamed", backup["id"])
    assert api.get(f"/backups/{backup['id']}").json()["backup"]["name"] == "renamed"
    _osc(api, "volume", "set", "--state", "error", volume["id"])
    assert api.show_volume(volume["id"])["status"] == "error"
    _osc(api, "volume", "snapshot", "delete", snapshot["id"])
    assert _snapshot_status(api, snapshot["id"]) == "gone"


def test_both_clients_list_disable_and_enable_the_backup_service(api: Api) -> None:
    host = api.stack.settings.resolved_worker_name
    try:
        (listed,) = _osc(api, "volume", "service", "list", "-f", "json")
        assert (listed["Binary"], listed["Host"], listed["Status"], listed["State"]) == (
            "cinder-backup", host, "enabled", "up",
        )  # fmt: skip
        _osc(
            api, "volume", "service", "set", "--disable", "--disable-reason", "drain",
            host, "cinder-backup",
        )  # fmt: skip
        (listed,) = _osc(api, "volume", "service", "list", "--long", "-f", "json")
        assert (listed["Status"], listed["Disabled Reason"]) == ("disabled", "drain")
        _cinder(api, "service-enable", host, "cinder-backup")
        assert "enabled" in _cinder(api, "service-list", "--binary", "cinder-backup")
    finally:
        api.http.put("/os-services/enable", json={"host": host, "binary": "cinder-backup"})


def test_both_clients_make_encrypted_types_and_typed_volumes(api: Api) -> None:
    """`openstack volume type` and `cinder type-*` drive docs/volume-types.md."""
    name = f"luks-{uuid.uuid4().hex[:8]}"
    made = _osc(
        api, "volume", "type", "create", "--property", "vendor:tier=gold",
        "--encryption-provider", "luks", "--encryption-cipher", "aes-xts-plain64",
        "--encryption-key-size", "256", "--encryption-control-location", "front-end",
        name, "-f", "json",
    )  # fmt: skip
    assert made["name"] == name
    listed = _osc(api, "volume", "type", "list", "--long", "-f", "json")
    assert name in [t["Name"] for t in listed]
    shown = _osc(api, "volume", "type", "show", name, "--encryption-type", "-f", "json")
    assert shown["encryption"]["provider"] == "luks"
    volume = _osc(api, "volume", "create", "--size", "1", "--type", name, "v", "-f", "json")
    assert api.wait_volume(volume["id"])["status"] == "available"
    assert api.show_volume(volume["id"])["encrypted"] is True
    assert name in _cinder(api, "type-list")
    assert "vendor:tier" in _cinder(api, "extra-specs-list")
    _osc(api, "volume", "delete", volume["id"])
    assert api.wait_volume(volume["id"]) == {}
    _osc(api, "volume", "type", "delete", name)
    assert name not in _cinder(api, "type-list")
