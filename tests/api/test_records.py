"""Export and import of backup records (CINDER-CONTRACT §3.8, §1.6)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api, running_stack
from tests.conftest import _fresh_postgres_database


def _export(api: Api, backup_id: str) -> dict[str, str]:
    r = api.get(f"/backups/{backup_id}/export_record")
    assert r.status_code == 200, r.text
    record: dict[str, str] = r.json()["backup-record"]
    assert set(record) == {"backup_service", "backup_url"}
    assert record["backup_service"].startswith("cinder.backup.drivers")
    return record


def _with(record: dict[str, str], **changes: Any) -> dict[str, str]:
    fields = json.loads(base64.b64decode(record["backup_url"]))
    fields.update(changes)
    url = base64.b64encode(json.dumps(fields).encode()).decode()
    return {**record, "backup_url": url}


def _import(api: Api, record: dict[str, str]) -> Any:
    return api.post("/backups/import_record", json={"backup-record": record})


def _packs(api: Api) -> list[Path]:
    store = api.stack.settings.resolved_store.removeprefix("file://")
    return [p for p in Path(store).rglob("data/*/*") if p.is_file()]


def test_a_record_imported_under_a_new_id_is_a_second_backup_of_the_same_data(
    api: Api,
) -> None:
    """Tempest's export/import test: the same record with another id."""
    volume_id = api.volume()
    original = api.fill(volume_id)
    backup_id = api.backup(volume_id, name="b1", metadata={"k": "v"})
    packs = set(_packs(api))
    new_id = str(uuid.uuid4())
    r = _import(api, _with(_export(api, backup_id), id=new_id))
    assert r.status_code == 201, r.text
    assert set(r.json()["backup"]) == {"id", "name", "links"}
    assert r.json()["backup"]["id"] == new_id
    imported = api.wait_backup(new_id)
    assert imported["status"] == "available"
    assert (imported["name"], imported["metadata"]) == ("b1", {"k": "v"})
    assert new_id in [b["id"] for b in api.get("/backups").json()["backups"]]
    assert set(_packs(api)) == packs  # the data is shared, not copied
    api.post(f"/backups/{backup_id}/action", json={"os-force_delete": {}})
    assert api.wait_backup(backup_id) == {}
    assert api.digest(api.restore(new_id)["volume_id"]) == original
    assert api.delete(f"/backups/{new_id}").status_code == 202
    assert api.wait_backup(new_id) == {}


def test_an_incremental_imported_under_a_new_id_counts_as_its_parents_dependent(
    api: Api,
) -> None:
    volume_id = api.volume()
    api.fill(volume_id)
    parent_id = api.backup(volume_id)
    child_id = api.backup(volume_id, incremental=True)
    new_id = str(uuid.uuid4())
    r = _import(api, _with(_export(api, child_id), id=new_id))
    assert r.status_code == 201, r.text
    imported = api.wait_backup(new_id)
    assert (imported["status"], imported["is_incremental"]) == ("available", True)
    assert api.wait_backup(parent_id)["has_dependent_backups"]
    for backup_id in (new_id, child_id, parent_id):
        api.post(f"/backups/{backup_id}/action", json={"os-force_delete": {}})
        api.wait_backup(backup_id)


def test_a_deleted_backup_is_revived_by_its_own_record(api: Api) -> None:
    volume_id = api.volume()
    original = api.fill(volume_id)
    backup_id = api.backup(volume_id)
    record = _export(api, backup_id)
    new_id = str(uuid.uuid4())
    assert _import(api, _with(record, id=new_id)).status_code == 201
    assert api.wait_backup(new_id)["status"] == "available"
    assert api.delete(f"/backups/{new_id}").status_code == 202
    assert api.wait_backup(new_id) == {}
    assert (
        _import(api, _with(record, id=new_id, driver_info={"backup_id": backup_id})).status_code
        == 201
    )
    assert api.wait_backup(new_id)["status"] == "available"
    assert api.digest(api.restore(new_id)["volume_id"]) == original


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("existing", "Invalid backup: Backup already exists in database."),
        ("garbage", "Invalid input received: Can't decode backup record."),
        ("not json", "Invalid input received: Can't parse backup record."),
        ("no id", "Invalid input received: Provided backup record is missing an id"),
        ("no size", "Invalid input received: Provided backup record is missing size attribute"),
        ("no manifest", "cannot be read from container"),
        ("bad id", "Invalid input received: Can't parse backup record."),
        ("other driver", "is not cinder.backup.drivers.ashbox"),
    ],
)
def test_a_bad_import_is_400_and_changes_nothing(api: Api, change: str, message: str) -> None:
    backup_id = api.backup(api.volume())
    record = _export(api, backup_id)
    fields = json.loads(base64.b64decode(record["backup_url"]))
    if change == "garbage":
        record = {**record, "backup_url": "%%%not base64%%%"}
    elif change == "not json":
        record = {**record, "backup_url": base64.b64encode(b"{nope").decode()}
    elif change == "no id":
        del fields["id"]
        record = _with(record) | {
            "backup_url": base64.b64encode(json.dumps(fields).encode()).decode()
        }
    elif change == "no size":
        del fields["size"]
        record = _with(record) | {
            "backup_url": base64.b64encode(json.dumps(fields).encode()).decode()
        }
    elif change == "no manifest":
        record = _with(record, id=str(uuid.uuid4()), driver_info={"backup_id": str(uuid.uuid4())})
    elif change == "bad id":
        record = _with(record, id="../../etc")
    elif change == "other driver":
        record = {**record, "backup_service": "cinder.backup.drivers.swift.SwiftBackupDriver"}
    before = api.get("/backups/detail").json()["backups"]
    r = _import(api, record)
    assert r.status_code == 400, r.text
    assert message in r.json()["badRequest"]["message"]
    assert api.get("/backups/detail").json()["backups"] == before


def test_only_an_available_backup_is_exported(api: Api) -> None:
    backup_id = api.backup(api.volume())
    api.stack.set_backup_status(backup_id, "error")
    r = api.get(f"/backups/{backup_id}/export_record")
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        "Invalid backup: Backup status must be available and not error."
    )


def test_a_second_deployment_on_the_same_store_imports_and_restores(
    api: Api, tmp_path: Path
) -> None:
    volume_id = api.volume()
    original = api.fill(volume_id)
    backup_id = api.backup(volume_id)
    record = _export(api, backup_id)
    if api.stack.backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'second.db'}"
    else:
        server = api.stack.db.url.rsplit("/", 1)[0]
        url = _fresh_postgres_database(server)
    with running_stack(
        api.stack.backend, tmp_path / "second", url, store=api.stack.settings.resolved_store
    ) as second:
        other = Api(second, api.project)
        try:
            r = _import(other, record)
            assert r.status_code == 201, r.text
            assert other.wait_backup(backup_id)["status"] == "available"
            restored = other.restore(backup_id)["volume_id"]
            assert other.digest(restored) == original
        finally:
            other.http.close()
