"""What the S3 and Swift stores promise beyond the shared suite: multipart
uploads, parallel ranged reads, listing page by page, clear errors for bad
credentials, bounded waits on a silent server, retries on 503, URL checks and
secrets kept out of reprs. S3 runs on Ceph radosgw, Swift on a Swift
all-in-one (tests/object_stores.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from ashbox.config import settings_from
from ashbox.errors import InvalidInput, ObjectNotFound, StoreError
from ashbox.storage import StoreOptions, open_store
from ashbox.storage.options import MiB
from ashbox.storage.s3 import S3Store
from ashbox.storage.swift import SwiftStore
from tests.object_stores import RgwServer, SwiftServer, unique_name

SECRET = "do-not-show-this-secret"


def pattern(size: int) -> bytes:
    """Bytes whose every 4-byte word differs from its neighbours' within a part."""
    words = (size + 3) // 4
    return b"".join(i.to_bytes(4, "little") for i in range(words))[:size]


def test_a_large_object_goes_up_in_parts_and_reads_across_part_boundaries(
    rgw_server: RgwServer,
) -> None:
    bucket = unique_name()
    options = rgw_server.options(store_multipart_threshold=8 * MiB, store_part_size=5 * MiB)
    store = open_store(f"s3://{bucket}/pre", options)
    data = pattern(12 * MiB + 123)
    store.put("c/big", data)

    raw = boto3.client(
        "s3",
        endpoint_url=rgw_server.endpoint,
        aws_access_key_id=rgw_server.access_key,
        aws_secret_access_key=rgw_server.secret_key,
        region_name=rgw_server.region,
    )
    head = raw.head_object(Bucket=bucket, Key="pre/c/big")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of 3 parts

    assert store.get("c/big") == data
    assert store.size("c/big") == len(data)
    boundary = 5 * MiB
    assert store.get("c/big", boundary - 100, 200) == data[boundary - 100 : boundary + 100]
    # A range at the threshold is read in parallel parts, clamped to the end.
    assert store.get("c/big", 3, 9 * MiB) == data[3 : 3 + 9 * MiB]
    assert store.get("c/big", 4 * MiB, 20 * MiB) == data[4 * MiB :]
    assert list(store.list("c/")) == ["c/big"]


def test_a_small_put_with_a_low_threshold_stays_one_object(rgw_server: RgwServer) -> None:
    store = open_store(f"s3://{unique_name()}", rgw_server.options(store_part_size=5 * MiB))
    store.put("c/x", b"x" * 100)
    assert store.get("c/x", 10) == b"x" * 90


def test_swift_reads_a_large_object_with_parallel_ranged_gets(swift_server: SwiftServer) -> None:
    options = swift_server.options(store_multipart_threshold=1 * MiB, store_part_size=256 * 1024)
    store = open_store(f"swift://{unique_name()}", options)
    data = pattern(3 * MiB + 5)
    store.put("c/big", data)
    assert store.get("c/big") == data
    assert store.get("c/big", 256 * 1024 - 7, 14) == data[256 * 1024 - 7 : 256 * 1024 + 7]
    assert store.get("c/big", 100, 2 * MiB) == data[100 : 100 + 2 * MiB]
    assert store.get("c/big", 3 * MiB, 2 * MiB) == data[3 * MiB :]


@pytest.fixture(params=["s3", "swift"])
def remote(request: pytest.FixtureRequest) -> Iterator[S3Store | SwiftStore]:
    """A store on a fresh bucket or container (created by its first put)."""
    if request.param == "s3":
        rgw: RgwServer = request.getfixturevalue("rgw_server")
        store = open_store(f"s3://{unique_name()}/some/prefix", rgw.options())
    else:
        swift: SwiftServer = request.getfixturevalue("swift_server")
        store = open_store(f"swift://{unique_name()}/some/prefix", swift.options())
    assert isinstance(store, S3Store | SwiftStore)
    yield store
    store.close()


def test_a_missing_bucket_or_container_is_created_by_the_first_put(
    remote: S3Store | SwiftStore,
) -> None:
    assert list(remote.list("")) == []
    with pytest.raises(ObjectNotFound):
        remote.get("c/obj")
    remote.delete("c/obj")
    remote.put("c/obj", b"first")
    assert remote.get("c/obj") == b"first"


def test_a_listing_goes_page_by_page(remote: S3Store | SwiftStore) -> None:
    remote.list_page_size = 2
    keys = [f"c/data/{i:02d}" for i in range(7)]
    for key in keys:
        remote.put(key, b"k")
    remote.put("d/other", b"o")
    assert sorted(remote.list("c/")) == keys
    assert sorted(remote.list("")) == [*keys, "d/other"]


def test_a_wrong_s3_secret_is_a_clear_store_error_without_retrying(
    rgw_server: RgwServer,
) -> None:
    store = open_store(f"s3://{unique_name()}", rgw_server.options(s3_secret_key=SECRET))
    began = time.monotonic()
    with pytest.raises(StoreError) as e:
        store.put("c/obj", b"x")
    assert time.monotonic() - began < 5
    assert "SignatureDoesNotMatch" in e.value.message
    assert SECRET not in e.value.message
    with pytest.raises(StoreError):
        store.get("c/obj")


def test_a_wrong_swift_key_is_a_clear_store_error_without_retrying(
    swift_server: SwiftServer,
) -> None:
    store = open_store(f"swift://{unique_name()}", swift_server.options(swift_key=SECRET))
    began = time.monotonic()
    with pytest.raises(StoreError) as e:
        store.get("c/obj")
    assert time.monotonic() - began < 5
    assert "authentication failed" in e.value.message
    assert SECRET not in e.value.message


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose server accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_a_server_that_never_answers_gives_a_store_error_within_the_bound(
    silent_port: int, kind: str
) -> None:
    if kind == "s3":
        options = StoreOptions(
            s3_endpoint_url=f"http://127.0.0.1:{silent_port}",
            s3_region="us-east-1",
            s3_access_key="a",
            s3_secret_key="b",
            store_timeout_seconds=0.5,
            store_retries=1,
        )
        store = open_store("s3://quiet", options)
    else:
        options = StoreOptions(
            swift_auth_url=f"http://127.0.0.1:{silent_port}/auth/v1.0",
            swift_user="a:b",
            swift_key="c",
            store_timeout_seconds=0.5,
            store_retries=1,
        )
        store = open_store("swift://quiet", options)
    began = time.monotonic()
    with pytest.raises(StoreError) as e:
        store.get("c/obj")
    elapsed = time.monotonic() - began
    # Two attempts of 0.5 s and one backoff of at most 0.5 s, with slack.
    assert elapsed < 4, elapsed
    assert not isinstance(e.value, ObjectNotFound)


class _Unavailable(BaseHTTPRequestHandler):
    """Answers every request 503 SlowDown, counting them."""

    count = 0
    lock = threading.Lock()

    def _answer(self) -> None:
        with self.lock:
            type(self).count += 1
        body = (
            b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
            b"<Message>Please reduce your request rate.</Message></Error>"
        )
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_a_throttling_server_is_retried_then_gives_a_store_error(kind: str) -> None:
    handler = type("Handler", (_Unavailable,), {"count": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        if kind == "s3":
            options = StoreOptions(
                s3_endpoint_url=url,
                s3_region="us-east-1",
                s3_access_key="a",
                s3_secret_key="b",
                store_retries=2,
            )
            store = open_store("s3://busy", options)
        else:
            options = StoreOptions(
                swift_auth_url=f"{url}/auth/v1.0", swift_user="a:b", swift_key="c", store_retries=2
            )
            store = open_store("swift://busy", options)
        with pytest.raises(StoreError) as e:
            store.get("c/obj")
        assert not isinstance(e.value, ObjectNotFound)
        assert "503" in e.value.message
        assert handler.count == 3  # the first attempt and 2 retries
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "url",
    [
        "s3://",
        "s3://Bad_Bucket",
        "s3://ab",
        "s3://bucket:9000/x",
        "s3://key@bucket",
        "s3://bucket/x?versionId=1",
        "s3://bucket/a/../b",
        "swift://",
        "swift://cont#frag",
        "swift://cont",  # no swift_auth_url
        "gopher://host/x",
        "",
    ],
)
def test_a_bad_store_url_is_invalid_input_with_a_clear_message(url: str) -> None:
    with pytest.raises(InvalidInput) as e:
        open_store(url)
    assert url in e.value.message or "swift_auth_url" in e.value.message


def test_bad_store_options_are_invalid_input() -> None:
    for changes in (
        {"s3_addressing_style": "sideways"},
        {"swift_auth_version": "2"},
        {"store_retries": -1},
        {"store_timeout_seconds": 0},
    ):
        with pytest.raises(InvalidInput):
            StoreOptions(**changes)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        open_store("s3://bucket", StoreOptions(store_part_size=1 * MiB))


def test_secrets_stay_out_of_reprs() -> None:
    settings = settings_from(
        {
            "store": "s3://bucket/prefix",
            "s3_access_key": "AKID",
            "s3_secret_key": SECRET,
            "swift_key": SECRET,
        }
    )
    options = StoreOptions.of(settings)
    assert options.s3_secret_key == SECRET
    store = open_store(settings.store, options)
    swift = open_store(
        "swift://c/p",
        StoreOptions(swift_auth_url="http://h/auth/v1.0", swift_user="a:b", swift_key=SECRET),
    )
    for text in (repr(settings), repr(options), repr(store), repr(swift), str(settings)):
        assert SECRET not in text
    assert "s3://bucket/prefix/" in repr(store)


def test_a_restarted_server_keeps_its_objects_and_ports(
    remote: S3Store | SwiftStore, request: pytest.FixtureRequest
) -> None:
    """The handle a chaos test restarts the store with."""
    remote.put("c/kept", b"before the restart")
    server = "rgw_server" if isinstance(remote, S3Store) else "swift_server"
    handle: RgwServer | SwiftServer = request.getfixturevalue(server)
    handle.stop()
    try:
        down = open_store(
            f"swift://{remote.container}" if isinstance(remote, SwiftStore) else "s3://down",
            handle.options(store_timeout_seconds=1, store_retries=0),
        )
        with pytest.raises(StoreError):
            down.get("c/kept")
    finally:
        handle.start()
    assert remote.get("c/kept") == b"before the restart"
