"""INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ashbox.db.models import Base


def insert_ignore(s: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert the rows; those whose primary key exists already are skipped."""
    if not rows:
        return
    dialect = s.get_bind().dialect.name
    stmt = (postgresql if dialect == "postgresql" else sqlite).insert(model)
    s.execute(stmt.on_conflict_do_nothing(), list(rows))
