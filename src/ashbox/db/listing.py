"""Filters, sort and pagination of list requests (CINDER-CONTRACT §1.5), for any model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from ashbox.backups.records import ListQuery
from ashbox.errors import InvalidInput


def list_page(
    s: Session,
    stmt: Select[Any],
    columns: Mapping[str, InstrumentedAttribute[Any]],
    query: ListQuery,
    *,
    id_column: InstrumentedAttribute[Any],
    marker_row: Any | None,
) -> tuple[list[Any], int]:
    """Rows of one page of `stmt` and the count of all matching rows.

    `columns` maps record field names to columns; `marker_row` is the row of
    `query.marker`, already loaded by the caller (which raises its NotFound).
    """
    for name, value in query.filters.items():
        stmt = stmt.where(_column(columns, name) == value)
    for name, value in query.like_filters.items():
        stmt = stmt.where(_column(columns, name).like(f"%{value}%"))
    total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    keys = [(_column(columns, k), d) for k, d in query.sort] + [(id_column, "asc")]
    for _, direction in keys:
        if direction not in ("asc", "desc"):
            raise InvalidInput(f"Invalid sort direction {direction}")
    if marker_row is not None:
        stmt = stmt.where(_after(keys, marker_row))
    stmt = stmt.order_by(*[c.desc() if d == "desc" else c.asc() for c, d in keys])
    if query.offset:
        stmt = stmt.offset(query.offset)
    if query.limit is not None:
        stmt = stmt.limit(query.limit)
    return list(s.scalars(stmt)), total


def _column(
    columns: Mapping[str, InstrumentedAttribute[Any]], name: str
) -> InstrumentedAttribute[Any]:
    try:
        return columns[name]
    except KeyError:
        raise InvalidInput(f"Invalid sort key {name}") from None


def _after(keys: list[tuple[InstrumentedAttribute[Any], str]], row: Any) -> Any:
    """Rows strictly after `row` in the sort order (keyset pagination)."""
    clauses = []
    for i, (col, direction) in enumerate(keys):
        value = getattr(row, col.key)
        equal_before = [c == getattr(row, c.key) for c, _ in keys[:i]]
        beyond = col < value if direction == "desc" else col > value
        clauses.append(and_(*equal_before, beyond))
    return or_(*clauses)
