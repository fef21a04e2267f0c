"""User messages over HTTP (CINDER-CONTRACT §1.9): Cinder's bodies and envelope,
its microversions (3.3; paging, sort and filters from 3.5), its policy, and its
error messages; on SQLite and PostgreSQL.

Messages are written with `ashbox.db.messages.add` straight into the stack's
database, as a failure path writes them. The stack checks static tokens, so
each test makes callers with the roles it needs, in projects of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update

from ashbox.db import messages
from ashbox.db.models import Message
from ashbox.tokens import add_token
from ashbox.user_messages import Action, Detail, Resource
from tests.api.conftest import Stack, running_stack
from tests.conftest import _fresh_postgres_database

KEYS = {
    "id",
    "event_id",
    "user_message",
    "message_level",
    "created_at",
    "guaranteed_until",
    "request_id",
    "links",
    "resource_type",
    "resource_uuid",
}
TIME = "%Y-%m-%dT%H:%M:%S.%f"
BAD_DIRECTION = "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'."


@dataclass
class World:
    stack: Stack
    tokens: Path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp(f"ashbox-messages-{request.param}")
    tokens = data_dir / "tokens.toml"
    add_token(tokens, "nobody", "nowhere", [])  # the file must exist to start
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'ashbox.db'}"
    else:
        url = _fresh_postgres_database(request.getfixturevalue("postgres_server"))
    with running_stack(
        request.param, data_dir, url, auth_strategy="token", tokens_file=str(tokens)
    ) as stack:
        yield World(stack, tokens)


@dataclass
class Caller:
    http: httpx.Client
    project: str

    def get(self, path: str, version: str = "3.71", **kw: Any) -> httpx.Response:
        return self.http.get(path, headers=_at(version), **kw)

    def delete(self, path: str, version: str = "3.71") -> httpx.Response:
        return self.http.delete(path, headers=_at(version))

    def list(self, version: str = "3.71", **params: str) -> list[dict[str, Any]]:
        r = self.get("/messages", version, params=params)
        assert r.status_code == 200, r.text
        return r.json()["messages"]  # type: ignore[no-any-return]

    def ids(self, version: str = "3.71", **params: str) -> list[str]:
        return [m["id"] for m in self.list(version, **params)]


def _at(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"volume {version}"}


@pytest.fixture
def project() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def callers(world: World) -> Iterator[dict[str, Any]]:
    """`make(roles, project)`: a caller with those roles in that project."""
    made: list[Caller] = []

    def make(roles: list[str], project: str) -> Caller:
        secret = add_token(world.tokens, f"u{len(made)}", project, roles)
        http = httpx.Client(
            base_url=f"{world.stack.root}/v3/{project}",
            headers={"X-Auth-Token": secret},
            timeout=30,
        )
        made.append(Caller(http, project))
        return made[-1]

    yield {"make": make}
    for caller in made:
        caller.http.close()


def _member(callers: dict[str, Any], project: str) -> Caller:
    caller: Caller = callers["make"](["member"], project)
    return caller


def _add(world: World, project: str, *, at: datetime | None = None, **fields: Any) -> str:
    """A message of `project` (a backup create that its driver failed, unless
    `fields` say otherwise), written `at` that time if given."""
    spec: dict[str, Any] = {
        "resource_type": Resource.VOLUME_BACKUP,
        "resource_uuid": str(uuid.uuid4()),
        "action_id": Action.BACKUP_CREATE.id,
        "detail_id": Detail.BACKUP_CREATE_DRIVER_ERROR.id,
        **fields,
    }
    with world.stack.db.transaction() as s:
        message_id = messages.add(s, project_id=project, **spec)
    if at is not None:
        with world.stack.db.transaction() as s:
            s.execute(update(Message).where(Message.id == message_id).values(created_at=at))
    return message_id


def _five(world: World, project: str) -> list[str]:
    """Five messages an hour apart, oldest first."""
    start = datetime(2030, 1, 1, tzinfo=UTC)
    return [_add(world, project, at=start + timedelta(hours=i)) for i in range(5)]


def test_a_message_is_shown_with_cinders_keys_and_texts(world: World, callers: Any) -> None:
    member = _member(callers, uuid.uuid4().hex)
    backup_id = str(uuid.uuid4())
    message_id = _add(world, member.project, resource_uuid=backup_id, request_id="req-abc")
    r = member.get(f"/messages/{message_id}", "3.3")
    assert r.status_code == 200, r.text
    shown = r.json()["message"]
    assert set(shown) == KEYS
    assert shown["id"] == message_id
    assert shown["event_id"] == "VOLUME_VOLUME_BACKUP_013_020"
    assert shown["user_message"] == "create backup:Backup driver failed to create backup."
    assert (shown["message_level"], shown["request_id"]) == ("ERROR", "req-abc")
    assert (shown["resource_type"], shown["resource_uuid"]) == ("VOLUME_BACKUP", backup_id)
    created = datetime.strptime(shown["created_at"], TIME)
    guaranteed = datetime.strptime(shown["guaranteed_until"], TIME)
    assert guaranteed - created == timedelta(seconds=world.stack.settings.message_ttl)
    assert guaranteed - created == timedelta(days=30)  # Cinder's default message_ttl
    assert shown["links"] == [
        {"rel": "self", "href": f"{world.stack.root}/v3/{member.project}/messages/{message_id}"},
        {"rel": "bookmark", "href": f"{world.stack.root}/{member.project}/messages/{message_id}"},
    ]
    assert member.list("3.3") == [shown]


def test_a_message_without_a_resource_leaves_out_its_keys(world: World, callers: Any) -> None:
    member = _member(callers, uuid.uuid4().hex)
    no_uuid = _add(world, member.project, resource_uuid=None)
    no_resource = str(uuid.uuid4())
    with world.stack.db.transaction() as s:
        s.add(
            Message(
                id=no_resource,
                project_id=member.project,
                request_id="req-1",
                resource_type=None,
                resource_uuid=None,
                event_id="VOLUME_VOLUME_001_003",
                action_id="001",
                detail_id="003",
                message_level="ERROR",
            )
        )
    shown = member.get(f"/messages/{no_uuid}").json()["message"]
    assert set(shown) == KEYS - {"resource_uuid"}
    shown = member.get(f"/messages/{no_resource}").json()["message"]
    assert set(shown) == KEYS - {"resource_uuid", "resource_type"}
    assert shown["user_message"] == (
        "schedule allocate volume:Could not find any available weighted backend."
    )
    listed = {m["id"]: set(m) for m in member.list()}
    assert listed == {
        no_uuid: KEYS - {"resource_uuid"},
        no_resource: KEYS - {"resource_uuid", "resource_type"},
    }


def test_ids_the_catalog_does_not_know_read_as_cinder_reads_them(
    world: World, callers: Any
) -> None:
    member = _member(callers, uuid.uuid4().hex)
    message_id = _add(world, member.project, action_id="099", detail_id="098", level="WARNING")
    shown = member.get(f"/messages/{message_id}").json()["message"]
    assert shown["user_message"] == "unknown action:An unknown error occurred."
    assert (shown["event_id"], shown["message_level"]) == (
        "VOLUME_VOLUME_BACKUP_099_098",
        "WARNING",
    )


def test_the_list_is_newest_first_and_of_the_callers_project_only(
    world: World, callers: Any
) -> None:
    member = _member(callers, uuid.uuid4().hex)
    five = _five(world, member.project)
    other = _member(callers, uuid.uuid4().hex)
    theirs = _add(world, other.project)
    assert member.ids() == five[::-1]
    assert member.ids("3.3") == five[::-1]
    assert other.ids() == [theirs]
    assert "messages_links" not in member.get("/messages").json()


def test_another_projects_message_is_404_with_cinders_message(world: World, callers: Any) -> None:
    owner = _member(callers, uuid.uuid4().hex)
    message_id = _add(world, owner.project)
    other = _member(callers, uuid.uuid4().hex)
    for r in (other.get(f"/messages/{message_id}"), other.delete(f"/messages/{message_id}")):
        assert r.status_code == 404, r.text
        assert r.json() == {
            "itemNotFound": {"code": 404, "message": f"Message {message_id} could not be found."}
        }
    r = other.get("/messages", params={"marker": message_id})
    assert r.status_code == 404
    assert owner.ids() == [message_id]  # still there


def test_a_deleted_message_is_gone(world: World, callers: Any) -> None:
    member = _member(callers, uuid.uuid4().hex)
    message_id, kept = _add(world, member.project), _add(world, member.project)
    r = member.delete(f"/messages/{message_id}", "3.3")
    assert (r.status_code, r.content) == (204, b"")
    assert member.get(f"/messages/{message_id}").status_code == 404
    assert member.delete(f"/messages/{message_id}").status_code == 404
    assert member.ids() == [kept]
    with world.stack.db.reading() as s:
        assert messages.get(s, message_id) is None


def test_readers_read_members_delete_and_others_may_not_list(world: World, callers: Any) -> None:
    project = uuid.uuid4().hex
    message_id = _add(world, project)
    reader = callers["make"](["reader"], project)
    assert reader.ids() == [message_id]
    assert reader.get(f"/messages/{message_id}").status_code == 200
    r = reader.delete(f"/messages/{message_id}")
    assert r.status_code == 403
    assert r.json()["forbidden"]["message"] == (
        "Policy doesn't allow message:delete to be performed."
    )
    nobody = callers["make"]([], project)
    for r, rule in (
        (nobody.get("/messages"), "message:get_all"),
        (nobody.get(f"/messages/{message_id}"), "message:get"),
    ):
        assert r.status_code == 403
        assert r.json()["forbidden"]["message"] == f"Policy doesn't allow {rule} to be performed."
    assert reader.ids() == [message_id]
    assert _member(callers, project).delete(f"/messages/{message_id}").status_code == 204


def test_an_admin_sees_and_deletes_every_projects_messages(world: World, callers: Any) -> None:
    admin = callers["make"](["admin"], uuid.uuid4().hex)
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    mine, theirs = _add(world, first), _add(world, second)
    everyone = admin.ids()
    assert {mine, theirs} <= set(everyone)
    assert admin.ids(project_id=second) == [theirs]  # as `openstack volume message list --project`
    assert admin.ids(all_tenants="1", project_id=first) == [mine]  # all_tenants is no filter
    assert admin.get(f"/messages/{theirs}").json()["message"]["id"] == theirs
    assert admin.delete(f"/messages/{theirs}").status_code == 204
    assert _member(callers, second).ids() == []


@pytest.mark.parametrize("version", ["3.0", "3.2"])
def test_below_3_3_the_routes_are_404_as_cinders(world: World, callers: Any, version: str) -> None:
    member = _member(callers, uuid.uuid4().hex)
    message_id = _add(world, member.project)
    for r in (
        member.get("/messages", version),
        member.get(f"/messages/{message_id}", version),
        member.delete(f"/messages/{message_id}", version),
    ):
        assert r.status_code == 404, r.text
        assert r.json() == {
            "itemNotFound": {"code": 404, "message": "The resource could not be found."}
        }
    assert member.ids() == [message_id]


@pytest.mark.parametrize("version", ["3.3", "3.4"])
def test_below_3_5_the_list_reads_no_query_parameter(
    world: World, callers: Any, version: str
) -> None:
    member = _member(callers, uuid.uuid4().hex)
    five = _five(world, member.project)
    params = {
        "limit": "abc",
        "marker": "nope",
        "offset": "-1",
        "sort": "bogus:sideways",
        "event_id": "VOLUME_VOLUME_001_001",
        "foo": "bar",
    }
    r = member.get("/messages", version, params=params)
    assert r.status_code == 200, r.text
    assert [m["id"] for m in r.json()["messages"]] == five[::-1]
    assert "messages_links" not in r.json()
    assert member.ids(version, limit="1") == five[::-1]


def test_from_3_5_limit_marker_and_next_links_page_through(world: World, callers: Any) -> None:
    member = _member(callers, uuid.uuid4().hex)
    newest_first = _five(world, member.project)[::-1]
    r = member.get("/messages", "3.5", params={"limit": "2", "sort": "created_at:desc"})
    body = r.json()
    assert [m["id"] for m in body["messages"]] == newest_first[:2]
    (link,) = body["messages_links"]
    assert link["rel"] == "next"
    parts = urlsplit(link["href"])
    assert parts.path == f"/v3/{member.project}/messages"
    assert parse_qs(parts.query) == {
        "limit": ["2"],
        "sort": ["created_at:desc"],
        "marker": [newest_first[1]],
    }
    seen = [m["id"] for m in body["messages"]]
    while "messages_links" in body:
        body = member.http.get(body["messages_links"][0]["href"], headers=_at("3.5")).json()
        seen += [m["id"] for m in body["messages"]]
    assert seen == newest_first  # the last link (a full page) leads to an empty one
    assert member.ids(offset="3") == newest_first[3:]
    assert member.ids(limit="2", offset="1") == newest_first[1:3]
    assert member.ids(marker=newest_first[2]) == newest_first[3:]
    assert "messages_links" not in member.get("/messages", params={"limit": "6"}).json()


def test_sort_keys_and_directions(world: World, callers: Any) -> None:
    member = _member(callers, uuid.uuid4().hex)
    oldest_first = _five(world, member.project)
    assert member.ids(sort="created_at:asc") == oldest_first
    assert member.ids(sort_key="created_at", sort_dir="asc") == oldest_first
    assert member.ids(sort="created_at") == oldest_first[::-1]  # desc by default
    schedule = _add(world, member.project, action_id=Action.SCHEDULE_ALLOCATE_VOLUME.id)
    assert member.ids(sort="event_id:asc,created_at:asc") == [schedule, *oldest_first]
    assert member.ids(sort="event_id:desc,created_at:asc") == [*oldest_first, schedule]


def test_each_filter_narrows_the_list(world: World, callers: Any) -> None:
    member = _member(callers, uuid.uuid4().hex)
    backup_id, volume_id = str(uuid.uuid4()), str(uuid.uuid4())
    backup = _add(world, member.project, resource_uuid=backup_id, request_id="req-one")
    restore = _add(
        world,
        member.project,
        resource_type=Resource.VOLUME,
        resource_uuid=volume_id,
        action_id=Action.BACKUP_RESTORE.id,
        detail_id=Detail.VOLUME_INVALID_STATE.id,
        level="WARNING",
    )
    assert member.ids(resource_uuid=backup_id) == [backup]
    assert member.ids(resource_uuid=volume_id) == [restore]
    assert member.ids(resource_type="VOLUME") == [restore]
    assert member.ids(resource_type="VOLUME_BACKUP") == [backup]
    assert member.ids(event_id="VOLUME_VOLUME_015_027") == [restore]
    assert member.ids(request_id="req-one") == [backup]
    assert member.ids(message_level="WARNING") == [restore]
    assert member.ids(message_level="ERROR", resource_uuid=volume_id) == []
    assert member.ids(resource_uuid=str(uuid.uuid4())) == []
    assert member.ids(resource_uuid="not-a-uuid") == []  # as in Cinder: a filter, not a check
    assert member.ids(resource_uuid="x" * 300, request_id="y" * 300) == []  # past the columns
    assert member.ids("3.34", **{"event_id~": "_015_"}) == [restore]
    assert set(member.ids(all_tenants="1")) == {restore, backup}  # no filter: dropped


def test_unknown_filters_match_nothing_below_3_31_and_are_400_from_it(
    world: World, callers: Any
) -> None:
    member = _member(callers, uuid.uuid4().hex)
    _add(world, member.project)
    assert member.ids("3.30", foo="bar") == []
    assert member.ids("3.30", project_id=member.project) != []  # a field, not public from 3.31
    for params, named in (
        ({"foo": "bar"}, "foo"),
        ({"project_id": member.project}, "project_id"),
        ({"event_id~": "x"}, "event_id~"),  # substring filters come at 3.34
    ):
        r = member.get("/messages", "3.31", params=params)
        assert r.status_code == 400, r.text
        assert r.json()["badRequest"]["message"] == (
            f"Invalid filters {named} are found in query options."
        )
    r = member.get("/messages", "3.31", params={"clé": "x"})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == "Filter keys can only contain ASCII characters."
    assert len(member.ids("3.31", all_tenants="true")) == 1  # dropped, as Cinder drops it
    admin = callers["make"](["admin"], member.project)
    assert admin.ids(foo="bar") == []  # an admin's unknown filter matches nothing


def test_an_admin_filters_on_any_field_times_too(world: World, callers: Any) -> None:
    admin = callers["make"](["admin"], uuid.uuid4().hex)
    message_id = _add(world, admin.project, at=datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC))
    mine = {"project_id": admin.project}
    assert admin.ids(**mine, action_id="013", detail_id="020") == [message_id]
    assert admin.ids(**mine, created_at="2031-02-03T04:05:06+00:00") == [message_id]
    assert admin.ids(**mine, **{"created_at~": "2031-02-03"}) == [message_id]  # as text
    assert admin.ids(**mine, **{"created_at~": "2032"}) == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "abc"}, "limit param must be an integer"),
        ({"limit": "-1"}, "limit param must be positive"),
        ({"offset": "x"}, "offset must be an integer"),
        ({"offset": "-1"}, "offset must be >= 0"),
        ({"offset": str(2**31)}, "offset must be <= 2147483647"),
        ({"sort": "created_at:sideways"}, BAD_DIRECTION),
        ({"sort_key": "created_at", "sort_dir": "up"}, BAD_DIRECTION),
        ({"sort": "bogus"}, "Invalid sort key bogus"),
        ({"sort": "user_message"}, "Invalid sort key user_message"),
        (
            {"sort": "created_at", "sort_key": "id"},
            "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used "
            "with the 'sort' parameter.",
        ),
        ({"created_at": "yesterday"}, None),  # an admin's filter on a time field
    ],
)  # fmt: skip
def test_bad_list_parameters_are_400_with_cinders_messages(
    world: World, callers: Any, params: dict[str, str], message: str | None
) -> None:
    admin = callers["make"](["admin"], uuid.uuid4().hex)
    _add(world, admin.project)
    r = admin.get("/messages", params=params)
    assert r.status_code == 400, r.text
    if message is not None:
        assert r.json()["badRequest"]["message"] == message
    else:
        assert r.json()["badRequest"]["message"].startswith("Invalid value 'yesterday'")


def test_an_unknown_or_malformed_id_is_404(world: World, callers: Any) -> None:
    member = _member(callers, uuid.uuid4().hex)
    for message_id in (str(uuid.uuid4()), "not-a-uuid", "x" * 300):
        for r in (member.get(f"/messages/{message_id}"), member.delete(f"/messages/{message_id}")):
            assert r.status_code == 404, r.text
            assert r.json()["itemNotFound"]["message"] == (
                f"Message {message_id} could not be found."
            )
        r = member.get("/messages", params={"marker": message_id})
        assert r.json()["itemNotFound"]["message"] == f"Message {message_id} could not be found."


def test_project_less_urls_serve_the_tokens_project(world: World, callers: Any) -> None:
    member = _member(callers, uuid.uuid4().hex)
    message_id = _add(world, member.project)
    r = member.http.get(f"{world.stack.root}/v3/messages", headers=_at("3.3"))
    assert [m["id"] for m in r.json()["messages"]] == [message_id]
    assert r.json()["messages"][0]["links"][0]["href"] == (
        f"{world.stack.root}/v3/messages/{message_id}"
    )
    r = member.http.get(f"{world.stack.root}/v3/messages/messages", headers=_at("3.3"))
    assert r.status_code == 404
