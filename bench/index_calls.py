"""What the database index costs per call on a backup's hot path: `reuse`, `locate`,
`begin_pack` and `commit_pack`, as the writer calls them (docs/format.md §8 step 3-4).

A fresh index (SQLite in a temp dir; with `--pg URL`, also a fresh database on
that PostgreSQL server) is loaded with a parent backup's blobs (1 in 8 a page
delta; PostgreSQL then analyzes it, as autovacuum would); then a backup runs
`--batches` batches: `reuse` of 16 ids that miss, `reuse` of 16 that hit,
`locate` of 16, and every 4 batches `begin_pack` and `commit_pack` of 30
entries. Prints the median and 90th percentile ms per call.

Run: `.venv/bin/python bench/index_calls.py [--batches 250] [--pg postgresql://...]`
(tests/conftest.py shows how to start a throwaway PostgreSQL server).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.repository.index import BlobLocation

_C = "volumebackups"
_IDS = 16
_PACK_ENTRIES = 30
_PARENT_BLOBS = 4800
_T = TypeVar("_T")


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--batches", type=int, default=250)
    args.add_argument("--pg", metavar="URL", help="a PostgreSQL server (no database name)")
    args.add_argument("--seed", type=int, default=1)
    opts = args.parse_args()
    with tempfile.TemporaryDirectory(prefix="ashbox-bench-") as tmp:
        run("sqlite", f"sqlite:///{Path(tmp) / 'ashbox.db'}", opts.batches, opts.seed)
    if opts.pg:
        url, drop = fresh_postgres_database(opts.pg)
        try:
            run("postgresql", url, opts.batches, opts.seed)
        finally:
            drop()


def run(name: str, url: str, batches: int, seed: int) -> None:
    db = Database(url)
    db.migrate()
    try:
        index = DbIndex(db)
        index.ensure_container(_C)
        rng = random.Random(seed)
        parent = _load_parent(index, rng)
        if not db.is_sqlite:  # the statistics autovacuum would have gathered by now
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        times: dict[str, list[float]] = {
            "reuse (miss)": [],
            "reuse (hit)": [],
            "locate": [],
            "begin_pack": [],
            "commit_pack": [],
        }

        def timed(method: str, call: Callable[..., _T], *args: Any) -> _T:
            started = time.perf_counter()
            out = call(*args)
            times[method].append(time.perf_counter() - started)
            return out

        new: list[bytes] = []
        for batch in range(batches):
            misses = [rng.randbytes(32) for _ in range(_IDS)]
            hits = rng.sample(parent, _IDS)
            found = timed("reuse (miss)", index.reuse, _C, "b1", misses)
            assert not found, "a random id hit"
            found = timed("reuse (hit)", index.reuse, _C, "b1", hits)
            assert len(found) == _IDS, "a stored id missed"
            timed("locate", index.locate, _C, hits)
            new.extend(misses)
            if batch % 4 == 3:
                pack_id = uuid.uuid4().hex
                entries = _entries(new[:_PACK_ENTRIES], hits[0])
                del new[:_PACK_ENTRIES]
                timed("begin_pack", index.begin_pack, _C, pack_id, "b1")
                timed("commit_pack", index.commit_pack, _C, pack_id, 32 << 20, entries, "b1")
        print(f"{name}: {batches} batches, ms per call (median, p90, calls)")
        for method, samples in times.items():
            ms = sorted(t * 1000 for t in samples)
            p90 = ms[int(len(ms) * 0.9)]
            print(f"  {method:13} {statistics.median(ms):7.3f} {p90:7.3f} {len(ms):5}")
    finally:
        db.dispose()


def _load_parent(index: DbIndex, rng: random.Random) -> list[bytes]:
    """The parent backup's blobs, in packs of `_PACK_ENTRIES`, 1 in 8 a delta."""
    ids = [rng.randbytes(32) for _ in range(_PARENT_BLOBS)]
    for start in range(0, len(ids), _PACK_ENTRIES):
        pack_id = uuid.uuid4().hex
        index.begin_pack(_C, pack_id, "b0")
        chunk = ids[start : start + _PACK_ENTRIES]
        entries = _entries(chunk, ids[0])
        index.commit_pack(_C, pack_id, 32 << 20, entries, "b0")
    return ids


def _entries(ids: list[bytes], base: bytes) -> list[BlobLocation]:
    return [
        BlobLocation(
            blob_id=b,
            pack_id="",
            offset=i << 20,
            length=1 << 19,
            raw_length=1 << 20,
            flags=1,
            base_id=base if i % 8 == 7 and b != base else None,
        )
        for i, b in enumerate(ids)
    ]


def fresh_postgres_database(server: str) -> tuple[str, Callable[[], None]]:
    import psycopg

    server = server.rstrip("/").replace("postgresql+psycopg://", "postgresql://")
    name = f"bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(server + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}"')

    return f"{server}/{name}", drop


if __name__ == "__main__":
    main()
