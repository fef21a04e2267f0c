"""The Swift backup store: objects in a container of an OpenStack Swift
account, under an optional name prefix.

URL `swift://container[/prefix]`; options in `StoreOptions` (docs/stores.md,
"Swift"). Authentication is v1 (tempauth: `account:user` and key) or
Keystone v3 (user, password, project, domains, region). python-swiftclient's
`Connection` is not thread-safe: each thread has its own.

swiftclient's own retries back off exponentially without jitter, and do not
cover a body cut short or a read timeout, so it is told not to retry
(`retries=0`; it still authenticates again once on a 401) and this module
retries every request itself: on 5xx, 408, 429/498 (rate limiting), timeouts
and dropped connections, with exponential backoff and full jitter, up to
`store_retries` times; then `StoreError`. Only a 404 for the object is
`ObjectNotFound`.

Every `put` is one PUT, which Swift makes visible whole or not at all. An
object larger than Swift's default object size limit (5 GiB) is refused:
ashbox writes packs of about 16 MiB, and segmented objects (SLO) would give
up that atomicity. A `get` of `store_multipart_threshold` bytes or more reads
its parts with ranged GETs in parallel. The container is created when a
`put` finds it missing.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import requests
from keystoneauth1.exceptions import ClientException as KeystoneError
from swiftclient.client import Connection
from swiftclient.exceptions import ClientException
from urllib3.exceptions import HTTPError as Urllib3Error

from ashbox.errors import InvalidInput, ObjectNotFound, StoreError
from ashbox.storage.limits import Limits
from ashbox.storage.options import StoreOptions
from ashbox.storage.remote import (
    PartPool,
    RangedReads,
    check_key,
    part_threads,
    sleep_before_retry,
    total_of_content_range,
)

log = logging.getLogger(__name__)

MAX_OBJECT_SIZE = 5 * 1024**3  # Swift's default max_file_size
LISTING_LIMIT = 10_000  # names per container GET: Swift's default maximum
_RETRY_STATUS = frozenset({408, 429, 498})
_TRANSPORT_ERRORS = (
    KeystoneError,  # Keystone unreachable (its refusals come as swiftclient's)
    requests.RequestException,
    Urllib3Error,
    http.client.HTTPException,
    OSError,
)
T = TypeVar("T")


class SwiftStore(RangedReads):
    """A `Store` on the Swift container `container`, every object name under
    `prefix` (empty, or ending in `/`)."""

    list_page_size = LISTING_LIMIT  # names per listing request

    def __init__(
        self,
        container: str,
        prefix: str = "",
        options: StoreOptions | None = None,
        limits: Limits | None = None,
    ) -> None:
        options = options or StoreOptions()
        if not options.swift_auth_url or not options.swift_user:
            raise InvalidInput(
                "A swift:// backup store needs swift_auth_url and swift_user (and swift_key)."
            )
        if "/" in container or len(container) > 256:
            raise InvalidInput(f"Invalid Swift container name {container!r}.")
        self.container = container
        self.prefix = prefix
        self.auth_url = options.swift_auth_url
        self._options = options
        self._limits = limits or Limits()
        self._retries = options.store_retries
        self._threshold = options.store_multipart_threshold
        self._part_size = options.store_part_size
        self._parts = PartPool(part_threads(options.store_concurrency), "ashbox-swift")
        self._local = threading.local()
        self._container_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SwiftStore(swift://{self.container}/{self.prefix} at {self.auth_url})"

    def close(self) -> None:
        self._parts.close()

    def put(self, key: str, data: bytes | memoryview) -> None:
        name = self._name(key)
        body = data if isinstance(data, bytes) else memoryview(data).cast("B").tobytes()
        if len(body) > MAX_OBJECT_SIZE:
            raise StoreError(
                f"Backup store {self!r}: object {key} of {len(body)} bytes is larger than "
                f"Swift's object size limit ({MAX_OBJECT_SIZE} bytes)."
            )

        def write() -> None:
            self._request(
                "write",
                key,
                lambda c: c.put_object(self.container, name, body, content_length=len(body)),
                sent=len(body),
            )

        try:
            write()
        except ObjectNotFound:  # the container is missing
            self._create_container()
            write()

    def size(self, key: str) -> int:
        name = self._name(key)
        headers = self._request("stat", key, lambda c: c.head_object(self.container, name))
        return int(headers["content-length"])

    def delete(self, key: str) -> None:
        name = self._name(key)
        try:
            self._request("delete", key, lambda c: c.delete_object(self.container, name))
        except ObjectNotFound:
            return

    def list(self, prefix: str) -> Iterator[str]:
        full = self.prefix + prefix
        marker = ""
        while True:
            try:
                _, page = self._request(
                    "list objects under",
                    prefix,
                    partial(_list_page, self.container, full, marker, self.list_page_size),
                )
            except ObjectNotFound:  # no container: no objects
                return
            if not page:
                return
            for item in page:
                yield item["name"][len(self.prefix) :]
            marker = page[-1]["name"]

    def _get_range(self, key: str, name: str, offset: int, length: int) -> tuple[bytes, int | None]:
        byte_range = {"Range": f"bytes={offset}-{offset + length - 1}"}
        try:
            headers, data = self._request(
                "read", key, lambda c: c.get_object(self.container, name, headers=byte_range)
            )
        except _RangePastEnd:
            return b"", None
        self._limits.received(len(data))
        total = total_of_content_range(headers.get("content-range"))
        if total is None and "content-range" not in headers:  # the whole object came
            total = len(data)
            data = data[offset : offset + length]
        return data, total

    def _create_container(self) -> None:
        with self._container_lock:
            self._request("create the container for", self.container, _put_container(self))
            log.info("container created store=%r", self)

    def _request(self, what: str, key: str, call: Callable[[Connection], T], *, sent: int = 0) -> T:
        """`call` with this thread's connection, retried with backoff and
        jitter while it fails transiently; its last failure as an ashbox error."""
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                with self._limits.request(sent=sent):
                    return call(self._connection())
            except ClientException as e:
                status = e.http_status
                if status == 404:
                    raise ObjectNotFound(key) from e
                if status == 416:
                    raise _RangePastEnd() from e
                # No status: a refused login or a bad setting, not worth retrying.
                transient = status is not None and (status >= 500 or status in _RETRY_STATUS)
                if status in (408, 499):
                    self._drop_connection()
                if last or not transient:
                    raise self._error(what, key, _client_reason(e)) from e
            except _TRANSPORT_ERRORS as e:
                self._drop_connection()
                if last:
                    raise self._error(what, key, str(e) or type(e).__name__) from e
            log.debug("retrying store=%r what=%s key=%s attempt=%d", self, what, key, attempt + 1)
            sleep_before_retry(attempt + 1)
        raise AssertionError("unreachable")

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self._options)
        return conn

    def _drop_connection(self) -> None:
        conn: Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with contextlib.suppress(*_TRANSPORT_ERRORS):  # a broken one has nothing to close
                conn.close()

    def _error(self, what: str, key: str, reason: str) -> StoreError:
        return StoreError(f"Backup store {self!r}: cannot {what} {key}: {reason}.")

    def _name(self, key: str) -> str:
        check_key(key)
        return self.prefix + key


class _RangePastEnd(Exception):
    """A ranged GET starting at or past the object's end (HTTP 416)."""


def _list_page(container: str, prefix: str, marker: str, limit: int, conn: Connection) -> Any:
    return conn.get_container(container, marker=marker, prefix=prefix, limit=limit)


def _put_container(store: SwiftStore) -> Callable[[Connection], None]:
    def call(conn: Connection) -> None:
        conn.put_container(store.container)

    return call


def _client_reason(e: ClientException) -> str:
    if e.http_status == 401:
        return "authentication failed (HTTP 401): check swift_user and swift_key"
    if e.http_status == 403:
        return "access denied (HTTP 403)"
    reason = e.msg or "request failed"
    if e.http_status:
        reason += f" (HTTP {e.http_status} {e.http_reason or ''})".rstrip()
    return reason


def _connect(options: StoreOptions) -> Connection:
    os_options: dict[str, Any] = {}
    if options.swift_region_name:
        os_options["region_name"] = options.swift_region_name
    if options.swift_auth_version == "3":
        os_options.update(
            project_name=options.swift_project_name,
            user_domain_name=options.swift_user_domain_name,
            project_domain_name=options.swift_project_domain_name,
        )
    return Connection(
        authurl=options.swift_auth_url,
        user=options.swift_user,
        key=options.swift_key,
        auth_version=options.swift_auth_version,
        os_options=os_options,
        retries=0,
        timeout=options.store_timeout_seconds,
        cacert=options.store_ca_bundle or None,
        insecure=not options.store_verify_tls,
    )
