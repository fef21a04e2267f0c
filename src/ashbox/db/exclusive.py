"""Deployment-wide exclusive locks that die with their holder.

On PostgreSQL a session advisory lock on a connection of its own, held (outside
any transaction) while the work runs: a process killed with it closes its
connection, and the server releases it. On SQLite, whose deployments are one
host, a `flock` on a file beside the database, which the kernel releases when
the process dies. Neither can be left behind by a crash.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from ashbox.db.engine import Database

GC_LOCK = "gc"


@contextmanager
def exclusive(db: Database, name: str) -> Iterator[bool]:
    """Run the block holding lock `name` if no other process holds it; yields whether
    this one got it (the block runs either way, and should do nothing if not)."""
    if db.is_sqlite:
        with _file_lock(db, name) as held:
            yield held
        return
    key = int.from_bytes(hashlib.sha256(f"ashbox:{name}".encode()).digest()[:8], "big", signed=True)
    with db.autocommit() as conn:
        held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
        try:
            yield held
        finally:
            if held:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@contextmanager
def _file_lock(db: Database, name: str) -> Iterator[bool]:
    database = db.url.removeprefix("sqlite:///")
    if database in ("", ":memory:") or database == db.url:
        yield True  # a database in memory has one process
        return
    path = Path(f"{database}.{name}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
