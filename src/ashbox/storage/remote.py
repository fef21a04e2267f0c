"""What the S3 and Swift stores share: key checks, retry backoff with jitter,
splitting a large object into parts, and reading parts in parallel.

docs/stores.md, "Retries and timeouts" and "Large objects".
"""

from __future__ import annotations

import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from ashbox.errors import InvalidInput

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 20.0
MAX_PART_THREADS = 8  # parallel parts of one store, whatever store_concurrency allows


def check_key(key: str) -> None:
    """The key rules of every store (as the posix store's paths): `/`-separated
    components, none empty, `.`-led or holding NUL."""
    parts = key.split("/")
    if not key or any(not p or p.startswith(".") for p in parts) or "\0" in key:
        raise InvalidInput(f"Invalid object key {key!r}.")


def check_range(key: str, offset: int, length: int | None) -> None:
    if offset < 0 or (length is not None and length < 0):
        raise InvalidInput(f"Invalid range offset={offset} length={length} for {key}.")


def backoff(attempt: int) -> float:
    """Seconds to sleep before retry number `attempt` (1, 2, ...): "full
    jitter", uniform in [0, min(cap, base·2^(attempt-1))], so clients that
    failed together do not come back together."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(0, ceiling)


def sleep_before_retry(attempt: int) -> None:
    time.sleep(backoff(attempt))


def parts(start: int, end: int, part_size: int) -> list[tuple[int, int]]:
    """[start, end) cut into (offset, length) pieces of `part_size` bytes."""
    return [(a, min(part_size, end - a)) for a in range(start, end, part_size)]


def total_of_content_range(value: str | None) -> int | None:
    """The object size in a `Content-Range: bytes a-b/total` header."""
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


def ranged_get(
    get_range: Callable[[int, int], tuple[bytes, int | None]],
    pool: PartPool,
    offset: int,
    length: int | None,
    *,
    threshold: int,
    part_size: int,
) -> bytes:
    """Bytes [offset, offset+length) of an object (to its end if length is None)
    through `get_range(offset, length)`, which answers a range's bytes and the
    object's size if the server said it. A range of `threshold` bytes or more
    is read as parallel parts; an open one as one part, then the rest of the
    object, in parallel, once its size is known."""
    if length is not None and length >= threshold:
        pieces = parts(offset, offset + length, part_size)
        return b"".join(pool.map(lambda a, n: get_range(a, n)[0], pieces))
    first = max(part_size, 1) if length is None else length
    data, total = get_range(offset, first)
    if length is not None or total is None or offset + len(data) >= total:
        return data
    rest = pool.map(lambda a, n: get_range(a, n)[0], parts(offset + len(data), total, part_size))
    return b"".join([data, *rest])


class RangedReads(ABC):
    """`get` for a store that reads ranges of an object over HTTP: a subclass
    gives `_get_range` (one ranged request), `_name`, `size`, and the part
    settings, and its large reads go in parallel parts (`ranged_get`)."""

    _parts: PartPool
    _threshold: int
    _part_size: int

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        check_range(key, offset, length)
        name = self._name(key)
        if length == 0:
            self.size(key)  # ObjectNotFound for a missing object, as any read
            return b""
        return ranged_get(
            lambda a, n: self._get_range(key, name, a, n),
            self._parts,
            offset,
            length,
            threshold=self._threshold,
            part_size=self._part_size,
        )

    @abstractmethod
    def size(self, key: str) -> int:
        """The object's size in bytes; ObjectNotFound if there is none."""

    @abstractmethod
    def _name(self, key: str) -> str:
        """The store's name of the object at `key` (prefix included)."""

    @abstractmethod
    def _get_range(self, key: str, name: str, offset: int, length: int) -> tuple[bytes, int | None]:
        """`length` bytes from `offset` in one request, and the object's whole
        size when the answer tells it."""


class PartPool:
    """The threads a store reads and writes the parts of large objects with:
    created on first use, at most `threads` of them."""

    def __init__(self, threads: int, name: str) -> None:
        self._threads = max(1, threads)
        self._name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def map(
        self, task: Callable[[int, int], bytes], pieces: Sequence[tuple[int, int]]
    ) -> list[bytes]:
        """`task(offset, length)` of every piece, in order; the first failure
        is raised once every piece has finished (none is left running)."""
        pool = self._executor()
        futures: list[Future[bytes]] = [pool.submit(task, a, n) for a, n in pieces]
        results: list[bytes] = []
        error: BaseException | None = None
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as e:  # re-raised below, once the others are done
                if error is None:
                    error = e
                for other in futures:
                    other.cancel()
        if error is not None:
            raise error
        return results

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix=self._name)
            return self._pool


def part_threads(concurrency: int) -> int:
    return min(MAX_PART_THREADS, concurrency) if concurrency > 0 else MAX_PART_THREADS
