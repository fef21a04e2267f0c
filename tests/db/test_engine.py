"""Database transactions on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select, text

from ashbox.db.engine import HEAD_REVISION, Database
from ashbox.db.models import Container
from ashbox.errors import InvalidInput


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


def test_head_revision_names_the_newest_migration(db: Database) -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(db._alembic_config()).get_current_head() == HEAD_REVISION
    assert db.revision() == HEAD_REVISION  # the fixture migrated it


def test_an_empty_database_has_no_revision_until_migrated(tmp_path: Path) -> None:
    fresh = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert fresh.revision() is None
        fresh.migrate()
        assert fresh.revision() == HEAD_REVISION
        fresh.migrate()  # up to date: nothing to do
    finally:
        fresh.dispose()


def test_the_migrated_schema_is_the_models_schema(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ashbox.db.models import Base

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_a_restore_queued_before_generic_tasks_keeps_its_target(database_url: str) -> None:
    from alembic import command
    from sqlalchemy import text

    old = Database(database_url)
    try:
        command.upgrade(old._alembic_config(), "0002")
        with old.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tasks (id, kind, state, backup_id, volume_id, volume_is_new, "
                    "attempts, max_attempts, done_bytes, total_bytes, created_at) VALUES "
                    "('t1', 'restore_backup', 'pending', 'b1', 'v1', :new, 0, 3, 0, 0, "
                    ":now)"
                ),
                {"new": True, "now": "2026-01-01 00:00:00+00:00"},
            )
        old.migrate()
        with old.transaction() as s:
            from ashbox.db.models import Task

            task = s.get(Task, "t1")
            assert task is not None
            assert (task.resource_type, task.resource_id) == ("backup", "b1")
            assert task.payload == {"volume_id": "v1", "volume_is_new": True}
    finally:
        old.dispose()


def test_a_schema_of_another_version_is_refused_with_what_to_run(database_url: str) -> None:
    db = Database(database_url)
    try:
        with pytest.raises(InvalidInput, match=r"\(none: an empty database\).*ashbox db upgrade"):
            db.check_schema()
        db.migrate()
        db.check_schema()
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(InvalidInput, match="newer than this ashbox's"):
            db.check_schema()
    finally:
        db.dispose()


def test_a_postgresql_server_that_cannot_be_reached_is_unavailable_for_now() -> None:
    from sqlalchemy import text

    from ashbox.errors import DatabaseUnavailable
    from tests.conftest import free_port

    db = Database(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    try:
        with pytest.raises(DatabaseUnavailable, match="cannot be reached"), db.reading() as s:
            s.execute(text("SELECT 1"))
        with pytest.raises(DatabaseUnavailable), db.transaction() as s:
            s.execute(text("SELECT 1"))
    finally:
        db.dispose()


def test_a_driver_cursors_lost_connection_is_unavailable_and_other_errors_pass(
    db: Database,
) -> None:
    """index_sql runs statements on the driver's own cursor, whose errors SQLAlchemy
    does not wrap: a lost server is still a 503, anything else stays what it is."""
    import sqlite3

    import psycopg

    from ashbox.errors import DatabaseUnavailable

    with pytest.raises(DatabaseUnavailable, match="cannot be reached"), db.autocommit():
        raise psycopg.OperationalError("server closed the connection unexpectedly")
    with pytest.raises(DatabaseUnavailable), db.connection():
        raise psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    with pytest.raises(sqlite3.IntegrityError), db.connection():
        raise sqlite3.IntegrityError("UNIQUE constraint failed")
    with pytest.raises(psycopg.errors.UniqueViolation), db.connection():
        raise psycopg.errors.UniqueViolation("duplicate key")
