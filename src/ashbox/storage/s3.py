"""The S3 backup store: objects in a bucket, under an optional key prefix.

URL `s3://bucket[/prefix]`; options in `StoreOptions` (docs/stores.md, "S3").
Requests go through boto3 with connect and read timeouts and botocore's
"standard" retries (exponential backoff with jitter on 5xx, throttling such
as 503 SlowDown, timeouts and dropped connections); reading an answer's body
is retried here, with the same kind of backoff, since botocore's retries end
when the headers arrive. Every failure left after the retries is a
`StoreError`; only a 404 for the object itself is `ObjectNotFound`.

An object of `store_multipart_threshold` bytes or more is uploaded in parts of
`store_part_size` bytes, several at once; S3 shows it only when the upload is
completed, so a `put` stays atomic. A `get` of a range that large reads its
parts with ranged GETs in parallel; anything smaller is one (ranged) GET.

The bucket is created when a `put` finds it missing; reads of a missing
bucket find no objects.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from urllib3.exceptions import HTTPError as Urllib3Error

from ashbox.errors import InvalidInput, ObjectNotFound, StoreError
from ashbox.storage.limits import Limits
from ashbox.storage.options import MiB, StoreOptions
from ashbox.storage.remote import (
    PartPool,
    RangedReads,
    check_key,
    part_threads,
    parts,
    sleep_before_retry,
    total_of_content_range,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

log = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * MiB  # S3's smallest part but the last
MAX_PARTS = 10_000
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_MISSING_KEY = ("NoSuchKey", "NotFound", "404")
_MISSING_BUCKET = "NoSuchBucket"
_BODY_ERRORS = (
    ReadTimeoutError,
    ResponseStreamingError,
    IncompleteReadError,
    Urllib3Error,
    OSError,
)
T = TypeVar("T")
_Addressing = Literal["auto", "virtual", "path"]


class S3Store(RangedReads):
    """A `Store` on the S3 bucket `bucket`, every key under `prefix` (empty, or
    ending in `/`)."""

    list_page_size = 1000  # keys per listing request (S3's maximum)

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        options: StoreOptions | None = None,
        limits: Limits | None = None,
    ) -> None:
        options = options or StoreOptions()
        check_bucket_name(bucket)
        if options.store_part_size < MIN_PART_SIZE:
            raise InvalidInput(
                f"store_part_size {options.store_part_size} is below S3's smallest part "
                f"({MIN_PART_SIZE} bytes)."
            )
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = options.s3_endpoint_url
        self._options = options
        self._limits = limits or Limits()
        self._retries = options.store_retries
        self._threshold = max(options.store_multipart_threshold, options.store_part_size)
        self._part_size = options.store_part_size
        self._parts = PartPool(part_threads(options.store_concurrency), "ashbox-s3")
        self._bucket_lock = threading.Lock()
        self._client: S3Client = _client(options)

    def __repr__(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"S3Store(s3://{self.bucket}/{self.prefix}{where})"

    def close(self) -> None:
        self._parts.close()
        self._client.close()

    def put(self, key: str, data: bytes | memoryview) -> None:
        name = self._name(key)
        view = memoryview(data).cast("B")
        if len(view) >= self._threshold:
            self._with_bucket(key, lambda: self._put_multipart(key, name, view))
            return
        body = data if isinstance(data, bytes) else view.tobytes()
        self._with_bucket(
            key,
            lambda: self._send(
                "write",
                key,
                lambda: self._client.put_object(Bucket=self.bucket, Key=name, Body=body),
                sent=len(body),
            ),
        )

    def size(self, key: str) -> int:
        name = self._name(key)
        head = self._send(
            "stat", key, lambda: self._client.head_object(Bucket=self.bucket, Key=name)
        )
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        name = self._name(key)
        try:
            self._send(
                "delete", key, lambda: self._client.delete_object(Bucket=self.bucket, Key=name)
            )
        except ObjectNotFound:  # the bucket is missing: so is the object
            return

    def list(self, prefix: str) -> Iterator[str]:
        full = self.prefix + prefix
        paginator = self._client.get_paginator("list_objects_v2")
        pages = iter(
            paginator.paginate(
                Bucket=self.bucket, Prefix=full, PaginationConfig={"PageSize": self.list_page_size}
            )
        )
        while True:
            try:
                with self._limits.request():
                    page = next(pages, None)
            except ClientError as e:
                if _code(e) == _MISSING_BUCKET:
                    return
                raise self._error("list objects under", prefix, e) from e
            except BotoCoreError as e:
                raise self._error("list objects under", prefix, e) from e
            if page is None:
                return
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :]

    def _get_range(self, key: str, name: str, offset: int, length: int) -> tuple[bytes, int | None]:
        """Bytes [offset, offset+length) clamped to the object's end, and the
        object's size (None if the server did not say)."""
        byte_range = f"bytes={offset}-{offset + length - 1}"
        for attempt in range(self._retries + 1):
            try:
                with self._limits.request():
                    answer = self._call(
                        "read",
                        key,
                        lambda: self._client.get_object(
                            Bucket=self.bucket, Key=name, Range=byte_range
                        ),
                    )
                    data = answer["Body"].read()
            except _RangePastEnd:
                return b"", None
            except _BODY_ERRORS as e:
                if attempt == self._retries:
                    raise self._error("read", key, e) from e
                log.debug("retrying a read of %s after %s", key, e)
                sleep_before_retry(attempt + 1)
                continue
            self._limits.received(len(data))
            return data, total_of_content_range(answer.get("ContentRange"))
        raise AssertionError("unreachable")

    def _put_multipart(self, key: str, name: str, view: memoryview) -> None:
        if len(view) > self._part_size * MAX_PARTS:
            raise StoreError(
                f"Backup store {self!r}: object {key} of {len(view)} bytes needs more than "
                f"{MAX_PARTS} parts of store_part_size {self._part_size}."
            )
        upload = self._send(
            "write",
            key,
            lambda: self._client.create_multipart_upload(Bucket=self.bucket, Key=name),
        )
        upload_id = upload["UploadId"]

        def send(offset: int, length: int) -> bytes:
            number = offset // self._part_size + 1
            body = view[offset : offset + length].tobytes()
            answer = self._send(
                "write",
                key,
                lambda: self._client.upload_part(
                    Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=body
                ),
                sent=length,
            )
            return answer["ETag"].encode()

        try:
            etags = self._parts.map(send, parts(0, len(view), self._part_size))
            done: list[CompletedPartTypeDef] = [
                {"ETag": etag.decode(), "PartNumber": number}
                for number, etag in enumerate(etags, 1)
            ]
            self._send(
                "write",
                key,
                lambda: self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": done},
                ),
            )
        except BaseException:
            try:
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=name, UploadId=upload_id
                )
            except (ClientError, BotoCoreError) as e:
                log.warning("cannot abort the multipart upload of %s: %s", key, e)
            raise
        log.debug("multipart upload done key=%s parts=%d", key, len(etags))

    def _with_bucket(self, key: str, write: Callable[[], object]) -> None:
        """`write`, and once more after creating the bucket if it was missing."""
        try:
            write()
        except _MissingBucket:
            self._create_bucket()
            write()

    def _create_bucket(self) -> None:
        with self._bucket_lock:
            region = self._client.meta.region_name
            try:
                with self._limits.request():
                    if region and region != "us-east-1":
                        self._client.create_bucket(
                            Bucket=self.bucket,
                            CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                        )
                    else:
                        self._client.create_bucket(Bucket=self.bucket)
            except ClientError as e:
                if _code(e) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise self._error("create the bucket for", self.bucket, e) from e
            except BotoCoreError as e:
                raise self._error("create the bucket for", self.bucket, e) from e
            log.info("bucket created store=%r", self)

    def _send(self, what: str, key: str, request: Callable[[], T], *, sent: int = 0) -> T:
        """`_call` as one request in flight of the store's limits."""
        with self._limits.request(sent=sent):
            return self._call(what, key, request)

    def _call(self, what: str, key: str, request: Callable[[], T]) -> T:
        """One request (botocore retries it); its failure as an ashbox error."""
        try:
            return request()
        except ClientError as e:
            code = _code(e)
            if code == "InvalidRange":
                raise _RangePastEnd() from e
            if code == _MISSING_BUCKET and what == "write":
                raise _MissingBucket() from e
            if code in _MISSING_KEY or code == _MISSING_BUCKET:
                raise ObjectNotFound(key) from e
            raise self._error(what, key, e) from e
        except BotoCoreError as e:
            raise self._error(what, key, e) from e

    def _error(self, what: str, key: str, e: Exception) -> StoreError:
        if isinstance(e, ClientError):
            error: Any = e.response.get("Error", {})
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            reason = f"{error.get('Code', '?')}: {error.get('Message') or 'no message'}"
            if status:
                reason += f" (HTTP {status})"
        else:
            reason = str(e) or type(e).__name__
        return StoreError(f"Backup store {self!r}: cannot {what} {key}: {reason}.")

    def _name(self, key: str) -> str:
        check_key(key)
        return self.prefix + key


class _RangePastEnd(Exception):
    """A ranged GET starting at or past the object's end (HTTP 416)."""


class _MissingBucket(Exception):
    """A write found no bucket."""


def check_bucket_name(bucket: str) -> None:
    if not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        raise InvalidInput(
            f"Invalid S3 bucket name {bucket!r}: 3 to 63 lower-case letters, digits, dots "
            "and hyphens, starting and ending with a letter or digit."
        )


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


_session_lock = threading.Lock()
_sessions: list[boto3.session.Session] = []


def _session() -> boto3.session.Session:
    """One boto3 session per process: its clients share the loaded API models
    (a client of a new session takes ~0.3 s to make)."""
    if not _sessions:
        _sessions.append(boto3.session.Session())
    return _sessions[0]


def _client(options: StoreOptions) -> S3Client:
    config = Config(
        connect_timeout=options.store_timeout_seconds,
        read_timeout=options.store_timeout_seconds,
        # total_max_attempts counts the first one; botocore's max_attempts does not.
        retries={"mode": "standard", "total_max_attempts": options.store_retries + 1},
        s3={"addressing_style": cast(_Addressing, options.s3_addressing_style)},
        max_pool_connections=max(10, options.store_concurrency, part_threads(0) * 2),
        # Current botocore adds CRC checksums, sent as aws-chunked trailers over
        # HTTPS, which S3-compatible servers of before 2025 (Ceph RGW Pacific,
        # Swift's s3api) refuse; ashbox checks every object's hash itself.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        user_agent_extra="ashbox",
    )
    verify: bool | str = options.store_verify_tls
    if verify and options.store_ca_bundle:
        verify = options.store_ca_bundle
    try:
        with _session_lock:  # creating clients is not thread-safe
            return _session().client(
                "s3",
                endpoint_url=options.s3_endpoint_url or None,
                region_name=options.s3_region or None,
                aws_access_key_id=options.s3_access_key or None,
                aws_secret_access_key=options.s3_secret_key or None,
                verify=verify,
                config=config,
            )
    except (BotoCoreError, ValueError) as e:
        raise InvalidInput(f"Cannot set up the S3 store: {e}") from e
