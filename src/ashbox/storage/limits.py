"""Limits on what a process asks of its store: bandwidth and requests in flight.

`store_bandwidth` is a token bucket of bytes per second shared by every
thread, and every store, of a process; `store_concurrency` caps the requests
one store has in flight at once. `open_store` applies both to every store:
the S3 and Swift stores take a `Limits` and count each HTTP request they send
(a large object's parallel parts are requests of their own); any other store
is wrapped in a `LimitedStore`, which counts each call as one request.

Bytes sent are taken from the bucket before the request starts, bytes
received once they arrived, so a process moves at most `store_bandwidth`
bytes a second over any stretch longer than the bucket's burst (a quarter of
a second of traffic).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ashbox.storage.base import Store

BURST_SECONDS = 0.25

_buckets: dict[int, TokenBucket] = {}
_buckets_lock = threading.Lock()


class TokenBucket:
    """`rate` bytes per second, `BURST_SECONDS` of them saved while idle. A
    take larger than the burst waits for its bytes; threads queue fairly by
    reserving their time slot under the lock and sleeping outside it."""

    def __init__(self, rate: int) -> None:
        if rate <= 0:
            raise ValueError("a token bucket needs a positive rate")
        self.rate = rate
        self._lock = threading.Lock()
        self._free_at = time.monotonic()  # when the bytes taken so far are paid for

    def take(self, size: int) -> None:
        if size <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._free_at = max(self._free_at, now - BURST_SECONDS) + size / self.rate
            wait = self._free_at - now
        if wait > 0:
            time.sleep(wait)


class Limits:
    """The bandwidth (process-wide) and concurrency (this store's) limits."""

    def __init__(self, bandwidth: int = 0, concurrency: int = 0) -> None:
        self.bandwidth = bandwidth
        self.concurrency = concurrency
        self._bucket = shared_bucket(bandwidth) if bandwidth > 0 else None
        self._slots = threading.BoundedSemaphore(concurrency) if concurrency > 0 else None

    def __repr__(self) -> str:
        return f"Limits(bandwidth={self.bandwidth}, concurrency={self.concurrency})"

    @contextmanager
    def request(self, sent: int = 0) -> Iterator[None]:
        """One request in flight for the block's duration, after `sent` bytes
        were taken from the bucket."""
        if self._bucket is not None:
            self._bucket.take(sent)
        if self._slots is None:
            yield
            return
        with self._slots:
            yield

    def received(self, size: int) -> None:
        """Take `size` bytes that arrived from the bucket (outside any request slot)."""
        if self._bucket is not None:
            self._bucket.take(size)


def shared_bucket(rate: int) -> TokenBucket:
    """The process's token bucket for `rate` bytes per second."""
    with _buckets_lock:
        bucket = _buckets.get(rate)
        if bucket is None:
            bucket = _buckets[rate] = TokenBucket(rate)
        return bucket


class LimitedStore:
    """A store whose calls go through `limits`: each call is one request; the
    bytes of a put are taken before it, those of a get after it. Listing is
    not limited: it moves names, not data."""

    def __init__(self, store: Store, limits: Limits) -> None:
        self.store = store
        self.limits = limits

    def __repr__(self) -> str:
        return f"LimitedStore({self.store!r}, {self.limits!r})"

    def put(self, key: str, data: bytes | memoryview) -> None:
        with self.limits.request(sent=memoryview(data).nbytes):
            self.store.put(key, data)

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        with self.limits.request():
            data = self.store.get(key, offset, length)
        self.limits.received(len(data))
        return data

    def size(self, key: str) -> int:
        with self.limits.request():
            return self.store.size(key)

    def delete(self, key: str) -> None:
        with self.limits.request():
            self.store.delete(key)

    def list(self, prefix: str) -> Iterator[str]:
        return self.store.list(prefix)
