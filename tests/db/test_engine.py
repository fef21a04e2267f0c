"""Database transactions on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from sqlalchemy import select

from ashbox.db.engine import Database
from ashbox.db.models import Container


def test_a_read_sees_committed_rows_while_a_writer_holds_the_lock(db: Database) -> None:
    with db.transaction() as s:
        s.add(Container(name="before"))
    names: list[list[str]] = []

    def read() -> None:
        with db.reading() as s:
            names.append(list(s.scalars(select(Container.name))))

    with db.transaction() as s:  # on SQLite: BEGIN IMMEDIATE, the write lock
        s.add(Container(name="uncommitted"))
        s.flush()
        reader = threading.Thread(target=read)
        reader.start()
        reader.join(timeout=10)
        waited = reader.is_alive()
    reader.join()
    assert not waited, "a read waited for the writer"
    assert names == [["before"]]
