"""Blobs: a block as stored in a pack, compressed with zstd or raw.

A blob is named by the BLAKE3-256 hash of the raw block (its blob id); its
flags say how the payload is encoded. Byte layout: docs/format.md, "Blob".
Change both in one commit.
"""

from __future__ import annotations

import threading

import blake3
import zstandard

from ashbox.errors import CorruptBlob

ID_SIZE = 32
FLAG_ZSTD = 0x01
FLAG_ENCRYPTED = 0x02  # reserved: AES-256-GCM, not written by format v1
FLAG_DELTA = 0x04  # reserved: page delta against a base blob, not written by format v1
SUPPORTED_FLAGS = FLAG_ZSTD


def blob_id_of(raw: bytes | bytearray | memoryview) -> bytes:
    """The blob id of a raw block: its BLAKE3-256 digest."""
    digest: bytes = blake3.blake3(raw, max_threads=1).digest()
    return digest


class BlobCodec:
    """Encodes and decodes blobs; safe to share between threads (one zstd
    context per thread)."""

    def __init__(self, compression_level: int = 3) -> None:
        if not -7 <= compression_level <= 22:
            raise ValueError(f"zstd level {compression_level} is outside -7..22")
        self.compression_level = compression_level
        self._local = threading.local()

    def encode(self, raw: bytes | bytearray | memoryview) -> tuple[int, bytes | memoryview]:
        """(flags, payload) for a raw block: zstd when that shrinks it, else raw."""
        compressed: bytes = self._compressor().compress(raw)
        if len(compressed) < len(raw):
            return FLAG_ZSTD, compressed
        return 0, memoryview(raw)

    def decode(
        self, blob_id: bytes, payload: bytes | memoryview, flags: int, raw_length: int
    ) -> bytes:
        """The raw block; CorruptBlob unless it decodes to `raw_length` bytes whose
        BLAKE3 is `blob_id`."""
        name = blob_id.hex()
        if flags & ~SUPPORTED_FLAGS:
            raise CorruptBlob(f"Blob {name} has unsupported flags {flags:#04x}.")
        if flags & FLAG_ZSTD:
            try:
                declared = zstandard.frame_content_size(payload)
                if declared != raw_length:
                    raise CorruptBlob(
                        f"Blob {name} declares {declared} raw bytes, the index {raw_length}."
                    )
                raw: bytes = self._decompressor().decompress(payload, max_output_size=raw_length)
            except zstandard.ZstdError as e:
                raise CorruptBlob(f"Blob {name} does not decompress: {e}") from e
        else:
            raw = bytes(payload)
        if len(raw) != raw_length:
            raise CorruptBlob(f"Blob {name} holds {len(raw)} bytes, expected {raw_length}.")
        if blob_id_of(raw) != blob_id:
            raise CorruptBlob(f"Blob {name} does not match its id.")
        return raw

    def _compressor(self) -> zstandard.ZstdCompressor:
        compressor: zstandard.ZstdCompressor | None = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = zstandard.ZstdCompressor(
                level=self.compression_level, write_content_size=True, write_checksum=False
            )
            self._local.compressor = compressor
        return compressor

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        decompressor: zstandard.ZstdDecompressor | None = getattr(self._local, "decompressor", None)
        if decompressor is None:
            decompressor = zstandard.ZstdDecompressor()
            self._local.decompressor = decompressor
        return decompressor
