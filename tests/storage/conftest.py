"""The `store` fixture: one shared suite runs against every Store backend:
posix, memory, S3 on Ceph radosgw and Swift on a Swift all-in-one (the
servers of tests/object_stores.py, started once per session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ashbox.storage import Store, open_store
from tests.object_stores import RgwServer, SwiftServer, unique_name

from .memory_store import MemoryStore


@pytest.fixture(params=["posix", "memory", "s3", "swift"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "posix":
        yield open_store(f"file://{tmp_path / 'store'}")
    elif request.param == "memory":
        yield MemoryStore()
    elif request.param == "s3":
        # A fresh bucket, no prefix: the store sees the whole bucket.
        rgw: RgwServer = request.getfixturevalue("rgw_server")
        yield open_store(f"s3://{unique_name()}", rgw.options())
    else:
        # One container, a fresh prefix: the store sees only its own names.
        swift: SwiftServer = request.getfixturevalue("swift_server")
        yield open_store(f"swift://ashbox-tests/{unique_name()}", swift.options())
