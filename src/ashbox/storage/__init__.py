"""Backup stores: flat namespaces of immutable objects (DESIGN.md §5).

`open_store` turns a store URL from the configuration into a `Store`.
Only `file:///absolute/dir` (the posix store) exists so far.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from ashbox.errors import InvalidInput
from ashbox.storage.base import Store
from ashbox.storage.posix import PosixStore

__all__ = ["PosixStore", "Store", "open_store"]


def open_store(url: str) -> Store:
    """The store a URL names: `file:///abs/dir` is a `PosixStore` rooted at /abs/dir."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        raise InvalidInput(f"Unsupported backup store URL {url!r}: expected file:///absolute/dir.")
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise InvalidInput(f"Invalid backup store URL {url!r}: expected file:///absolute/dir.")
    path = unquote(parts.path)
    if not path.startswith("/") or path == "/":
        raise InvalidInput(f"Invalid backup store URL {url!r}: the path must be an absolute dir.")
    return PosixStore(Path(path))
