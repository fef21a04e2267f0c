"""Authentication and policy over real HTTP with static tokens (`auth_strategy = "token"`).

Who may do what is Cinder's secure-RBAC defaults: readers read their project,
members change it, admins (of any project) do everything and see every project.
Another project's resource by id is 404, never 403; an admin action by a
non-admin is 403. The same checks over a real Keystone are in tests/conformance.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ashbox.api.auth import authenticator_for, check_auth_settings
from ashbox.config import Settings
from ashbox.errors import InvalidInput
from ashbox.policy import Policy
from ashbox.tokens import add_token
from tests.api.conftest import Stack, running_stack

VERSION = {"OpenStack-API-Version": "volume 3.64"}


@dataclasses.dataclass
class Caller:
    http: httpx.Client
    project: str

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(f"/v3/{self.project}{path}", **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(f"/v3/{self.project}{path}", **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.put(f"/v3/{self.project}{path}", **kw)

    def delete(self, path: str) -> httpx.Response:
        return self.http.delete(f"/v3/{self.project}{path}")


@dataclasses.dataclass
class World:
    stack: Stack
    callers: dict[str, Caller]
    volume_id: str
    backup_id: str


def _wait(caller: Caller, path: str, key: str, busy: set[str]) -> dict[str, Any]:
    for _ in range(3000):
        body: dict[str, Any] = caller.get(path).json()[key]
        if body["status"] not in busy:
            return body
        time.sleep(0.02)
    raise TimeoutError(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("ashbox-auth")
    tokens = data_dir / "tokens.toml"
    people = {
        "member1": ("alice", "p1", ["member"]),
        "reader1": ("rita", "p1", ["reader"]),
        "member2": ("bob", "p2", ["member"]),
        "admin": ("root", "ops", ["admin"]),
    }
    secrets = {who: add_token(tokens, *spec) for who, spec in people.items()}
    url = f"sqlite:///{data_dir / 'ashbox.db'}"
    with running_stack(
        "sqlite", data_dir, url, auth_strategy="token", tokens_file=str(tokens)
    ) as stack:
        callers = {
            who: Caller(
                httpx.Client(
                    base_url=stack.root,
                    headers={"X-Auth-Token": secrets[who], **VERSION},
                    timeout=30,
                ),
                people[who][1],
            )
            for who in people
        }
        member = callers["member1"]
        r = member.post("/volumes", json={"volume": {"size": 1}})
        assert r.status_code == 202, r.text
        volume_id = r.json()["volume"]["id"]
        _wait(member, f"/volumes/{volume_id}", "volume", {"creating"})
        r = member.post("/backups", json={"backup": {"volume_id": volume_id}})
        assert r.status_code == 202, r.text
        backup_id = r.json()["backup"]["id"]
        assert _wait(member, f"/backups/{backup_id}", "backup", {"creating"})["status"] == (
            "available"
        )
        try:
            yield World(stack, callers, volume_id, backup_id)
        finally:
            for caller in callers.values():
                caller.http.close()


def test_no_or_unknown_token_is_401_with_a_challenge(world: World) -> None:
    for headers in ({}, {"X-Auth-Token": "not-a-token"}, {"X-Auth-Token": "alice:p1"}):
        r = httpx.get(f"{world.stack.root}/v3/p1/backups", headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["unauthorized"]["code"] == 401
        assert r.headers["WWW-Authenticate"].startswith("Token")


def test_version_documents_need_no_token(world: World) -> None:
    for path in ("/", "/v3/", "/healthcheck"):
        assert httpx.get(world.stack.root + path).status_code in (200, 300), path


def test_another_projects_resources_by_id_are_404(world: World) -> None:
    other = world.callers["member2"]
    b, v = world.backup_id, world.volume_id
    assert other.get(f"/backups/{b}").status_code == 404
    assert other.put(f"/backups/{b}", json={"backup": {"name": "x"}}).status_code == 404
    assert other.post(f"/backups/{b}/restore", json={"restore": {}}).status_code == 404
    assert other.delete(f"/backups/{b}").status_code == 404
    assert other.get(f"/volumes/{v}").status_code == 404
    assert other.delete(f"/volumes/{v}").status_code == 404
    r = other.post("/backups", json={"backup": {"volume_id": v}})
    assert r.status_code == 404, r.text
    listed = other.get("/backups/detail", params={"all_tenants": "1"}).json()["backups"]
    assert listed == []
    owner = world.callers["member1"]
    assert owner.get(f"/backups/{b}").json()["backup"]["name"] is None  # untouched


def test_a_url_naming_another_project_is_400(world: World) -> None:
    r = world.callers["member2"].http.get("/v3/p1/backups")
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == "Malformed request url"


def test_admin_actions_by_a_member_are_403_with_the_rule(world: World) -> None:
    member = world.callers["member1"]
    b, v = world.backup_id, world.volume_id
    attempts = {
        "backup:export-import": member.get(f"/backups/{b}/export_record"),
        "backup:backup-import": member.post(
            "/backups/import_record",
            json={"backup-record": {"backup_service": "x", "backup_url": "eA=="}},
        ),
        "volume_extension:backup_admin_actions:reset_status": member.post(
            f"/backups/{b}/action", json={"os-reset_status": {"status": "error"}}
        ),
        "volume_extension:backup_admin_actions:force_delete": member.post(
            f"/backups/{b}/action", json={"os-force_delete": {}}
        ),
        "volume_extension:volume_admin_actions:reset_status": member.post(
            f"/volumes/{v}/action", json={"os-reset_status": {"status": "error"}}
        ),
        "volume_extension:volume_admin_actions:force_delete": member.post(
            f"/volumes/{v}/action", json={"os-force_delete": {}}
        ),
        "volume_extension:volume_manage": member.post(
            "/manageable_volumes",
            json={"volume": {"host": "h", "ref": {"source-name": "/tmp/x"}}},
        ),
    }
    for rule, r in attempts.items():
        assert r.status_code == 403, (rule, r.text)
        assert r.json()["forbidden"]["message"] == f"Policy doesn't allow {rule} to be performed."
    assert member.get(f"/backups/{b}").json()["backup"]["status"] == "available"
    assert member.get(f"/volumes/{v}").json()["volume"]["status"] == "available"


def test_a_reader_reads_but_changes_nothing(world: World) -> None:
    reader = world.callers["reader1"]
    b, v = world.backup_id, world.volume_id
    assert reader.get(f"/backups/{b}").status_code == 200
    assert [x["id"] for x in reader.get("/backups").json()["backups"]] == [b]
    refused = [
        reader.post("/backups", json={"backup": {"volume_id": v}}),
        reader.put(f"/backups/{b}", json={"backup": {"name": "x"}}),
        reader.delete(f"/backups/{b}"),
        reader.post(f"/backups/{b}/restore", json={"restore": {"volume_id": v}}),
        reader.post("/volumes", json={"volume": {"size": 1}}),
        reader.post("/snapshots", json={"snapshot": {"volume_id": v}}),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert len(world.callers["member1"].get("/backups").json()["backups"]) == 1


def test_an_admin_of_any_project_sees_and_acts_on_every_project(world: World) -> None:
    admin = world.callers["admin"]
    b = world.backup_id
    shown = admin.get(f"/backups/{b}")
    assert shown.status_code == 200
    assert shown.json()["backup"]["os-backup-project-attr:project_id"] == "p1"
    everyone = admin.get("/backups", params={"all_tenants": "1"}).json()["backups"]
    assert b in [x["id"] for x in everyone]
    assert admin.get("/backups").json()["backups"] == []  # own project without all_tenants
    assert admin.get(f"/backups/{b}/export_record").status_code == 200
    member_view = world.callers["member1"].get(f"/backups/{b}").json()["backup"]
    assert "os-backup-project-attr:project_id" not in member_view


def test_a_policy_file_overrides_cinders_defaults(tmp_path: Path) -> None:
    rules = tmp_path / "policy.yaml"
    rules.write_text('"backup:export-import": "role:member"\n')
    creds = {"user_id": "u", "project_id": "p1", "roles": ["member", "reader"]}
    target = {"project_id": "p1", "user_id": "u"}
    assert not Policy().allows("backup:export-import", target, creds)
    assert Policy(str(rules)).allows("backup:export-import", target, creds)
    rules.write_text("{not yaml: [")
    with pytest.raises(InvalidInput, match="Cannot load policy_file"):
        Policy(str(rules))
    with pytest.raises(InvalidInput, match="is not a file"):
        Policy(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"host": "0.0.0.0"}, "only allowed when the API listens on a loopback"),
        ({"auth_strategy": "token"}, "needs tokens_file"),
        (
            {"auth_strategy": "token", "tokens_file": "t.toml", "host": "0.0.0.0"},
            "needs TLS",
        ),
        ({"auth_strategy": "keystone"}, "needs keystone_authtoken.www_authenticate_uri"),
        ({"auth_strategy": "ldap"}, "not supported"),
        ({"tls_cert": "c.pem"}, "needs both tls_cert and tls_key"),
    ],
)
def test_settings_that_cannot_be_served_safely_are_refused(
    changes: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_auth_settings(dataclasses.replace(Settings(), **changes))  # type: ignore[arg-type]


def test_a_tokens_file_that_is_missing_or_malformed_stops_the_start(tmp_path: Path) -> None:
    settings = dataclasses.replace(
        Settings(), auth_strategy="token", tokens_file=str(tmp_path / "absent.toml")
    )
    with pytest.raises(InvalidInput, match="Cannot read tokens file"):
        authenticator_for(settings)
    (tmp_path / "absent.toml").write_text("[[token]]\nsha256 = 1\n")
    with pytest.raises(InvalidInput, match="sha256 must be 64"):
        authenticator_for(settings)
