"""The object store's floor under a backup and a restore: how long the store
takes to take in, and to give back, the bytes a backup stored, with no other
work on the machine.

A backup on `s3://` compresses and uploads; radosgw, on the same two cores,
takes the uploads in. bench/run.py times this floor after the steps of each
run, on the packs the `file://` backup wrote: each is PUT into a fresh bucket
with as many uploads in flight as a backup has (`upload_threads` plus one
pack of page tables), then GET back with as many reads in flight as a restore
has. A backup can be no faster than the PUTs alone, a restore no faster than
the GETs alone, whatever ashbox does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ashbox.storage.base import Store

_PREFIX = "floor"


def put_floor(store: Store, files: Sequence[Path], threads: int) -> float:
    """Wall seconds to PUT every file into `store`, `threads` at a time."""

    def put(n: int) -> None:
        store.put(f"{_PREFIX}/{n}", files[n].read_bytes())

    return _timed(threads, put, len(files))


def get_floor(store: Store, count: int, threads: int) -> float:
    """Wall seconds to GET back the `count` objects `put_floor` wrote."""

    def get(n: int) -> None:
        store.get(f"{_PREFIX}/{n}")

    return _timed(threads, get, count)


def _timed(threads: int, call: Callable[[int], None], count: int) -> float:
    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        for future in [pool.submit(call, n) for n in range(count)]:
            future.result()
        return time.perf_counter() - started
