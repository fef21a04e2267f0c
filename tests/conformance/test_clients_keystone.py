"""The OpenStack clients and the `ashbox` command reach ashbox through a real
Keystone's catalog, and each project sees only its own resources.

issue 11, Acceptance: the clients (`openstack`, `cinder`, openstacksdk) log in
with an openrc's OS_* variables, never an endpoint override, for the flows of
tests/api/test_clients.py and test_clients_admin.py; cross-project access by
id is 404, an admin action by a non-admin 403 with Cinder's message. Results:
docs/conformance.md, "The clients through Keystone".
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest

from tests.api.conftest import content_digest
from tests.api.test_clients import _table_field
from tests.conformance.conftest import CatalogClient, Tenant, os_environ
from tests.keystone_server import REGION, Credentials, Keystone

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
CHUNK = 64 * 1024


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


class Command:
    """`openstack` or `cinder` as a user with an openrc: OS_* variables only, no
    endpoint and no auth type; its parsed JSON when called with `-f json`."""

    def __init__(self, program: str, keystone: Keystone, credentials: Credentials) -> None:
        self.program = str(BIN / program)
        self.env = os_environ(keystone, credentials)

    def __call__(self, *args: str) -> Any:
        out = _run(self.env, self.program, *args)
        return json.loads(out) if "-f" in args else out


class Disk:
    """Volume files, found by an admin's `os-vol-ashbox-attr:path`, written as a VM would."""

    def __init__(self, admin: CatalogClient) -> None:
        self.admin = admin

    def path(self, volume_id: str) -> Path:
        volume = self.admin.call("GET", f"/volumes/{volume_id}")["volume"]
        return Path(volume["os-vol-ashbox-attr:path"])

    def fill(self, volume_id: str) -> str:
        """Random data at the start and deep in the volume; its digest."""
        with self.path(volume_id).open("r+b") as f:
            for offset, size in ((0, 3 * CHUNK + 100), (700 * 1024**2, CHUNK)):
                f.seek(offset)
                f.write(os.urandom(size))
        return self.digest(volume_id)

    def scribble(self, volume_id: str) -> None:
        with self.path(volume_id).open("r+b") as f:
            for offset in (0, 300 * 1024**2):
                f.seek(offset)
                f.write(os.urandom(CHUNK))

    def digest(self, volume_id: str) -> str:
        return content_digest(self.path(volume_id))


@pytest.fixture
def tenant(keystone_tenant: Callable[[str], Tenant]) -> Tenant:
    return keystone_tenant("clients")


@pytest.fixture
def member(keystone: Keystone, tenant: Tenant) -> Iterator[CatalogClient]:
    client = CatalogClient(keystone, tenant.member)
    yield client
    client.close()


@pytest.fixture
def admin(keystone: Keystone, keystone_admin: Credentials) -> Iterator[CatalogClient]:
    client = CatalogClient(keystone, keystone_admin, extras=True)
    yield client
    client.close()


@pytest.fixture
def disk(admin: CatalogClient) -> Disk:
    return Disk(admin)


# --- 1. the clients through the catalog ----------------------------------------------


def test_openstack_cli_drives_every_backup_flow_through_the_catalog(
    keystone: Keystone,
    keystone_admin: Credentials,
    tenant: Tenant,
    member: CatalogClient,
    admin: CatalogClient,
    disk: Disk,
) -> None:
    osc = Command("openstack", keystone, tenant.member)
    osc_admin = Command("openstack", keystone, keystone_admin)

    volume = osc("volume", "create", "--size", "1", "oscvol", "-f", "json")
    assert member.wait("volumes", volume["id"])["status"] == "available"
    assert osc("volume", "show", volume["id"], "-f", "json")["status"] == "available"
    original = disk.fill(volume["id"])

    full = osc("volume", "backup", "create", "--name", "full", "--force", volume["id"],
               "-f", "json")  # fmt: skip
    assert member.wait("backups", full["id"])["status"] == "available"
    incremental = osc("volume", "backup", "create", "--name", "incr", "--incremental",
                      "--force", volume["id"], "-f", "json")  # fmt: skip
    assert member.wait("backups", incremental["id"])["status"] == "available"
    shown = osc("volume", "backup", "show", incremental["id"], "-f", "json")
    assert (shown["name"], shown["status"], shown["is_incremental"]) == ("incr", "available", True)
    listed = osc("volume", "backup", "list", "-f", "json")
    assert sorted((b["ID"], b["Name"]) for b in listed) == sorted(
        [(full["id"], "full"), (incremental["id"], "incr")]
    )

    disk.scribble(volume["id"])
    restore = osc("volume", "backup", "restore", incremental["id"], volume["id"], "--force",
                  "-f", "json")  # fmt: skip
    assert restore["volume_id"] == volume["id"]
    assert member.wait("backups", incremental["id"])["status"] == "available"
    assert member.wait("volumes", volume["id"])["status"] == "available"
    assert disk.digest(volume["id"]) == original
    new_id = osc("volume", "backup", "restore", full["id"], "oscnew", "-f", "json")["volume_id"]
    assert member.wait("backups", full["id"])["status"] == "available"
    assert member.wait("volumes", new_id)["status"] == "available"
    listed = osc("volume", "list", "-f", "json")
    assert sorted((v["ID"], v["Name"]) for v in listed) == sorted(
        [(volume["id"], "oscvol"), (new_id, "oscnew")]
    )
    assert disk.digest(new_id) == original

    osc("volume", "backup", "set", "--name", "renamed", full["id"])  # 3.9
    assert member.call("GET", f"/backups/{full['id']}")["backup"]["name"] == "renamed"

    snapshot = osc("volume", "snapshot", "create", "--volume", volume["id"], "osnap",
                   "-f", "json")  # fmt: skip
    assert member.wait("snapshots", snapshot["id"])["status"] == "available"
    of_snapshot = osc("volume", "backup", "create", "--snapshot", snapshot["id"], "--name",
                      "fromsnap", volume["id"], "-f", "json")  # fmt: skip
    assert member.wait("backups", of_snapshot["id"])["status"] == "available"
    shown = member.call("GET", f"/backups/{of_snapshot['id']}")["backup"]
    assert shown["snapshot_id"] == snapshot["id"]

    # Admin actions, by an admin of another project through its own catalog.
    exported = osc_admin("volume", "backup", "record", "export", full["id"], "-f", "json")
    service, url = _with_new_id(exported["backup_service"], exported["backup_url"])
    # `openstack volume backup record import` cannot work: openstacksdk 4.22's
    # Backup.import_record POSTs to /backups/export_record (405) with the path as
    # its backup_url. cinder's backup-import does what it should.
    imported = _table_field(
        Command("cinder", keystone, keystone_admin)("backup-import", service, url), "id"
    )
    shown = admin.wait("backups", imported)
    assert (shown["status"], shown["name"]) == ("available", "renamed")
    osc_admin("volume", "backup", "set", "--state", "error", of_snapshot["id"])
    assert member.wait("backups", of_snapshot["id"])["status"] == "error"
    osc_admin("volume", "backup", "set", "--state", "available", of_snapshot["id"])
    assert member.wait("backups", of_snapshot["id"])["status"] == "available"

    osc("volume", "backup", "delete", of_snapshot["id"], incremental["id"])
    osc("volume", "backup", "delete", full["id"])
    for backup_id in (of_snapshot["id"], incremental["id"], full["id"]):
        assert member.wait("backups", backup_id) == {}
    assert osc("volume", "backup", "list", "-f", "json") == []
    osc("volume", "snapshot", "delete", snapshot["id"])
    assert member.wait("snapshots", snapshot["id"]) == {}
    osc("volume", "delete", volume["id"], new_id)
    assert member.wait("volumes", volume["id"]) == member.wait("volumes", new_id) == {}
    assert osc("volume", "list", "-f", "json") == []
    osc_admin("volume", "backup", "delete", imported)
    assert admin.wait("backups", imported) == {}


def _with_new_id(service: str, url: str) -> tuple[str, str]:
    """An exported backup record with another backup id, as Tempest imports it."""
    record = json.loads(base64.b64decode(url))
    record["id"] = str(uuid.uuid4())
    return service, base64.b64encode(json.dumps(record).encode()).decode()


def test_cinder_cli_backs_up_restores_resets_exports_and_imports_through_the_catalog(
    keystone: Keystone,
    keystone_admin: Credentials,
    tenant: Tenant,
    member: CatalogClient,
    admin: CatalogClient,
    disk: Disk,
) -> None:
    cinder = Command("cinder", keystone, tenant.member)
    cinder_admin = Command("cinder", keystone, keystone_admin)
    volume_id = member.volume("cindervol")
    original = disk.fill(volume_id)

    backup_id = _table_field(cinder("backup-create", "--name", "cb", volume_id), "id")
    assert member.wait("backups", backup_id)["status"] == "available"
    listed = cinder("backup-list")
    assert backup_id in listed and "cb" in listed
    disk.scribble(volume_id)
    restored = cinder("backup-restore", "--volume", volume_id, backup_id)
    assert _table_field(restored, "volume_id") == volume_id
    assert member.wait("backups", backup_id)["status"] == "available"
    assert member.wait("volumes", volume_id)["status"] == "available"
    assert disk.digest(volume_id) == original

    cinder_admin("backup-reset-state", "--state", "error", backup_id)
    assert member.wait("backups", backup_id)["status"] == "error"
    cinder_admin("backup-reset-state", backup_id)  # to available, cinderclient's default
    assert member.wait("backups", backup_id)["status"] == "available"

    exported = cinder_admin("backup-export", backup_id)
    service, url = _with_new_id(
        _table_field(exported, "backup_service"), _table_field(exported, "backup_url")
    )
    imported = _table_field(cinder_admin("backup-import", service, url), "id")
    assert admin.wait("backups", imported)["status"] == "available"
    new_volume = admin.call("POST", f"/backups/{imported}/restore", {"restore": {}}, expect=202)
    new_id = new_volume["restore"]["volume_id"]
    assert admin.wait("volumes", new_id)["status"] == "available"
    assert disk.digest(new_id) == original

    cinder("backup-delete", backup_id)
    assert member.wait("backups", backup_id) == {}
    cinder("delete", volume_id)
    assert member.wait("volumes", volume_id) == {}
    cinder_admin("backup-delete", imported)
    cinder_admin("delete", new_id)
    assert admin.wait("backups", imported) == admin.wait("volumes", new_id) == {}


# openstacksdk warns about its own deprecated internals (InfluxDB, _compute_attributes).
@pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning")
@pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning")
def test_openstacksdk_connects_with_a_password_and_finds_ashbox_in_the_catalog(
    keystone: Keystone, keystone_admin: Credentials, tenant: Tenant, disk: Disk
) -> None:
    conn, admin_conn = _sdk(keystone, tenant.member), _sdk(keystone, keystone_admin)
    try:
        bs = conn.block_storage
        assert bs.get_endpoint().endswith(f"/v3/{tenant.project_id}")
        volume = bs.wait_for_status(
            bs.create_volume(size=1, name="sdkvol"), "available", wait=60, interval=0.1
        )
        original = disk.fill(volume.id)
        backup = bs.create_backup(volume_id=volume.id, name="sdkb", force=True)
        backup = bs.wait_for_status(bs.get_backup(backup.id), "available", wait=60, interval=0.1)
        assert [b.id for b in bs.backups()] == [backup.id]
        assert bs.find_backup("sdkb").id == backup.id

        disk.scribble(volume.id)
        assert bs.restore_backup(backup.id, volume=volume.id)["volume_id"] == volume.id
        bs.wait_for_status(bs.get_backup(backup.id), "available", wait=60, interval=0.1)
        bs.wait_for_status(bs.get_volume(volume.id), "available", wait=60, interval=0.1)
        assert disk.digest(volume.id) == original

        admin_bs = admin_conn.block_storage
        admin_bs.reset_backup_status(backup.id, "error")
        assert bs.get_backup(backup.id).status == "error"
        admin_bs.reset_backup_status(backup.id, "available")
        record = admin_bs.export_backup(backup.id)["backup-record"]
        assert json.loads(base64.b64decode(record["backup_url"]))["id"] == backup.id

        bs.delete_backup(backup.id)
        bs.wait_for_delete(backup, interval=0.1, wait=60)
        assert list(bs.backups()) == []
        bs.delete_volume(volume.id)
        bs.wait_for_delete(volume, interval=0.1, wait=60)
    finally:
        conn.close()
        admin_conn.close()


def _sdk(keystone: Keystone, credentials: Credentials) -> Any:
    """An openstacksdk connection logged in with a password: no endpoint given."""
    return openstack.connect(
        auth_url=keystone.auth_url,
        username=credentials.username,
        password=credentials.password,
        project_name=credentials.project_name,
        user_domain_name=credentials.user_domain_name,
        project_domain_name=credentials.project_domain_name,
        region_name=REGION,
    )


# --- 2. projects, roles and policy, over raw HTTP with real tokens ----------------------


@pytest.fixture(scope="module")
def two_projects(keystone_tenant: Callable[[str], Tenant]) -> tuple[Tenant, Tenant]:
    return keystone_tenant("project-a"), keystone_tenant("project-b")


@pytest.fixture(scope="module")
def owned(keystone: Keystone, two_projects: tuple[Tenant, Tenant]) -> Iterator[dict[str, str]]:
    """Project A's volume, snapshot and backup, made by A's member, who deletes them
    after the module's tests: the Keystone and the ashbox are the session's."""
    a = CatalogClient(keystone, two_projects[0].member)
    try:
        volume_id = a.volume("a-vol")
        snapshot = a.call(
            "POST", "/snapshots", {"snapshot": {"volume_id": volume_id, "name": "a-snap"}},
            expect=202,
        )["snapshot"]  # fmt: skip
        assert a.wait("snapshots", snapshot["id"])["status"] == "available"
        backup_id = a.backup(volume_id, name="a-backup")
        yield {"volume": volume_id, "snapshot": snapshot["id"], "backup": backup_id}
        for kind, resource_id in [
            ("backups", backup_id), ("snapshots", snapshot["id"]), ("volumes", volume_id)
        ]:  # fmt: skip
            a.call("DELETE", f"/{kind}/{resource_id}", expect=202)
            assert a.wait(kind, resource_id) == {}
    finally:
        a.close()


def test_another_projects_ids_are_not_found(
    keystone: Keystone, two_projects: tuple[Tenant, Tenant], owned: dict[str, str]
) -> None:
    a, b = two_projects
    intruder = CatalogClient(keystone, b.member)
    assert intruder.url.endswith(f"/v3/{b.project_id}")
    backup_id, volume_id = owned["backup"], owned["volume"]
    for method, path, body in [
        ("GET", f"/backups/{backup_id}", None),
        ("POST", f"/backups/{backup_id}/restore", {"restore": {"volume_id": None}}),
        ("POST", f"/backups/{backup_id}/restore", {"restore": {"volume_id": volume_id}}),
        ("PUT", f"/backups/{backup_id}", {"backup": {"name": "stolen"}}),
        ("DELETE", f"/backups/{backup_id}", None),
        ("GET", f"/volumes/{volume_id}", None),
        ("DELETE", f"/volumes/{volume_id}", None),
        ("GET", f"/snapshots/{owned['snapshot']}", None),
        ("PUT", f"/snapshots/{owned['snapshot']}", {"snapshot": {"name": "stolen"}}),
        ("DELETE", f"/snapshots/{owned['snapshot']}", None),
    ]:
        r = intruder.request(method, path, body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert "itemNotFound" in r.json(), r.text
    # A's project id in the URL with B's token: Cinder's 400 for a URL naming another
    # project than the token's (cinder/api/openstack/wsgi.py, "Malformed request url").
    r = intruder.http.get(f"{intruder.url.rsplit('/', 1)[0]}/{a.project_id}/backups/{backup_id}")
    assert r.status_code == 400, r.text
    assert r.json()["badRequest"]["message"] == "Malformed request url"
    # Export is admin-only (`backup:export-import`), so the rule refuses it, 403, before
    # any lookup: a member of B learns nothing more than for a backup that does not exist.
    r = intruder.request("GET", f"/backups/{backup_id}/export_record")
    assert r.status_code == 403, r.text
    assert intruder.request("GET", "/backups/detail?all_tenants=1").json() == {"backups": []}
    assert intruder.request("GET", "/volumes/detail?all_tenants=1").json()["volumes"] == []

    owner = CatalogClient(keystone, a.member)
    backup = owner.call("GET", f"/backups/{backup_id}")["backup"]
    assert (backup["name"], backup["status"]) == ("a-backup", "available")
    assert owner.call("GET", f"/volumes/{volume_id}")["volume"]["status"] == "available"
    intruder.close()
    owner.close()


# Each admin action, the rule that guards it, and its request.
ADMIN_ACTIONS = [
    ("volume_extension:backup_admin_actions:reset_status", "POST", "/backups/{backup}/action",
     {"os-reset_status": {"status": "error"}}),
    ("volume_extension:backup_admin_actions:force_delete", "POST", "/backups/{backup}/action",
     {"os-force_delete": {}}),
    ("volume_extension:snapshot_admin_actions:reset_status", "POST",
     "/snapshots/{snapshot}/action", {"os-reset_status": {"status": "error"}}),
    ("volume_extension:snapshot_admin_actions:force_delete", "POST",
     "/snapshots/{snapshot}/action", {"os-force_delete": {}}),
    ("volume_extension:volume_admin_actions:reset_status", "POST", "/volumes/{volume}/action",
     {"os-reset_status": {"status": "error"}}),
    ("backup:export-import", "GET", "/backups/{backup}/export_record", None),
    ("backup:backup-import", "POST", "/backups/import_record",
     {"backup-record": {"backup_service": "cinder.backup.drivers.posix", "backup_url": "e30="}}),
    ("volume_extension:volume_manage", "POST", "/manageable_volumes",
     {"volume": {"host": None, "ref": {"source-name": "/etc/passwd"}}}),
    ("volume_extension:volume_manage", "POST", "/os-volume-manage",
     {"volume": {"host": None, "ref": {"source-name": "/etc/passwd"}}}),
]  # fmt: skip


NON_ADMINS = ["own member", "own reader", "other project's member"]


@pytest.mark.parametrize("who", NON_ADMINS)
def test_every_admin_action_by_a_non_admin_is_forbidden_by_its_rule(
    keystone: Keystone, two_projects: tuple[Tenant, Tenant], owned: dict[str, str], who: str
) -> None:
    failures = _refused_admin_actions(keystone, two_projects, owned, who, ADMIN_ACTIONS)
    assert not failures, failures


# Cinder's `volume_extension:volume_admin_actions:force_delete` (rule:admin_api) guards
# POST /volumes/{id}/action {"os-force_delete": {}}.
def test_a_volume_force_delete_by_a_non_admin_is_forbidden_by_its_rule(
    keystone: Keystone, two_projects: tuple[Tenant, Tenant], owned: dict[str, str]
) -> None:
    action: tuple[str, str, str, Any] = (
        "volume_extension:volume_admin_actions:force_delete",
        "POST",
        "/volumes/{volume}/action",
        {"os-force_delete": {}},
    )
    failures = _refused_admin_actions(keystone, two_projects, owned, "own member", [action])
    assert not failures, failures


def _refused_admin_actions(
    keystone: Keystone,
    two_projects: tuple[Tenant, Tenant],
    owned: dict[str, str],
    who: str,
    actions: list[tuple[str, str, str, Any]],
) -> list[tuple[Any, ...]]:
    """The actions not refused with Cinder's 403 for `who`; each of A's resources must
    be left as it was."""
    a, b = two_projects
    caller = dict(zip(NON_ADMINS, (a.member, a.reader, b.member), strict=True))[who]
    client = CatalogClient(keystone, caller)
    failures: list[tuple[Any, ...]] = []
    for rule, method, path, body in actions:
        r = client.request(method, path.format(**owned), body)
        message = f"Policy doesn't allow {rule} to be performed."
        if r.status_code != 403 or r.json() != {"forbidden": {"code": 403, "message": message}}:
            failures.append((rule, method, path, r.status_code, r.text))
    client.close()
    owner = CatalogClient(keystone, a.member)
    for kind in ("backups", "snapshots", "volumes"):
        assert owner.wait(kind, owned[kind[:-1]])["status"] == "available", kind
    owner.close()
    return failures


def test_a_reader_reads_but_cannot_change(
    keystone: Keystone, two_projects: tuple[Tenant, Tenant], owned: dict[str, str]
) -> None:
    reader = CatalogClient(keystone, two_projects[0].reader)
    assert reader.call("GET", f"/backups/{owned['backup']}")["backup"]["name"] == "a-backup"
    assert [b["id"] for b in reader.call("GET", "/backups")["backups"]] == [owned["backup"]]
    assert reader.call("GET", f"/volumes/{owned['volume']}")["volume"]["name"] == "a-vol"
    for rule, method, path, body in [
        ("backup:create", "POST", "/backups", {"backup": {"volume_id": owned["volume"]}}),
        ("volume:create", "POST", "/volumes", {"volume": {"size": 1}}),
        ("volume:create_snapshot", "POST", "/snapshots",
         {"snapshot": {"volume_id": owned["volume"]}}),
        ("backup:restore", "POST", f"/backups/{owned['backup']}/restore", {"restore": {}}),
        ("backup:update", "PUT", f"/backups/{owned['backup']}", {"backup": {"name": "x"}}),
        ("backup:delete", "DELETE", f"/backups/{owned['backup']}", None),
        ("volume:delete", "DELETE", f"/volumes/{owned['volume']}", None),
    ]:  # fmt: skip
        r = reader.request(method, path, body)
        assert r.status_code == 403, (rule, r.status_code, r.text)
        assert r.json()["forbidden"]["message"] == f"Policy doesn't allow {rule} to be performed."
    reader.close()


def test_an_admin_of_another_project_sees_and_lists_every_project(
    keystone: Keystone,
    two_projects: tuple[Tenant, Tenant],
    owned: dict[str, str],
    admin: CatalogClient,
) -> None:
    a = two_projects[0]
    assert admin.url.endswith(f"/v3/{admin.credentials.project_id}")
    backup = admin.call("GET", f"/backups/{owned['backup']}")["backup"]
    assert backup["name"] == "a-backup"
    assert backup["os-backup-project-attr:project_id"] == a.project_id
    every = admin.call("GET", "/backups/detail?all_tenants=1")["backups"]
    assert owned["backup"] in [b["id"] for b in every]
    own = admin.call("GET", "/backups/detail")["backups"]
    assert owned["backup"] not in [b["id"] for b in own]
    volumes = admin.call("GET", "/volumes/detail?all_tenants=1")["volumes"]
    assert owned["volume"] in [v["id"] for v in volumes]


# --- 3. the ashbox command -------------------------------------------------------------


def test_the_ashbox_command_logs_in_with_os_variables_and_uses_the_catalog(
    keystone: Keystone, tenant: Tenant, member: CatalogClient
) -> None:
    env = os_environ(keystone, tenant.member)
    ashbox = str(BIN / "ashbox")
    assert json.loads(_run(env, ashbox, "backup", "list", "-f", "json")) == []
    volume = json.loads(
        _run(env, ashbox, "volume", "create", "--size", "1", "--name", "cli", "--wait",
             "-f", "json")
    )  # fmt: skip
    assert volume["status"] == "available"
    assert member.call("GET", f"/volumes/{volume['id']}")["volume"]["name"] == "cli"
    backup_id = member.backup(volume["id"], name="clib")
    listed = json.loads(_run(env, ashbox, "backup", "list", "-f", "json"))
    assert [(b["id"], b["name"]) for b in listed] == [(backup_id, "clib")]

    member.call("DELETE", f"/backups/{backup_id}", expect=202)
    assert member.wait("backups", backup_id) == {}
    member.call("DELETE", f"/volumes/{volume['id']}", expect=202)

    wrong = {**env, "OS_PASSWORD": "not-the-password"}
    done = subprocess.run([ashbox, "backup", "list"], capture_output=True, text=True, env=wrong,
                          timeout=60)  # fmt: skip
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Keystone login failed" in done.stderr


def test_the_ashbox_command_logs_in_with_a_cloud_of_clouds_yaml(
    keystone: Keystone, tenant: Tenant, tmp_path: Path
) -> None:
    openrc = os_environ(keystone, tenant.member)
    env = {k: v for k, v in openrc.items() if not k.startswith("OS_")}
    clouds = tmp_path / "clouds.yaml"
    auth = {
        "auth_url": openrc["OS_AUTH_URL"],
        "username": openrc["OS_USERNAME"],
        "password": openrc["OS_PASSWORD"],
        "project_name": openrc["OS_PROJECT_NAME"],
        "user_domain_name": openrc["OS_USER_DOMAIN_NAME"],
        "project_domain_name": openrc["OS_PROJECT_DOMAIN_NAME"],
    }
    cloud = {"auth": auth, "region_name": openrc["OS_REGION_NAME"], "interface": "public"}
    clouds.write_text(json.dumps({"clouds": {"lab": cloud}}))  # YAML is a superset of JSON
    env.update(OS_CLIENT_CONFIG_FILE=str(clouds), OS_CLOUD="lab")
    assert json.loads(_run(env, str(BIN / "ashbox"), "volume", "list", "-f", "json")) == []


# --- 4. tokens Keystone does not vouch for --------------------------------------------


def test_garbage_missing_and_revoked_tokens_get_401_with_keystones_address(
    keystone: Keystone, tenant: Tenant, member: CatalogClient
) -> None:
    revoked = keystone.token(tenant.member)
    r = keystone.http.delete(
        "/auth/tokens", headers={"X-Auth-Token": revoked, "X-Subject-Token": revoked}
    )
    assert r.status_code == 204, r.text
    for token in ("garbage", "gAAAAABnot-a-fernet-token", revoked, None):
        headers = {"OpenStack-API-Version": "volume 3.64"}
        if token:
            headers["X-Auth-Token"] = token
        r = httpx.get(member.url + "/backups", headers=headers)
        assert r.status_code == 401, (token, r.text)
        assert r.headers["WWW-Authenticate"] == f'Keystone uri="{keystone.auth_url}"'
