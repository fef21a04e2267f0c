"""The shared Store suite: every backend must pass it unchanged."""

from __future__ import annotations

import pytest

from ashbox.errors import InvalidInput, ObjectNotFound
from ashbox.storage import Store


def test_an_object_put_is_read_back_whole(store: Store) -> None:
    store.put("c/data/ab/obj", b"hello world")
    assert store.get("c/data/ab/obj") == b"hello world"
    assert store.size("c/data/ab/obj") == 11


def test_a_memoryview_can_be_put(store: Store) -> None:
    buf = bytearray(b"0123456789")
    store.put("c/obj", memoryview(buf)[2:6])
    assert store.get("c/obj") == b"2345"


def test_an_empty_object_exists_with_size_zero(store: Store) -> None:
    store.put("c/empty", b"")
    assert store.get("c/empty") == b""
    assert store.size("c/empty") == 0


@pytest.mark.parametrize(
    ("offset", "length", "expected"),
    [
        (0, None, b"0123456789"),
        (3, None, b"3456789"),
        (3, 4, b"3456"),
        (0, 0, b""),
        (8, 10, b"89"),
        (10, 5, b""),
        (20, None, b""),
    ],
)
def test_a_ranged_get_returns_the_bytes_of_the_range_clamped_to_the_end(
    store: Store, offset: int, length: int | None, expected: bytes
) -> None:
    store.put("c/obj", b"0123456789")
    assert store.get("c/obj", offset, length) == expected


def test_a_negative_range_is_invalid(store: Store) -> None:
    store.put("c/obj", b"x")
    with pytest.raises(InvalidInput):
        store.get("c/obj", -1)
    with pytest.raises(InvalidInput):
        store.get("c/obj", 0, -1)


def test_a_put_replaces_the_previous_object(store: Store) -> None:
    store.put("c/obj", b"first version, longer")
    store.put("c/obj", b"second")
    assert store.get("c/obj") == b"second"


def test_a_missing_object_is_not_found(store: Store) -> None:
    with pytest.raises(ObjectNotFound) as e:
        store.get("c/missing")
    assert e.value.key == "c/missing"
    with pytest.raises(ObjectNotFound):
        store.get("c/missing", 2, 3)
    with pytest.raises(ObjectNotFound):
        store.size("c/missing")


def test_a_deleted_object_is_gone_and_deleting_again_is_fine(store: Store) -> None:
    store.put("c/obj", b"x")
    store.delete("c/obj")
    with pytest.raises(ObjectNotFound):
        store.get("c/obj")
    store.delete("c/obj")
    store.delete("never/existed")


def test_list_returns_exactly_the_keys_under_a_prefix(store: Store) -> None:
    keys = ["c/config", "c/data/ab/ab01", "c/data/ab/ab02", "c/data/cd/cd03", "c/backups/b1", "d/x"]
    for k in keys:
        store.put(k, k.encode())
    assert sorted(store.list("c/data/")) == ["c/data/ab/ab01", "c/data/ab/ab02", "c/data/cd/cd03"]
    assert sorted(store.list("c/data/ab/ab0")) == ["c/data/ab/ab01", "c/data/ab/ab02"]
    assert sorted(store.list("c/")) == sorted(k for k in keys if k.startswith("c/"))
    assert sorted(store.list("c/b")) == ["c/backups/b1"]
    assert sorted(store.list("")) == sorted(keys)
    assert list(store.list("nothing/")) == []


def test_a_deleted_object_is_not_listed(store: Store) -> None:
    store.put("c/data/ab/one", b"1")
    store.put("c/data/ab/two", b"2")
    store.delete("c/data/ab/one")
    assert list(store.list("c/data/")) == ["c/data/ab/two"]


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "../up", "a/.hidden", "a/"])
def test_a_malformed_key_is_rejected(store: Store, key: str) -> None:
    with pytest.raises(InvalidInput):
        store.put(key, b"x")


def test_a_large_object_round_trips(store: Store) -> None:
    data = bytes(range(256)) * 40_000
    store.put("c/big", data)
    assert store.get("c/big") == data
    assert store.get("c/big", 1_000_003, 77_777) == data[1_000_003 : 1_000_003 + 77_777]
