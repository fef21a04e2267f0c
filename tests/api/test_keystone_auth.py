"""`auth_strategy = "keystone"` with keystonemiddleware's own fixture for tokens.

keystonemiddleware's `AuthTokenFixture` answers token validation in-process,
so this runs keystonemiddleware's real `auth_token` without a Keystone; the
runs against a real Keystone are in tests/conformance.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from keystonemiddleware.fixture import AuthTokenFixture

from tests.api.conftest import Stack, running_stack

KEYSTONE = "http://127.0.0.1:9/v3"  # never reached: the fixture answers
VERSION = {"OpenStack-API-Version": "volume 3.64"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tokens = AuthTokenFixture()
    tokens.setUp()
    tokens.add_token_data(
        token_id="tok-member", project_id="p1", user_id="u1", role_list=["member", "reader"]
    )
    tokens.add_token_data(
        token_id="tok-admin", project_id="ops", user_id="a1", role_list=["admin", "member"]
    )
    data_dir = tmp_path_factory.mktemp("ashbox-keystone")
    options = {"www_authenticate_uri": KEYSTONE, "auth_url": KEYSTONE}
    try:
        with running_stack(
            "sqlite",
            data_dir,
            f"sqlite:///{data_dir / 'ashbox.db'}",
            auth_strategy="keystone",
            keystone_authtoken=options,
        ) as running:
            yield running
    finally:
        tokens.cleanUp()


def _get(stack: Stack, path: str, token: str | None, **headers: str) -> httpx.Response:
    sent = {**VERSION, **headers}
    if token:
        sent["X-Auth-Token"] = token
    return httpx.get(stack.root + path, headers=sent)


def test_a_valid_token_reaches_its_project(stack: Stack) -> None:
    r = _get(stack, "/v3/p1/backups", "tok-member")
    assert r.status_code == 200, r.text
    assert r.json() == {"backups": []}
    assert _get(stack, "/v3/backups", "tok-member").status_code == 200  # 3.67: no project


def test_unknown_or_missing_tokens_get_401_with_keystones_address(stack: Stack) -> None:
    for token in (None, "tok-unknown"):
        r = _get(stack, "/v3/p1/backups", token)
        assert r.status_code == 401, r.text
        assert r.headers["WWW-Authenticate"] == f'Keystone uri="{KEYSTONE}"'
        assert "x-openstack-request-id" in r.headers


def test_roles_sent_by_the_client_are_ignored(stack: Stack) -> None:
    r = _get(
        stack,
        "/v3/p1/backups/0/export_record",
        "tok-member",
        **{"X-Roles": "admin", "X-Identity-Status": "Confirmed", "X-Is-Admin-Project": "True"},
    )
    assert r.status_code == 403
    r = httpx.get(
        stack.root + "/v3/p1/backups",
        headers={"X-Roles": "admin", "X-Identity-Status": "Confirmed", "X-Project-Id": "p1"},
    )
    assert r.status_code == 401


def test_admin_in_any_project_is_admin(stack: Stack) -> None:
    r = _get(stack, "/v3/ops/backups/detail?all_tenants=1", "tok-admin")
    assert r.status_code == 200
    r = _get(stack, "/v3/p1/backups", "tok-admin")
    assert r.status_code == 400  # the token's project is ops
