"""What a `put` killed half-way leaves in a posix store, and how delete clears it."""

from __future__ import annotations

from pathlib import Path

from ashbox.storage.posix import PosixStore


def test_deleting_a_key_removes_partial_writes_of_it_too(tmp_path: Path) -> None:
    store = PosixStore(tmp_path)
    store.put("c/data/ab/pack1", b"whole")
    partial = tmp_path / "c" / "data" / "ab" / ".tmp-pack1.0123456789abcdef"
    partial.write_bytes(b"half")
    other = tmp_path / "c" / "data" / "ab" / ".tmp-pack2.0123456789abcdef"
    other.write_bytes(b"someone else's")
    store.delete("c/data/ab/pack1")
    assert not partial.exists() and other.exists()
    assert list(store.list("c/")) == []


def test_deleting_a_never_finished_key_removes_its_partial_write(tmp_path: Path) -> None:
    store = PosixStore(tmp_path)
    (tmp_path / "c").mkdir()
    partial = tmp_path / "c" / ".tmp-manifest.00"
    partial.write_bytes(b"half")
    store.delete("c/manifest")
    assert not partial.exists()
