"""Filters, sort and pagination of list requests (CINDER-CONTRACT §1.5), for any model.

Filter values arrive as strings and are converted to the column's type.
NULLs sort first ascending and last descending on SQLite and PostgreSQL
alike, and the keyset marker handles them, so every row is on some page.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    Select,
    String,
    and_,
    cast,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator

from ashbox.errors import InvalidInput
from ashbox.records import ListQuery

_TRUE = {"true", "1", "on", "yes", "y", "t"}
_FALSE = {"false", "0", "off", "no", "n", "f"}


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
    for name, raw in query.filters.items():
        column = _filter_column(columns, name)
        stmt = stmt.where(column == _typed(column, name, raw))
    for name, raw in query.like_filters.items():
        stmt = stmt.where(_as_text(_filter_column(columns, name)).ilike(f"%{raw}%"))
    total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    keys = [(_sort_column(columns, k), d) for k, d in query.sort] + [(id_column, "asc")]
    for _, direction in keys:
        if direction not in ("asc", "desc"):
            raise InvalidInput(f"Invalid sort direction {direction}")
    if marker_row is not None:
        stmt = stmt.where(_after(keys, marker_row))
    stmt = stmt.order_by(
        *[c.desc().nulls_last() if d == "desc" else c.asc().nulls_first() for c, d in keys]
    )
    if query.offset:
        stmt = stmt.offset(query.offset)
    if query.limit is not None:
        stmt = stmt.limit(query.limit)
    return list(s.scalars(stmt)), total


def _sort_column(
    columns: Mapping[str, InstrumentedAttribute[Any]], name: str
) -> InstrumentedAttribute[Any]:
    if name not in columns:
        raise InvalidInput(f"Invalid sort key {name}")
    return columns[name]


def _filter_column(
    columns: Mapping[str, InstrumentedAttribute[Any]], name: str
) -> InstrumentedAttribute[Any]:
    if name not in columns:
        raise InvalidInput(f"Invalid filters {name} are found in query options.")
    return columns[name]


def _as_text(column: InstrumentedAttribute[Any]) -> InstrumentedAttribute[Any] | ColumnElement[Any]:
    """The column as text, for a substring filter: a time, a number or a boolean
    is matched in its text form, as MySQL does for Cinder (binding the pattern
    as a time was a 500)."""
    return column if isinstance(column.type, String) else cast(column, String)


def _typed(column: InstrumentedAttribute[Any], name: str, raw: str) -> Any:
    """The filter value `raw` as the column's Python type; InvalidInput if it is not one."""
    kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
    try:
        if isinstance(kind, Boolean):
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise ValueError(raw)
        if isinstance(kind, Integer):
            return int(raw)
        if isinstance(kind, DateTime):
            value = datetime.fromisoformat(raw)
            return value if value.tzinfo else value.replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput(f"Invalid value {raw!r} for filter {name}.") from None
    return raw


def _after(keys: list[tuple[InstrumentedAttribute[Any], str]], row: Any) -> ColumnElement[bool]:
    """Rows strictly after `row` in the sort order (keyset pagination), NULLs included."""
    clauses = []
    for i, (col, direction) in enumerate(keys):
        equal_before = [_equal(c, getattr(row, c.key)) for c, _ in keys[:i]]
        clauses.append(and_(*equal_before, _beyond(col, getattr(row, col.key), direction)))
    return or_(*clauses)


def _equal(col: InstrumentedAttribute[Any], value: Any) -> ColumnElement[bool]:
    return col.is_(None) if value is None else col == _bound(col, value)


def _beyond(col: InstrumentedAttribute[Any], value: Any, direction: str) -> ColumnElement[bool]:
    """Values after `value`: ascending puts NULLs first, descending puts them last."""
    if direction == "asc":
        return col.is_not(None) if value is None else (col > _bound(col, value))
    if value is None:
        return false()
    return or_(col < _bound(col, value), col.is_(None))


def _bound(col: InstrumentedAttribute[Any], value: Any) -> Any:
    """`value` as a bound parameter: SQLAlchemy refuses `<` and `>` against a bare
    True or False, so a marker on a boolean sort key was a 500."""
    return literal(value, col.type)
