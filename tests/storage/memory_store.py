"""An in-memory `Store` for fast repository tests: a fake at a seam we own.

It honours the Store protocol exactly (atomic put, ranged get clamped to the
object's end, ObjectNotFound, idempotent delete) and is thread-safe. It also
counts calls, so tests can assert what went to the store.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

from ashbox.errors import InvalidInput, ObjectNotFound


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes | memoryview) -> None:
        _check_key(key)
        blob = bytes(data)
        with self._lock:
            self.calls["put"] += 1
            self.objects[key] = blob

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if offset < 0 or (length is not None and length < 0):
            raise InvalidInput(f"Invalid range offset={offset} length={length} for {key}.")
        with self._lock:
            self.calls["get"] += 1
            try:
                blob = self.objects[key]
            except KeyError:
                raise ObjectNotFound(key) from None
        end = len(blob) if length is None else offset + length
        return blob[offset:end]

    def size(self, key: str) -> int:
        with self._lock:
            try:
                return len(self.objects[key])
            except KeyError:
                raise ObjectNotFound(key) from None

    def delete(self, key: str) -> None:
        with self._lock:
            self.calls["delete"] += 1
            self.objects.pop(key, None)

    def list(self, prefix: str) -> Iterator[str]:
        with self._lock:
            keys = [k for k in self.objects if k.startswith(prefix)]
        return iter(keys)


def _check_key(key: str) -> None:
    parts = key.split("/")
    if not key or any(not p or p.startswith(".") for p in parts):
        raise InvalidInput(f"Invalid object key {key!r}.")
