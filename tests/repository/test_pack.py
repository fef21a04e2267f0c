from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ashbox.errors import CorruptPack
from ashbox.repository.blob import FLAG_ZSTD
from ashbox.repository.pack import (
    FOOTER_SIZE,
    HEADER_SIZE,
    PackBuilder,
    SealedPack,
    decode_pack,
    decode_trailer,
    pack_id_of,
    pack_key,
    trailer_length,
)

from .strategies import blob_ids

pack_blobs = st.lists(
    st.tuples(blob_ids, st.sampled_from([0, FLAG_ZSTD]), st.binary(min_size=1, max_size=300)),
    max_size=12,
)


def build(blobs: list[tuple[bytes, int, bytes]]) -> SealedPack:
    builder = PackBuilder()
    for blob_id, flags, payload in blobs:
        builder.add(blob_id, flags, payload, len(payload) + 5)
    assert builder.size == HEADER_SIZE + sum(len(p) for _, _, p in blobs) + 84 * len(blobs) + 32
    return builder.seal()


@given(pack_blobs)
def test_a_pack_round_trips_its_entries_and_blobs(blobs: list[tuple[bytes, int, bytes]]) -> None:
    sealed = build(blobs)
    data = bytes(sealed.data)
    entries = decode_pack(data)
    assert entries == list(sealed.entries)
    assert [(e.blob_id, e.flags, data[e.offset : e.offset + e.length]) for e in entries] == blobs
    assert all(e.raw_length == e.length + 5 and e.base_id is None for e in entries)
    assert sealed.pack_id == pack_id_of(data)


@given(pack_blobs)
def test_the_trailer_alone_is_enough_to_list_the_blobs(
    blobs: list[tuple[bytes, int, bytes]],
) -> None:
    data = bytes(build(blobs).data)
    size = trailer_length(data[-FOOTER_SIZE:])
    assert decode_trailer(data[-size:], len(data)) == decode_pack(data)


@given(pack_blobs, st.data())
def test_a_truncated_pack_is_corrupt(
    blobs: list[tuple[bytes, int, bytes]], data: st.DataObject
) -> None:
    pack = bytes(build(blobs).data)
    cut = data.draw(st.integers(0, len(pack) - 1))
    with pytest.raises(CorruptPack):
        decode_pack(pack[:cut])


@given(pack_blobs, st.data())
def test_a_flipped_bit_outside_the_blobs_is_caught(
    blobs: list[tuple[bytes, int, bytes]], data: st.DataObject
) -> None:
    sealed = build(blobs)
    pack = bytearray(sealed.data)
    blobs_end = sealed.entries[-1].offset + sealed.entries[-1].length if blobs else HEADER_SIZE
    positions = list(range(HEADER_SIZE * 8)) + list(range(blobs_end * 8, len(pack) * 8))
    bit = data.draw(st.sampled_from(positions))
    pack[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(CorruptPack):
        decode_pack(bytes(pack))


def test_a_pack_with_trailing_garbage_is_corrupt() -> None:
    pack = bytes(build([(b"\1" * 32, 0, b"abc")]).data)
    with pytest.raises(CorruptPack):
        decode_pack(pack + b"x")
    with pytest.raises(CorruptPack):
        decode_pack(b"x" + pack)


def test_an_empty_pack_is_valid_but_holds_nothing() -> None:
    assert decode_pack(bytes(PackBuilder().seal().data)) == []


def test_a_blob_with_a_delta_flag_cannot_be_added_in_format_v1() -> None:
    with pytest.raises(ValueError):
        PackBuilder().add(b"\1" * 32, 0x04, b"abc", 3)


def test_pack_keys_fan_out_by_the_first_two_hex_digits() -> None:
    assert pack_key("volumebackups", "abcdef") == "volumebackups/data/ab/abcdef"
