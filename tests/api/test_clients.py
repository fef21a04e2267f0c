"""The real OpenStack clients against the API (REAL-PARTS.md Part 3).

`cinder` and `openstack` run as subprocesses with their plain-endpoint
invocations; openstacksdk runs in process. Each test has its own project.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.integration

WAIT = 60  # seconds a client waits for a status

BIN = Path(sys.executable).parent
_CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env=_CLEAN_ENV, timeout=120)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _table_field(output: str, name: str) -> str:
    match = re.search(rf"^\|\s*{re.escape(name)}\s*\|\s*(.*?)\s*\|$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def test_cinder_cli_drives_volumes_and_backups(api: Api) -> None:
    def cinder(*args: str) -> str:
        return _run(
            str(BIN / "cinder"), "--os-auth-type", "noauth",
            "--os-endpoint", f"{api.root}/v3", "--os-project-id", api.project,
            "--os-user-id", "u1", *args,
        )  # fmt: skip

    volume_id = _table_field(cinder("create", "--name", "vol1", "1"), "id")
    assert _table_field(cinder("show", volume_id), "status") == "available"
    assert volume_id in cinder("list")
    original = api.fill(volume_id)
    created = cinder(
        "backup-create", "--name", "b1", "--container", "cont1", "--force",
        "--metadata", "k=v", volume_id,
    )  # fmt: skip
    backup_id = _table_field(created, "id")
    api.wait_backup(backup_id)
    listed = cinder("backup-list")
    assert backup_id in listed and "b1" in listed
    shown = cinder("backup-show", backup_id)
    assert _table_field(shown, "status") == "available"
    assert _table_field(shown, "container") == "cont1"
    assert _table_field(shown, "metadata") == "{'k': 'v'}"

    api.scribble(volume_id)
    restored = cinder("backup-restore", "--volume", volume_id, backup_id)
    assert _table_field(restored, "volume_id") == volume_id
    api.wait_backup(backup_id)
    assert api.wait_volume(volume_id)["status"] == "available"
    assert api.digest(volume_id) == original

    renamed = cinder("backup-restore", "--name", "fromcli", backup_id)
    assert _table_field(renamed, "volume_name") == "fromcli"
    new_id = _table_field(renamed, "volume_id")
    api.wait_backup(backup_id)
    assert _table_field(cinder("show", new_id), "status") in ("creating", "available")
    assert api.wait_volume(new_id)["status"] == "available"
    assert _table_field(cinder("show", new_id), "name") == "fromcli"
    assert api.digest(new_id) == original

    cinder("backup-delete", backup_id)
    assert api.wait_backup(backup_id) == {}
    assert backup_id not in cinder("backup-list")
    cinder("delete", volume_id, new_id)
    listed = cinder("list")
    assert volume_id not in listed and new_id not in listed


def test_cinder_cli_with_the_project_in_the_endpoint(api: Api) -> None:
    volume_id = api.volume(name="inurl")
    out = _run(
        str(BIN / "cinder"), "--os-auth-type", "noauth", "--os-endpoint", api.url,
        "--os-project-id", api.project, "--os-user-id", "u1", "show", volume_id,
    )  # fmt: skip
    assert _table_field(out, "name") == "inurl"


def test_cinder_cli_shows_cinders_not_found_message(api: Api) -> None:
    done = subprocess.run(
        [
            str(BIN / "cinder"), "--os-auth-type", "noauth", "--os-endpoint", f"{api.root}/v3",
            "--os-project-id", api.project, "--os-user-id", "u1", "backup-show",
            "00000000-0000-0000-0000-000000000001",
        ],
        capture_output=True, text=True, env=_CLEAN_ENV, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "No volumebackup with a name or ID" in done.stderr + done.stdout


def test_openstack_cli_drives_volumes_and_backups(api: Api) -> None:
    def osc(*args: str) -> Any:
        out = _run(
            str(BIN / "openstack"), "--os-auth-type", "none", "--os-endpoint", api.url, *args
        )
        return json.loads(out) if "-f" in args else out

    volume = osc("volume", "create", "--size", "1", "oscvol", "-f", "json")
    assert osc("volume", "show", volume["id"], "-f", "json")["name"] == "oscvol"
    assert [v["ID"] for v in osc("volume", "list", "-f", "json")] == [volume["id"]]
    original = api.fill(volume["id"])
    backup = osc(
        "volume", "backup", "create", "--name", "oscb", "--container", "c2", "--force",
        "--property", "k=v", volume["id"], "-f", "json",
    )  # fmt: skip
    api.wait_backup(backup["id"])
    shown = osc("volume", "backup", "show", backup["id"], "-f", "json")
    assert (shown["name"], shown["status"], shown["container"]) == ("oscb", "available", "c2")
    listed = osc("volume", "backup", "list", "-f", "json")
    assert [(b["ID"], b["Name"], b["Status"]) for b in listed] == [
        (backup["id"], "oscb", "available")
    ]

    api.scribble(volume["id"])
    osc("volume", "backup", "restore", backup["id"], volume["id"], "--force")
    api.wait_backup(backup["id"])
    assert api.wait_volume(volume["id"])["status"] == "available"
    assert api.digest(volume["id"]) == original

    osc("volume", "backup", "restore", backup["id"], "oscnew")
    api.wait_backup(backup["id"])
    volumes = {v["Name"]: v for v in osc("volume", "list", "-f", "json")}
    assert set(volumes) == {"oscvol", "oscnew"}
    new_id = volumes["oscnew"]["ID"]
    assert api.wait_volume(new_id)["status"] == "available"
    assert osc("volume", "show", new_id, "-f", "json")["status"] == "available"
    assert api.digest(new_id) == original

    osc("volume", "backup", "delete", backup["id"])
    assert api.wait_backup(backup["id"]) == {}
    assert osc("volume", "backup", "list", "-f", "json") == []
    osc("volume", "delete", volume["id"], new_id)
    assert api.wait_volume(volume["id"]) == api.wait_volume(new_id) == {}
    assert osc("volume", "list", "-f", "json") == []


@pytest.fixture
def sdk(api: Api) -> Iterator[Any]:
    conn = openstack.connect(auth_type="none", block_storage_endpoint_override=api.url)
    yield conn
    conn.close()


# openstacksdk warns about its own deprecated internals (InfluxDB, _compute_attributes).
@pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning")
@pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning")
def test_openstacksdk_drives_volumes_and_backups(api: Api, sdk: Any) -> None:
    bs = sdk.block_storage
    volume = bs.create_volume(size=1, name="sdkvol")
    volume = bs.wait_for_status(volume, "available", wait=WAIT, interval=0.1)
    assert bs.get_volume(volume.id).name == "sdkvol"
    original = api.fill(volume.id)
    backup = bs.create_backup(
        volume_id=volume.id, name="sdkb", is_incremental=False, force=True, container="c1"
    )
    backup = bs.wait_for_status(bs.get_backup(backup.id), "available", wait=WAIT, interval=0.1)
    assert (backup.name, backup.container, backup.volume_id) == ("sdkb", "c1", volume.id)
    assert backup.object_count >= 1
    assert [b.id for b in bs.backups()] == [backup.id]
    assert [b.id for b in bs.backups(details=False)] == [backup.id]
    assert bs.find_backup("sdkb").id == backup.id
    assert bs.find_backup("missing", ignore_missing=True) is None

    api.scribble(volume.id)
    restored = bs.restore_backup(backup.id, volume_id=volume.id)
    assert restored["volume_id"] == volume.id
    bs.wait_for_status(bs.get_backup(backup.id), "available", wait=WAIT, interval=0.1)
    bs.wait_for_status(bs.get_volume(volume.id), "available", wait=WAIT, interval=0.1)
    assert api.digest(volume.id) == original

    fresh = bs.restore_backup(backup.id, name="restored")
    bs.wait_for_status(bs.get_backup(backup.id), "available", wait=WAIT, interval=0.1)
    new = bs.wait_for_status(bs.get_volume(fresh["volume_id"]), "available", wait=WAIT)
    assert new.name == "restored"
    assert new.metadata == {"src_backup_id": backup.id}
    assert api.digest(new.id) == original

    bs.delete_backup(backup.id)
    bs.wait_for_delete(backup, interval=0.1, wait=WAIT)
    assert bs.find_backup(backup.id, ignore_missing=True) is None
    for volume_id in (volume.id, new.id):
        bs.delete_volume(volume_id)
        bs.wait_for_delete(bs.get_volume(volume_id), interval=0.1, wait=WAIT)
        assert bs.find_volume(volume_id, ignore_missing=True) is None
