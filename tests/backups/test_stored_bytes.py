"""Stored bytes are counted within the project: a tenant's figures never show
that another tenant holds the same data (ashbox.db.stored_bytes)."""

from __future__ import annotations

import dataclasses
import os

from ashbox.db import stored_bytes
from ashbox.policy import with_implied_roles
from ashbox.records import RequestContext
from tests.harness import Harness

DATA = os.urandom(512 * 1024)


def _other_project(harness: Harness) -> RequestContext:
    return RequestContext(
        user_id="u2", project_id="p2", is_admin=True, roles=with_implied_roles(["admin"])
    )


def _backup_as(harness: Harness, ctx: RequestContext, name: str, **kw: object) -> str:
    path = harness.image(name, DATA) if not (harness.root / name).exists() else harness.root / name
    volume_id = harness.service.import_volume(ctx, path=str(path), name=name).id
    harness.run_tasks()
    backup = harness.service.create_backup(ctx, volume_id=volume_id, **kw)  # type: ignore[arg-type]
    harness.run_tasks()
    return backup.id


def _stored(harness: Harness, ctx: RequestContext, backup_id: str) -> int:
    return harness.service.get_backup(ctx, backup_id).stored_size


def test_a_second_project_s_same_data_counts_as_its_own(harness: Harness) -> None:
    first = _backup_as(harness, harness.ctx, "a.raw")
    other = _other_project(harness)
    second = _backup_as(harness, other, "b.raw")
    # The second backup uploaded nothing (the blocks were there), yet its figure
    # is the first one's: p2 cannot tell that p1 holds the same data.
    assert _stored(harness, harness.ctx, first) > 0
    assert _stored(harness, other, second) == _stored(harness, harness.ctx, first)
    with harness.db.reading() as s:
        assert stored_bytes.of_project(s, "p2") == stored_bytes.of_project(s, "p1")
        assert stored_bytes.of_project(s, "p1") == _stored(harness, harness.ctx, first)


def test_within_a_project_shared_blocks_count_once(harness: Harness) -> None:
    vid = harness.import_image("v.raw", DATA)
    full = harness.backup(vid)
    with (harness.root / "v.raw").open("r+b") as f:
        f.write(os.urandom(64 * 1024))
    incremental = harness.backup(vid, incremental=True)
    again = harness.backup(vid)  # a full backup of the same data: nothing of its own
    full_size = _stored(harness, harness.ctx, full)
    incremental_size = _stored(harness, harness.ctx, incremental)
    assert 0 < incremental_size < full_size // 4
    assert _stored(harness, harness.ctx, again) == 0
    with harness.db.reading() as s:
        assert stored_bytes.of_project(s, "p1") == full_size + incremental_size
    harness.service.delete_backup(harness.ctx, again)
    harness.run_tasks()
    with harness.db.reading() as s:
        assert stored_bytes.of_project(s, "p1") == full_size + incremental_size
        assert stored_bytes.of_project(s, "nobody") == 0


def test_limits_tell_the_project_s_stored_bytes(harness: Harness) -> None:
    first = _backup_as(harness, harness.ctx, "a.raw")
    assert harness.service.stored_bytes(harness.ctx) == _stored(harness, harness.ctx, first)
    member = dataclasses.replace(
        _other_project(harness), is_admin=False, roles=with_implied_roles(["member"])
    )
    # A member asking for another project gets its own, as `limits` does.
    assert harness.service.stored_bytes(member, project_id="p1") == 0
