"""The container row as a lock for what changes a repository outside the index."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ashbox.db.engine import Database
from ashbox.db.index_sql import lock


@contextmanager
def container_locked(db: Database, container: str) -> Iterator[None]:
    """Hold the container's row lock for the block. A key slot change reads the
    repository's config, derives a key and writes the config back; the store
    has no compare-and-swap, so two at once lost one of them. Under this lock
    they take turns (on SQLite the whole database's write lock: a fraction of
    a second, for a command run by hand)."""
    with db.connection() as conn:
        lock(conn, container)
        yield
