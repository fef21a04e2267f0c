"""User-message rows (ashbox.db.messages) and their periodic reaping, on SQLite
and PostgreSQL."""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from ashbox.config import Settings
from ashbox.db import messages
from ashbox.db.engine import Database
from ashbox.db.models import Message
from ashbox.records import ListQuery
from ashbox.user_messages import Action, Detail, Resource
from ashbox.worker.periodic import reap_messages

_REQUEST_ID = re.compile(
    r"^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)


def _add(db: Database, project: str = "p1", **fields: object) -> str:
    spec: dict[str, object] = {
        "resource_type": Resource.VOLUME_BACKUP,
        "resource_uuid": str(uuid.uuid4()),
        "action_id": Action.BACKUP_DELETE.id,
        "detail_id": Detail.BACKUP_DELETE_DRIVER_ERROR.id,
        **fields,
    }
    with db.transaction() as s:
        return messages.add(s, project_id=project, **spec)  # type: ignore[arg-type]


def _age(db: Database, message_id: str, age: timedelta) -> None:
    with db.transaction() as s:
        s.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(created_at=datetime.now(UTC) - age)
        )


def _count(db: Database) -> int:
    with db.reading() as s:
        return int(s.scalar(select(func.count()).select_from(Message)) or 0)


def test_add_writes_the_row_in_the_callers_transaction(db: Database) -> None:
    before = datetime.now(UTC)
    message_id = _add(db, request_id="req-given", level="WARNING")
    with db.reading() as s:
        row = messages.get(s, message_id)
        assert row is not None
        assert (row.project_id, row.request_id, row.message_level) == ("p1", "req-given", "WARNING")
        assert (row.resource_type, row.action_id, row.detail_id) == ("VOLUME_BACKUP", "014", "025")
        assert row.event_id == "VOLUME_VOLUME_BACKUP_014_025"
        assert before <= row.created_at <= datetime.now(UTC)
    with pytest.raises(RuntimeError), db.transaction() as s:
        messages.add(
            s,
            project_id="p1",
            resource_type=Resource.VOLUME,
            resource_uuid=None,
            action_id="001",
            detail_id="001",
        )
        raise RuntimeError("the transition failed")
    assert _count(db) == 1  # nothing committed by add itself


def test_without_a_request_id_one_is_made_and_the_level_is_error(db: Database) -> None:
    first, second = _add(db), _add(db)
    with db.reading() as s:
        made = [messages.get(s, m) for m in (first, second)]
    request_ids = {m.request_id for m in made if m is not None and m.message_level == "ERROR"}
    assert len(request_ids) == 2
    assert all(_REQUEST_ID.match(r) for r in request_ids)


def test_a_list_is_one_projects_or_every_projects_filtered_and_paged(db: Database) -> None:
    ids = [_add(db, "p1") for _ in range(3)]
    theirs = _add(db, "p2", resource_type=Resource.VOLUME)
    for i, message_id in enumerate([*ids, theirs]):
        _age(db, message_id, timedelta(hours=10 - i))
    with db.reading() as s:
        rows, total = messages.list_messages(s, "p1", ListQuery(), None)
        assert ([r.id for r in rows], total) == (ids[::-1], 3)
        rows, total = messages.list_messages(s, None, ListQuery(), None)
        assert ([r.id for r in rows], total) == ([theirs, *ids[::-1]], 4)
        query = ListQuery(filters={"resource_type": "VOLUME"})
        assert [r.id for r in messages.list_messages(s, None, query, None)[0]] == [theirs]
        query = ListQuery(sort=[("created_at", "asc")], limit=2)
        marker = messages.get(s, ids[0])
        rows, _ = messages.list_messages(s, "p1", query, marker)
        assert [r.id for r in rows] == ids[1:]


def test_delete_removes_one_message(db: Database) -> None:
    gone, kept = _add(db), _add(db)
    with db.transaction() as s:
        assert messages.delete(s, gone) is True
        assert messages.delete(s, gone) is False
    with db.reading() as s:
        assert messages.get(s, gone) is None
        assert messages.get(s, kept) is not None


def test_reap_removes_only_the_messages_written_before_the_time(db: Database) -> None:
    old, young = _add(db), _add(db)
    _age(db, old, timedelta(days=31))
    _age(db, young, timedelta(days=29))
    with db.transaction() as s:
        assert messages.reap(s, datetime.now(UTC) - timedelta(days=30)) == 1
    with db.reading() as s:
        assert messages.get(s, old) is None
        assert messages.get(s, young) is not None


def test_the_workers_reap_goes_by_message_ttl(db: Database) -> None:
    expired, alive = _add(db), _add(db, "p2")
    _age(db, expired, timedelta(seconds=120))
    _age(db, alive, timedelta(seconds=30))
    reap_messages(db, dataclasses.replace(Settings(), message_ttl=60))
    with db.reading() as s:
        assert messages.get(s, expired) is None
        assert messages.get(s, alive) is not None
    reap_messages(db, Settings())  # 30 days: nothing more is old enough
    assert _count(db) == 1


def test_a_started_worker_reaps_at_once_then_every_reap_interval(tmp_path: Path) -> None:
    from tests.api.conftest import running_stack

    url = f"sqlite:///{tmp_path / 'ashbox.db'}"
    db = Database(url)
    db.migrate()
    expired, alive = _add(db), _add(db)
    _age(db, expired, timedelta(seconds=120))
    try:
        with running_stack("sqlite", tmp_path, url, message_ttl=60):
            deadline = time.monotonic() + 30
            while _count(db) > 1:
                assert time.monotonic() < deadline, "the worker did not reap at its start"
                time.sleep(0.05)
            later = _add(db)
            _age(db, later, timedelta(seconds=120))
            time.sleep(2.5)  # two ticks: the next reap is message_reap_interval away
            assert _count(db) == 2
        with db.reading() as s:
            assert messages.get(s, alive) is not None
    finally:
        db.dispose()
