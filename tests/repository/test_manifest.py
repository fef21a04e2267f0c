from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ashbox.errors import CorruptManifest
from ashbox.repository.manifest import (
    ENTRY_SIZE,
    BlockEntries,
    Manifest,
    entry_of,
    manifest_key,
)

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
def test_a_flipped_bit_in_a_manifest_never_reads_as_another_manifest(
    manifest: Manifest, data: st.DataObject
) -> None:
    """The checksum covers the decoded body: a flip is caught, unless it falls
    on one of the few bits of the zstd frame that do not change what it
    decodes to (hypothesis found two), and then the manifest is the same."""
    encoded = bytearray(manifest.encode())
    bit = data.draw(st.integers(0, len(encoded) * 8 - 1))
    encoded[bit // 8] ^= 1 << (bit % 8)
    try:
        decoded = Manifest.decode(bytes(encoded))
    except CorruptManifest:
        return
    assert decoded == manifest


def test_a_flipped_bit_in_the_manifest_header_is_caught() -> None:
    manifest = Manifest(
        backup_id="b1",
        parent_id=None,
        volume_size=3 * 4096,
        block_size=4096,
        created_at=datetime(2026, 1, 2, tzinfo=UTC),
        entries=entry_of(b"\xaa" * 32) + entry_of(None) + entry_of(b"\xbb" * 32),
    )
    encoded = manifest.encode()
    for position in range(12):  # every bit of the 12-byte header
        for bit in range(8):
            damaged = bytearray(encoded)
            damaged[position] ^= 1 << bit
            with pytest.raises(CorruptManifest):
                Manifest.decode(bytes(damaged))


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


def small_blocks(count: int, entries: bytes | BlockEntries) -> Manifest:
    """A manifest of `count` blocks of 4 KiB with these entries."""
    return Manifest(
        backup_id="b",
        parent_id=None,
        volume_size=count * 4096,
        block_size=4096,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        entries=entries,
    )


@given(st.integers(0, 3 * BlockEntries.CHUNK_BLOCKS + 7), st.data())
def test_sparse_entries_encode_as_the_whole_array_does(count: int, data: st.DataObject) -> None:
    sparse = BlockEntries(count)
    whole = bytearray(count * ENTRY_SIZE)
    indices = data.draw(st.sets(st.integers(0, count - 1), max_size=20)) if count else set()
    for index in sorted(indices):
        entry = entry_of(bytes([index % 251 + 1]) * 32, bytes([7]) * 32 if index % 2 else None)
        sparse.set(index, entry)
        whole[index * ENTRY_SIZE : (index + 1) * ENTRY_SIZE] = entry
    assert len(sparse) == len(whole)
    assert b"".join(sparse.parts()) == whole

    from_sparse, from_whole = small_blocks(count, sparse), small_blocks(count, bytes(whole))
    assert from_sparse.encode() == from_whole.encode()
    assert list(from_sparse.blocks()) == list(from_whole.blocks())
    assert from_sparse.blob_ids() == from_whole.blob_ids()
    assert Manifest.decode(from_whole.encode()) == from_whole


def test_a_decoded_sparse_manifest_keeps_only_the_chunks_with_blobs() -> None:
    count = 200_000  # 13 MB of entries, two of them blobs
    entries = BlockEntries(count)
    entries.set(5, entry_of(b"a" * 32, b"t" * 32))
    entries.set(count - 1, entry_of(b"b" * 32))
    manifest = small_blocks(count, entries)
    encoded = manifest.encode()
    tracemalloc.start()
    try:
        decoded = Manifest.decode(encoded)
        # Only what manifest.py allocated: other threads of the test session
        # (a served API's worker) allocate meanwhile too.
        only_manifest = [tracemalloc.Filter(True, "*/ashbox/repository/manifest.py")]
        traces = tracemalloc.take_snapshot().filter_traces(only_manifest)
        kept = sum(stat.size for stat in traces.statistics("filename"))
    finally:
        tracemalloc.stop()
    assert kept < 4 * BlockEntries.CHUNK_BLOCKS * ENTRY_SIZE
    assert decoded == manifest
    assert (decoded.blob_id(5), decoded.page_table_id(5)) == (b"a" * 32, b"t" * 32)
    assert (decoded.blob_id(count - 1), decoded.blob_id(6)) == (b"b" * 32, None)
