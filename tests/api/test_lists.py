"""Backup and volume lists: pagination, sorting, filters, counts (CINDER-CONTRACT §1.5)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.api.conftest import Api


@pytest.fixture
def five(api: Api) -> list[str]:
    """Five backups b0..b4 of two volumes, created in that order; ids newest first."""
    v1, v2 = api.volume(name="v1"), api.volume(name="v2")
    ids = [api.backup(v1 if i % 2 == 0 else v2, name=f"b{i}") for i in range(5)]
    return ids[::-1]


def _ids(r: httpx.Response, key: str = "backups") -> list[str]:
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()[key]]


def test_lists_are_newest_first_by_default(api: Api, five: list[str]) -> None:
    assert _ids(api.get("/backups")) == five
    assert _ids(api.get("/backups/detail")) == five


def test_summary_items_carry_id_name_and_links(api: Api, five: list[str]) -> None:
    item = api.get("/backups").json()["backups"][0]
    assert set(item) == {"id", "name", "links"}
    assert item["name"] == "b4"


def test_limit_and_marker_page_through_with_next_links(api: Api, five: list[str]) -> None:
    seen: list[str] = []
    url = f"{api.url}/backups/detail?limit=2"
    pages = 0
    while url:
        r = api.http.get(url)
        seen += _ids(r)
        links = r.json().get("backups_links", [])
        url = links[0]["href"] if links else ""
        pages += 1
    assert seen == five
    assert pages == 3


def test_the_next_link_keeps_the_query_and_sets_the_marker(api: Api, five: list[str]) -> None:
    r = api.get("/backups", params={"limit": 2, "sort": "name:asc"})
    (link,) = r.json()["backups_links"]
    assert link["rel"] == "next"
    parts = urlsplit(link["href"])
    assert parts.path == f"/v3/{api.project}/backups"
    assert parse_qs(parts.query) == {"limit": ["2"], "sort": ["name:asc"], "marker": [five[3]]}


def test_no_next_link_when_the_page_is_not_full(api: Api, five: list[str]) -> None:
    assert "backups_links" not in api.get("/backups", params={"limit": 10}).json()


def test_offset_skips_items(api: Api, five: list[str]) -> None:
    assert _ids(api.get("/backups", params={"offset": 3})) == five[3:]


def test_an_unknown_marker_is_404(api: Api, five: list[str]) -> None:
    r = api.get("/backups", params={"marker": "nope"})
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == "Backup nope could not be found."


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "x"}, "limit param must be an integer"),
        ({"limit": "-1"}, "limit param must be positive"),
        ({"offset": "x"}, "offset must be an integer"),
        ({"offset": "-1"}, "offset must be >= 0"),
        (
            {"sort": "name", "sort_key": "name"},
            "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with "
            "the 'sort' parameter.",
        ),
        (
            {"sort_dir": "up"},
            "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'.",
        ),
        (
            {"sort": "name:sideways"},
            "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'.",
        ),
        ({"all_tenants": "maybe"}, "all_tenants must be a boolean, got 'maybe'."),
        ({"with_count": "maybe"}, "Value 'maybe' for 'with_count' is not a boolean."),
    ],
)
def test_bad_list_parameters_are_400_with_cinders_message(
    api: Api, params: dict[str, str], message: str
) -> None:
    r = api.get("/backups", params=params)
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == message


def test_an_unknown_sort_key_is_400(api: Api, five: list[str]) -> None:
    r = api.get("/backups", params={"sort_key": "bogus"})
    assert r.status_code == 400


@pytest.mark.parametrize(
    "params",
    [{"sort": "name:asc"}, {"sort_key": "name", "sort_dir": "asc"}, {"sort": "display_name:asc"}],
)
def test_sorting_by_name(api: Api, five: list[str], params: dict[str, str]) -> None:
    names = [b["name"] for b in api.get("/backups", params=params).json()["backups"]]
    assert names == ["b0", "b1", "b2", "b3", "b4"]


def test_sorting_by_several_keys(api: Api, five: list[str]) -> None:
    r = api.get("/backups/detail", params={"sort": "volume_id:asc,name:desc"})
    rows = [(b["volume_id"], b["name"]) for b in r.json()["backups"]]
    assert rows == sorted(rows, key=lambda row: (row[0], [-ord(c) for c in row[1]]))


def test_exact_filters(api: Api, five: list[str]) -> None:
    assert [b["name"] for b in api.get("/backups", params={"name": "b3"}).json()["backups"]] == [
        "b3"
    ]
    volume_id = api.get(f"/backups/{five[0]}").json()["backup"]["volume_id"]
    by_volume = api.get("/backups/detail", params={"volume_id": volume_id}).json()["backups"]
    assert {b["name"] for b in by_volume} == {"b0", "b2", "b4"}
    assert len(api.get("/backups", params={"status": "available"}).json()["backups"]) == 5


def test_like_filters_need_3_34(api: Api, five: list[str]) -> None:
    r = api.get("/backups", params={"name~": "b"}, headers=api.at("3.34"))
    assert len(r.json()["backups"]) == 5
    # Below 3.34 `name~` is a column name no backup has: an admin's filter matches nothing.
    r = api.get("/backups", params={"name~": "b"}, headers=api.at("3.33"))
    assert r.json()["backups"] == []


def test_an_admin_filter_on_an_unknown_field_matches_nothing(api: Api, five: list[str]) -> None:
    r = api.get("/backups", params={"bogus": "1"})
    assert (r.status_code, r.json()["backups"]) == (200, [])


def test_with_count_adds_the_total_from_3_45(api: Api, five: list[str]) -> None:
    r = api.get("/backups", params={"with_count": "true", "limit": 2})
    assert r.json()["count"] == 5
    assert len(r.json()["backups"]) == 2
    r = api.get("/backups", params={"with_count": "true"}, headers=api.at("3.44"))
    assert "count" not in r.json()
    assert len(r.json()["backups"]) == 5


def test_with_count_adds_a_next_link_even_on_the_last_page(api: Api, five: list[str]) -> None:
    r = api.get("/backups", params={"with_count": "true", "limit": 2, "offset": 4})
    assert len(r.json()["backups"]) == 1
    assert "backups_links" in r.json()


def test_lists_are_scoped_to_the_project_unless_all_tenants(api: Api) -> None:
    mine = api.backup(api.volume())
    other = api.other_project()
    theirs = other.backup(other.volume())
    assert _ids(api.get("/backups")) == [mine]
    assert _ids(api.get("/backups", params={"all_tenants": "False"})) == [mine]
    everyone = _ids(api.get("/backups", params={"all_tenants": "1"}))
    assert {mine, theirs} <= set(everyone)
    other.http.close()


def test_volume_lists_page_and_filter_the_same_way(api: Api) -> None:
    ids = [api.volume(name=f"v{i}") for i in range(3)][::-1]
    assert _ids(api.get("/volumes"), "volumes") == ids
    r = api.get("/volumes/detail", params={"limit": 2, "with_count": "true"})
    assert _ids(r, "volumes") == ids[:2]
    assert r.json()["count"] == 3
    assert r.json()["volumes_links"][0]["href"].startswith(f"{api.url}/volumes/detail?")
    assert _ids(api.get("/volumes", params={"name": "v1"}), "volumes") == [ids[1]]


def test_volume_metadata_filters_are_refused(api: Api) -> None:
    r = api.get("/volumes", params={"metadata": "{'k': 'v'}"})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        "Invalid filters metadata are found in query options."
    )


# --- typed filters, NULL sort keys, any column for admins ---------------------------


def test_volume_lists_filter_on_size(api: Api) -> None:
    volume_id = api.volume(size=2)
    api.volume(size=1)
    assert _ids(api.get("/volumes", params={"size": "2"}), "volumes") == [volume_id]


def test_volume_lists_filter_on_bootable(api: Api) -> None:
    ids = [api.volume(name=f"v{i}") for i in range(2)][::-1]
    assert _ids(api.get("/volumes", params={"bootable": "false"}), "volumes") == ids


def test_paging_by_name_reaches_backups_without_a_name(api: Api) -> None:
    volume_id = api.volume()
    ids = {api.backup(volume_id, **({"name": "named"} if i == 1 else {})) for i in range(3)}
    seen: list[str] = []
    url = f"{api.url}/backups?sort=name:asc&limit=1"
    while url:
        r = api.http.get(url)
        seen += _ids(r)
        links = r.json().get("backups_links", [])
        url = links[0]["href"] if links else ""
    assert sorted(seen) == sorted(ids)


def test_an_admin_filter_on_fail_reason_filters(api: Api) -> None:
    backup_id = api.backup(api.volume())
    r = api.get("/backups", params={"fail_reason": "disk on fire"})
    assert (r.status_code, r.json()["backups"]) == (200, [])
    assert backup_id in _ids(api.get("/backups"))


def test_a_filter_value_of_the_wrong_type_is_refused(api: Api) -> None:
    r = api.get("/volumes", params={"size": "big"})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == "Invalid value 'big' for filter size."


def test_substring_filters_ignore_case_on_every_database(api: Api) -> None:
    backup_id = api.backup(api.volume(), name="Bee")
    assert _ids(api.get("/backups", params={"name~": "b"}, headers=api.at("3.34"))) == [backup_id]
