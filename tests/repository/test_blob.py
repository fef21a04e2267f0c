from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ashbox.errors import CorruptBlob
from ashbox.repository.blob import FLAG_DELTA, FLAG_ZSTD, BlobCodec, blob_id_of

from .strategies import raw_blocks

codec = BlobCodec(compression_level=3)


@given(raw_blocks)
def test_a_blob_round_trips(raw: bytes) -> None:
    flags, payload = codec.encode(raw)
    assert codec.decode(blob_id_of(raw), bytes(payload), flags, len(raw)) == raw


def test_a_compressible_block_is_stored_compressed() -> None:
    raw = b"abcd" * 10_000
    flags, payload = codec.encode(raw)
    assert flags == FLAG_ZSTD
    assert len(payload) < len(raw) // 10


def test_an_incompressible_block_is_stored_raw() -> None:
    raw = os.urandom(65536)
    flags, payload = codec.encode(raw)
    assert flags == 0
    assert bytes(payload) == raw


@pytest.mark.parametrize("text_at", [0, 300_000, (1 << 20) - 140_000])
def test_a_random_block_with_a_compressible_eighth_anywhere_is_compressed(text_at: int) -> None:
    raw = bytearray(os.urandom(1 << 20))
    raw[text_at : text_at + 140_000] = b"log line 42: all is well\n" * (140_000 // 26) + bytes(
        140_000 % 26
    )
    flags, payload = codec.encode(raw)
    assert flags == FLAG_ZSTD
    assert len(payload) < len(raw) - 100_000


def test_a_large_block_whose_samples_do_not_compress_is_stored_raw_untried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = os.urandom(1 << 20)
    sizes: list[int] = []
    real = codec._compressor()
    monkeypatch.setattr(codec, "_compressor", lambda: _Counting(real, sizes))
    flags, payload = codec.encode(raw)
    assert (flags, bytes(payload)) == (0, raw)
    assert sizes == [4096] * 8  # the samples only


class _Counting:
    def __init__(self, compressor: object, sizes: list[int]) -> None:
        self._compressor, self._sizes = compressor, sizes

    def compress(self, data: bytes) -> bytes:
        self._sizes.append(len(data))
        return self._compressor.compress(data)  # type: ignore[attr-defined, no-any-return]


def test_the_blob_id_is_the_blake3_of_the_raw_block() -> None:
    assert blob_id_of(b"abc").hex() == (
        "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
    )


@given(raw_blocks, st.data())
def test_a_flipped_bit_in_a_blob_never_decodes_to_other_bytes(
    raw: bytes, data: st.DataObject
) -> None:
    flags, payload = codec.encode(raw)
    damaged = bytearray(payload)
    bit = data.draw(st.integers(0, len(damaged) * 8 - 1))
    damaged[bit // 8] ^= 1 << (bit % 8)
    # A zstd frame has bits its decoder ignores (the header's unused bit): the
    # promise is the original block or CorruptBlob, never other bytes.
    with contextlib.suppress(CorruptBlob):
        assert codec.decode(blob_id_of(raw), bytes(damaged), flags, len(raw)) == raw


@given(raw_blocks, st.data())
def test_a_truncated_blob_is_caught(raw: bytes, data: st.DataObject) -> None:
    flags, payload = codec.encode(raw)
    cut = data.draw(st.integers(0, len(payload) - 1))
    with pytest.raises(CorruptBlob):
        codec.decode(blob_id_of(raw), bytes(payload)[:cut], flags, len(raw))


def test_a_blob_under_another_id_is_corrupt() -> None:
    flags, payload = codec.encode(b"x" * 1000)
    with pytest.raises(CorruptBlob, match="does not match its id"):
        codec.decode(blob_id_of(b"y" * 1000), bytes(payload), flags, 1000)


def test_a_wrong_raw_length_is_corrupt() -> None:
    raw = b"z" * 1000
    for flags, payload in (codec.encode(raw), (0, raw)):
        with pytest.raises(CorruptBlob):
            codec.decode(blob_id_of(raw), bytes(payload), flags, 999)


def test_reserved_flags_are_refused_by_format_v1() -> None:
    with pytest.raises(CorruptBlob, match="unsupported flags"):
        codec.decode(blob_id_of(b"a"), b"a", FLAG_DELTA, 1)


def test_a_level_outside_zstd_range_is_refused() -> None:
    with pytest.raises(ValueError):
        BlobCodec(compression_level=23)
