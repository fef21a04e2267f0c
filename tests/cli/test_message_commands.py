"""`ashbox message list|show|delete` against a real `ashbox serve`, the messages
written into its database as a failure path writes them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ashbox.db import messages
from ashbox.db.engine import Database
from ashbox.user_messages import Action, Detail, Resource
from tests.cli.test_end_to_end import _serve

pytestmark = pytest.mark.integration


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    """The URL of an `ashbox serve`, and its database."""
    serving = _serve(tmp_path, signal.SIGINT)
    url = next(serving)
    db = Database(f"sqlite:///{(tmp_path / 'data' / 'ashbox.db').resolve()}")
    try:
        yield url, db
    finally:
        db.dispose()
        with pytest.raises(StopIteration):
            next(serving)  # stops the service, and checks it stopped cleanly


def _run(url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASHBOX_URL": url}
    env.pop("ASHBOX_TOKEN", None)  # noauth's admin:admin
    return subprocess.run(
        [sys.executable, "-m", "ashbox.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _json(url: str, *argv: str) -> Any:
    done = _run(url, *argv, "-f", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_messages_are_listed_filtered_shown_and_deleted_from_the_command(
    served: tuple[str, Database],
) -> None:
    url, db = served
    backup_id, volume_id = str(uuid.uuid4()), str(uuid.uuid4())
    with db.transaction() as s:
        create = messages.add(
            s,
            project_id="admin",
            resource_type=Resource.VOLUME_BACKUP,
            resource_uuid=backup_id,
            action_id=Action.BACKUP_CREATE.id,
            detail_id=Detail.BACKUP_CREATE_DRIVER_ERROR.id,
        )
        restore = messages.add(
            s,
            project_id="p2",
            resource_type=Resource.VOLUME,
            resource_uuid=volume_id,
            action_id=Action.BACKUP_RESTORE.id,
            detail_id=Detail.VOLUME_INVALID_STATE.id,
            level="WARNING",
            request_id="req-restore",
        )
    assert {m["id"] for m in _json(url, "message", "list")} == {
        create,
        restore,
    }  # noauth callers are admins
    by_uuid = _json(url, "message", "list", "--resource-uuid", backup_id)
    assert [m["id"] for m in by_uuid] == [create]
    for flags in (
        ["--resource-type", "VOLUME"],
        ["--event-id", "VOLUME_VOLUME_015_027"],
        ["--request-id", "req-restore"],
        ["--level", "WARNING"],
    ):
        assert [m["id"] for m in _json(url, "message", "list", *flags)] == [restore], flags
    shown = _json(url, "message", "show", create)
    assert shown["user_message"] == "create backup:Backup driver failed to create backup."
    assert shown["event_id"] == "VOLUME_VOLUME_BACKUP_013_020"
    table = _run(url, "message", "list")
    assert table.returncode == 0, table.stderr
    assert "restore backup:Volume status is invalid." in table.stdout
    done = _run(url, "message", "delete", create)
    assert (done.returncode, done.stdout) == (0, "")
    done = _run(url, "message", "show", create)
    assert done.returncode == 3  # not found
    assert f"error: Message {create} could not be found." in done.stderr
    assert [m["id"] for m in _json(url, "message", "list")] == [restore]
