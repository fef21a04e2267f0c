"""A store that counts what passes through it into the process's metrics.

`InstrumentedStore` wraps any `Store` and counts every call by operation, every
call that raised by operation and error kind (`ObjectNotFound`: not_found,
`StoreError`: store_error, anything else: other), the bytes put and the bytes
got (docs/metrics.md, "Store"). Errors propagate unchanged. A `list` counts
as one request when it is first iterated, and its error when iterating fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ashbox import metrics
from ashbox.errors import ObjectNotFound, StoreError
from ashbox.storage.base import Store


class InstrumentedStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"InstrumentedStore({self.store!r})"

    def put(self, key: str, data: bytes | memoryview) -> None:
        with _counted("put"):
            self.store.put(key, data)
        metrics.STORE_SENT_BYTES.inc(memoryview(data).nbytes)

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        with _counted("get"):
            data = self.store.get(key, offset, length)
        metrics.STORE_RECEIVED_BYTES.inc(len(data))
        return data

    def size(self, key: str) -> int:
        with _counted("size"):
            return self.store.size(key)

    def delete(self, key: str) -> None:
        with _counted("delete"):
            self.store.delete(key)

    def list(self, prefix: str) -> Iterator[str]:
        with _counted("list"):
            yield from self.store.list(prefix)


def instrumented(store: Store) -> Store:
    """`store`, counted; a store counted already is returned as it is."""
    return store if isinstance(store, InstrumentedStore) else InstrumentedStore(store)


@contextmanager
def _counted(operation: str) -> Iterator[None]:
    metrics.STORE_REQUESTS.labels(operation).inc()
    try:
        yield
    except ObjectNotFound:
        metrics.STORE_FAILURES.labels(operation, metrics.NOT_FOUND).inc()
        raise
    except StoreError:
        metrics.STORE_FAILURES.labels(operation, metrics.STORE_ERROR).inc()
        raise
    except Exception:
        metrics.STORE_FAILURES.labels(operation, metrics.OTHER).inc()
        raise
