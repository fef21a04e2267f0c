"""A database that cannot grow answers DatabaseUnavailable (503), changes
nothing, and works again once it can grow: it never wedges."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from ashbox.db.engine import Database
from ashbox.errors import DatabaseUnavailable
from ashbox.records import ListQuery
from ashbox.statuses import BackupStatus, VolumeStatus
from tests.harness import Harness


@pytest.fixture
def full_sqlite(tmp_path: Path) -> Iterator[tuple[Database, list[int]]]:
    """A real SQLite database whose size limit the test sets (PRAGMA
    max_page_count: SQLite's own 'database or disk is full', SQLITE_FULL)."""
    db = Database(f"sqlite:///{tmp_path / 'ashbox.db'}")
    db.migrate()
    limit = [0]  # 0: no limit

    def on_begin(conn: Any) -> None:
        pages = limit[0] or 1073741823
        conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")

    event.listen(db.engine, "begin", on_begin)
    yield db, limit
    db.dispose()


def test_a_full_database_is_unavailable_then_recovers(
    full_sqlite: tuple[Database, list[int]], tmp_path: Path
) -> None:
    db, limit = full_sqlite
    h = Harness(db, tmp_path)
    volume_id = h.import_image("v.raw", b"x" * 300_000)
    with db.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    limit[0] = int(pages)  # not one page more
    made = 0
    with pytest.raises(DatabaseUnavailable, match="disk is full"):
        for i in range(500):  # the first writes may fit in the pages' free room
            h.service.create_volume(h.ctx, size=1, name=f"filler-{i}" + "x" * 200)
            made += 1
    volumes = h.service.list_volumes(h.ctx, ListQuery(limit=1000))[0]
    assert len(volumes) == made + 1  # the refused request left nothing
    assert h.service.get_volume(h.ctx, volume_id).status == VolumeStatus.AVAILABLE
    limit[0] = 0
    backup_id = h.backup(volume_id)
    assert h.service.get_backup(h.ctx, backup_id).status == BackupStatus.AVAILABLE
