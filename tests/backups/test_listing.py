"""Lists: filters, sort, markers, limits and counts (CINDER-CONTRACT §1.5)."""

from __future__ import annotations

import pytest

from ashbox.errors import BackupNotFound, InvalidInput
from ashbox.records import ListQuery, RequestContext
from tests.harness import Harness


def _backups(harness: Harness, n: int) -> list[str]:
    ids = []
    for i in range(n):
        vid = harness.create_volume(f"v{i}")
        ids.append(harness.service.create_backup(harness.ctx, volume_id=vid, name=f"b{i}").id)
    return ids


def test_backups_list_newest_first_and_page_by_marker(harness: Harness) -> None:
    ids = _backups(harness, 5)
    page, total = harness.service.list_backups(harness.ctx, ListQuery(limit=2))
    assert total == 5 and [b.id for b in page] == ids[::-1][:2]
    rest, _ = harness.service.list_backups(harness.ctx, ListQuery(marker=page[-1].id))
    assert [b.id for b in rest] == ids[::-1][2:]


def test_backups_filter_exactly_or_by_substring_and_sort_by_name(harness: Harness) -> None:
    _backups(harness, 3)
    exact, _ = harness.service.list_backups(harness.ctx, ListQuery(filters={"name": "b1"}))
    assert [b.name for b in exact] == ["b1"]
    like, _ = harness.service.list_backups(harness.ctx, ListQuery(like_filters={"name": "b"}))
    assert len(like) == 3
    by_name, _ = harness.service.list_backups(harness.ctx, ListQuery(sort=[("name", "asc")]))
    assert [b.name for b in by_name] == ["b0", "b1", "b2"]


def test_bad_sort_keys_and_unknown_markers_are_refused(harness: Harness) -> None:
    _backups(harness, 1)
    with pytest.raises(InvalidInput, match="Invalid sort key"):
        harness.service.list_backups(harness.ctx, ListQuery(sort=[("colour", "asc")]))
    with pytest.raises(BackupNotFound):
        harness.service.list_backups(harness.ctx, ListQuery(marker="nope"))


def test_projects_see_only_their_backups_unless_admin_asks_for_all(harness: Harness) -> None:
    _backups(harness, 2)
    other = RequestContext(user_id="u2", project_id="p2", roles=("member", "reader"))
    assert harness.service.list_backups(other, ListQuery())[1] == 0
    admin = RequestContext(user_id="a", project_id="p9", is_admin=True, roles=("admin",))
    assert harness.service.list_backups(admin, ListQuery(all_tenants=True))[1] == 2
    assert harness.service.list_backups(admin, ListQuery())[1] == 0
