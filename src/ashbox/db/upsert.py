"""INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert

_STATEMENTS: dict[tuple[str, str], Insert] = {}


def insert_ignore(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert the rows (one executemany, every row with the same keys); those
    whose primary key exists already are skipped."""
    if not rows:
        return
    conn.execute(ignoring_insert(conn.dialect.name, table), list(rows))


def insert_one_ignore(conn: Connection, table: Table, row: Mapping[str, Any]) -> bool:
    """Insert the row unless its primary key exists; whether it was inserted
    (told by RETURNING: psycopg reports no rowcount for it)."""
    key = next(iter(table.primary_key.columns))
    stmt = ignoring_insert(conn.dialect.name, table).returning(key)
    return conn.execute(stmt, dict(row)).first() is not None


def ignoring_insert(dialect: str, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING into `table`, for values or (with
    `.from_select`) a query. One statement per dialect and table, built once,
    so its compiled form is cached by the engine."""
    key = (dialect, table.name)
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        module = postgresql if dialect == "postgresql" else sqlite
        stmt = _STATEMENTS[key] = module.insert(table).on_conflict_do_nothing()
    return stmt
