"""store_bandwidth and store_concurrency: a shared token bucket and a cap on
requests in flight, applied by open_store to every store."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ashbox.storage import StoreOptions, open_store
from ashbox.storage.limits import LimitedStore, Limits, TokenBucket, shared_bucket
from ashbox.storage.options import MiB
from tests.object_stores import RgwServer, unique_name

from .memory_store import MemoryStore


def test_eight_mib_through_a_four_mib_per_second_limit_takes_about_two_seconds(
    tmp_path: Path,
) -> None:
    rate = 4 * MiB + 1  # a bucket of its own, not shared with another test's
    store = open_store(f"file://{tmp_path}", StoreOptions(store_bandwidth=rate))
    chunk = b"x" * MiB
    began = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: store.put(f"c/{i}", chunk), range(4)))
        list(pool.map(lambda i: store.get(f"c/{i}"), range(4)))
    elapsed = time.monotonic() - began
    assert 1.5 <= elapsed < 4, elapsed


def test_a_process_shares_one_bucket_per_rate() -> None:
    assert shared_bucket(12345) is shared_bucket(12345)
    assert shared_bucket(12345) is not shared_bucket(12346)


def test_an_idle_bucket_saves_only_a_short_burst() -> None:
    bucket = TokenBucket(10 * MiB)
    time.sleep(0.3)
    began = time.monotonic()
    bucket.take(2 * MiB)  # 0.2 s of traffic: within the 0.25 s burst
    assert time.monotonic() - began < 0.05
    bucket.take(5 * MiB)  # 0.5 s more, less what the burst left
    assert 0.35 < time.monotonic() - began < 0.8


class SlowStore(MemoryStore):
    """Counts the gets in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.most = 0
        self.counting = threading.Lock()

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        with self.counting:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(0.02)
        with self.counting:
            self.in_flight -= 1
        return super().get(key, offset, length)


def test_no_more_requests_than_store_concurrency_are_in_flight() -> None:
    inner = SlowStore()
    inner.put("k", b"v")
    store = LimitedStore(inner, Limits(concurrency=3))
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda _: store.get("k"), range(40)))
    assert inner.most == 3


def test_open_store_limits_a_posix_store_and_zero_means_no_limit(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}", StoreOptions(store_concurrency=0))
    assert isinstance(store, LimitedStore)
    assert repr(store.limits) == "Limits(bandwidth=0, concurrency=0)"
    store.put("c/x", b"1")
    assert list(store.list("c/")) == ["c/x"]


def test_an_s3_store_at_concurrency_one_still_reads_large_objects_in_parts(
    rgw_server: RgwServer,
) -> None:
    """Each part is a request of its own: one slot is enough, none is held twice."""
    options = rgw_server.options(
        store_concurrency=1, store_multipart_threshold=5 * MiB, store_part_size=5 * MiB
    )
    store = open_store(f"s3://{unique_name()}", options)
    data = bytes(range(256)) * (48 * 1024)  # 12 MiB
    store.put("c/big", data)
    assert store.get("c/big") == data
    assert store.get("c/big", 1, 11 * MiB) == data[1 : 1 + 11 * MiB]
