from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ashbox.errors import CorruptManifest
from ashbox.repository.manifest import Manifest, entry_of, manifest_key

from .strategies import manifests


@given(manifests())
def test_a_manifest_round_trips(manifest: Manifest) -> None:
    assert Manifest.decode(manifest.encode()) == manifest


@given(manifests(), st.data())
def test_a_truncated_manifest_is_corrupt(manifest: Manifest, data: st.DataObject) -> None:
    encoded = manifest.encode()
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(CorruptManifest):
        Manifest.decode(encoded[:cut])


@given(manifests(), st.data())
def test_a_flipped_bit_in_a_manifest_is_caught(manifest: Manifest, data: st.DataObject) -> None:
    encoded = bytearray(manifest.encode())
    bit = data.draw(st.integers(0, len(encoded) * 8 - 1))
    encoded[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(CorruptManifest):
        Manifest.decode(bytes(encoded))


def test_a_manifest_lists_its_blocks_holes_and_last_short_block() -> None:
    a, b = b"\xaa" * 32, b"\xbb" * 32
    manifest = Manifest(
        backup_id="b1",
        parent_id=None,
        volume_size=4096 * 3 + 100,
        block_size=4096,
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        entries=entry_of(a) + entry_of(None) + entry_of(b) + entry_of(a),
    )
    assert manifest.block_count == 4
    assert list(manifest.blocks()) == [(0, a), (1, None), (2, b), (3, a)]
    assert manifest.blob_id(1) is None
    assert manifest.blob_id(2) == b
    assert manifest.blob_ids() == {a, b}
    assert manifest.block_length(3) == 100
    assert manifest.block_length(0) == 4096


def test_garbage_is_not_a_manifest() -> None:
    for junk in (b"", b"ASHMANIF", b"x" * 100, b"ASHMANIF\x01\x01\x00\x00" + b"\x28\xb5\x2f\xfd"):
        with pytest.raises(CorruptManifest):
            Manifest.decode(junk)


def test_manifest_keys_live_under_backups() -> None:
    assert manifest_key("volumebackups", "b1") == "volumebackups/backups/b1"
