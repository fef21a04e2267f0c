"""Backup stores: flat namespaces of immutable objects (DESIGN.md §5, docs/stores.md).

`open_store` turns a store URL from the configuration into a `Store`:
`file:///absolute/dir` (posix), `s3://bucket[/prefix]` (S3) or
`swift://container[/prefix]` (Swift), with the endpoints, credentials and
limits of a `StoreOptions` (`StoreOptions.of(settings)`).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit

from ashbox.errors import InvalidInput
from ashbox.storage.base import Store
from ashbox.storage.limits import LimitedStore, Limits
from ashbox.storage.options import StoreOptions
from ashbox.storage.posix import PosixStore

__all__ = ["PosixStore", "Store", "StoreOptions", "open_store"]

_KINDS = "file:///absolute/dir, s3://bucket[/prefix] or swift://container[/prefix]"


def open_store(url: str, options: StoreOptions | None = None) -> Store:
    """The store a URL names, with `options` (defaults if None): `file:///abs/dir`
    is a `PosixStore` rooted at /abs/dir, `s3://bucket/prefix` an `S3Store`,
    `swift://container/prefix` a `SwiftStore`. Every store gets the limits
    of `options` (ashbox.storage.limits)."""
    options = options or StoreOptions()
    limits = Limits(options.store_bandwidth, options.store_concurrency)
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LimitedStore(PosixStore(_posix_root(url, parts)), limits)
    if parts.scheme == "s3":
        from ashbox.storage.s3 import S3Store, check_bucket_name

        bucket, prefix = _bucket_and_prefix(url, parts, "bucket")
        try:
            check_bucket_name(bucket)
        except InvalidInput as e:
            raise InvalidInput(f"Invalid backup store URL {url!r}: {e.message}") from e
        return S3Store(bucket, prefix, options, limits)
    if parts.scheme == "swift":
        from ashbox.storage.swift import SwiftStore

        container, prefix = _bucket_and_prefix(url, parts, "container")
        return SwiftStore(container, prefix, options, limits)
    raise InvalidInput(f"Unsupported backup store URL {url!r}: expected {_KINDS}.")


def _posix_root(url: str, parts: SplitResult) -> Path:
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise InvalidInput(f"Invalid backup store URL {url!r}: expected file:///absolute/dir.")
    path = unquote(parts.path)
    if not path.startswith("/") or path == "/":
        raise InvalidInput(f"Invalid backup store URL {url!r}: the path must be an absolute dir.")
    return Path(path)


def _bucket_and_prefix(url: str, parts: SplitResult, what: str) -> tuple[str, str]:
    """The bucket (or container) and the key prefix (empty, or ending in `/`)."""
    scheme = parts.scheme
    if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
        raise InvalidInput(
            f"Invalid backup store URL {url!r}: expected {scheme}://{what}[/prefix], "
            "with no user, port, query or fragment (endpoints and credentials are options)."
        )
    name = unquote(parts.netloc)
    if not name:
        raise InvalidInput(f"Invalid backup store URL {url!r}: it names no {what}.")
    prefix = unquote(parts.path).strip("/")
    if prefix and any(not p or p.startswith(".") for p in prefix.split("/")):
        raise InvalidInput(f"Invalid backup store URL {url!r}: bad prefix {prefix!r}.")
    return name, f"{prefix}/" if prefix else ""
