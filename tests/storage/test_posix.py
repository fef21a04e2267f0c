"""What only the posix store promises: files, atomic renames, clear errors."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import pytest

from ashbox.errors import InvalidInput, StoreError
from ashbox.storage import PosixStore, open_store
from ashbox.storage.limits import LimitedStore
from ashbox.volumes.file import cached_pages


def test_open_store_maps_a_file_url_to_a_posix_store(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/backups")
    assert isinstance(store, LimitedStore)
    assert isinstance(store.store, PosixStore)
    assert store.store.root == tmp_path / "backups"
    assert (tmp_path / "backups").is_dir()


@pytest.mark.parametrize(
    "url", ["ftp://host/dir", "file://relative/dir", "file://host/abs", "file:///", "/abs/dir"]
)
def test_open_store_rejects_urls_it_cannot_serve(url: str) -> None:
    with pytest.raises(InvalidInput):
        open_store(url)


def test_a_relative_root_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        PosixStore(Path("relative"))


def test_objects_are_plain_files_under_the_root(tmp_path: Path) -> None:
    store = PosixStore(tmp_path)
    store.put("c/data/ab/pack", b"bytes")
    assert (tmp_path / "c" / "data" / "ab" / "pack").read_bytes() == b"bytes"


def test_a_put_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = PosixStore(tmp_path)
    store.put("c/obj", b"one")
    store.put("c/obj", b"two")
    assert sorted(os.listdir(tmp_path / "c")) == ["obj"]


def test_a_failed_put_raises_store_error_and_leaves_nothing(tmp_path: Path) -> None:
    store = PosixStore(tmp_path)
    store.put("c/file", b"x")
    with pytest.raises(StoreError, match="cannot write object c/file/below"):
        store.put("c/file/below", b"y")
    assert sorted(os.listdir(tmp_path / "c")) == ["file"]


def test_a_put_over_a_directory_fails_cleanly(tmp_path: Path) -> None:
    store = PosixStore(tmp_path)
    store.put("c/dir/obj", b"x")
    with pytest.raises(StoreError, match="cannot write object c/dir"):
        store.put("c/dir", b"y")
    assert sorted(os.listdir(tmp_path / "c")) == ["dir"]


def test_reading_a_directory_is_a_store_error(tmp_path: Path) -> None:
    store = PosixStore(tmp_path)
    store.put("c/dir/obj", b"x")
    with pytest.raises(StoreError):
        store.get("c/dir")


def test_temporary_files_of_an_interrupted_put_are_not_listed(tmp_path: Path) -> None:
    store = PosixStore(tmp_path)
    store.put("c/data/obj", b"x")
    (tmp_path / "c" / "data" / ".tmp-obj2.1234").write_bytes(b"half")
    assert list(store.list("c/")) == ["c/data/obj"]


def test_a_store_root_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StoreError, match="cannot create the store directory"):
        PosixStore(tmp_path / "file" / "store")


@pytest.mark.parametrize("aligned", [True, False], ids=["page-aligned", "unaligned"])
def test_a_large_object_reads_back_whole_and_leaves_the_page_cache(
    tmp_path: Path, aligned: bool
) -> None:
    size = 3 * 1024 * 1024 + 123  # whole pages written directly, the tail through the cache
    content = os.urandom(size)
    if aligned:
        buffer = mmap.mmap(-1, 4 * 1024 * 1024)
        buffer[:size] = content
        data: bytes | memoryview = memoryview(buffer)[:size]
    else:
        data = memoryview(bytearray(b"x" + content))[1:]
    store = PosixStore(tmp_path)
    store.put("c/data/pack", data)
    assert store.get("c/data/pack") == content
    assert store.get("c/data/pack", size - 200, 150) == content[-200:-50]
    fd = os.open(tmp_path / "c" / "data" / "pack", os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # what get read back
        store.put("c/data/pack2", data)
    finally:
        os.close(fd)
    fd = os.open(tmp_path / "c" / "data" / "pack2", os.O_RDONLY)
    try:
        cached = cached_pages(fd, 0, size)
    finally:
        os.close(fd)
    assert cached in (None, 0)
