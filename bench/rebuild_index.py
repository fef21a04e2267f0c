"""What `repo rebuild-index` holds in memory: a store of many packs, rebuilt from scratch.

Writes (once, into --dir) a posix store of --packs packs, each listing
--entries blobs of one byte in its trailer (the rebuild reads only
trailers), then rebuilds a fresh SQLite index from it and prints the wall
time and the process's peak RSS. No manifest names the blobs, so every pack
ends dead: the figure is the packs' side of the rebuild.

Run: `.venv/bin/python bench/rebuild_index.py [--packs 2000] [--entries 500]
[--pg postgresql://...]`; with `--pg` the index is a fresh database on that
PostgreSQL server instead (tests/conftest.py shows how to start one).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from index_calls import fresh_postgres_database

from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.repository.pack import HEADER, PackEntry, encode_trailer, pack_key
from ashbox.repository.rebuild import rebuild_index
from ashbox.repository.repository import Repository
from ashbox.storage import open_store

CONTAINER = "volumebackups"


def make_store(root: Path, packs: int, entries: int) -> None:
    store = open_store(f"file://{root}")
    for _ in range(packs):
        listed = [PackEntry(os.urandom(32), len(HEADER) + i, 1, 1, 0) for i in range(entries)]
        data = HEADER + b"x" * entries + encode_trailer(listed)
        store.put(pack_key(CONTAINER, os.urandom(32).hex()), data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packs", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=500, help="blobs listed by each pack")
    parser.add_argument("--dir", type=Path, help="where the store is kept (default: a temp dir)")
    parser.add_argument("--pg", metavar="URL", help="a PostgreSQL server (no database name)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rebuild-") as tmp:
        root = args.dir or Path(tmp)
        store_dir = root / f"store-{args.packs}x{args.entries}"
        if not store_dir.exists():
            make_store(store_dir, args.packs, args.entries)
        if args.pg:
            url, drop = fresh_postgres_database(args.pg)
        else:
            (root / "index.db").unlink(missing_ok=True)
            url, drop = f"sqlite:///{root / 'index.db'}", _nothing
        try:
            wall, peak, before, packs = rebuild(url, store_dir)
        finally:
            drop()
    print(
        f"{'PostgreSQL' if args.pg else 'SQLite'}: {packs} packs listing "
        f"{args.packs * args.entries} blobs rebuilt in {wall:.1f} s; "
        f"peak RSS {peak} MiB ({before} MiB before the rebuild)"
    )


def rebuild(url: str, store_dir: Path) -> tuple[float, int, int, int]:
    """Wall seconds, peak and earlier RSS in MiB, and packs of one rebuild."""
    db = Database(url)
    try:
        db.migrate()
        store = open_store(f"file://{store_dir}")
        repo = Repository.open(store, CONTAINER, DbIndex(db))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        started = time.perf_counter()
        report = rebuild_index(repo)
        wall = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        return wall, peak, before, report.packs
    finally:
        db.dispose()


def _nothing() -> None:
    pass


if __name__ == "__main__":
    main()
