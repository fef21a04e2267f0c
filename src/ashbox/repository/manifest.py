"""Manifests: one per backup, listing block by block a blob id or a hole.

Each blob entry also names the block's page table (docs/format.md, "Page
table"), which the next backup of the volume reads to find changed pages.

Stored zstd-compressed at `<container>/backups/<backup-id>`. Byte layout:
docs/format.md, "Manifest". Change both in one commit.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import overload

import blake3
import zstandard

from ashbox.errors import CorruptManifest
from ashbox.repository.blob import ID_SIZE

VERSION = 2
MAGIC = b"ASHMANIF"
FLAG_ZSTD = 0x01
FLAG_ENCRYPTED = 0x02  # reserved
ENTRY_HOLE = 0
ENTRY_BLOB = 1
ENTRY_SIZE = 1 + 2 * ID_SIZE  # type, blob id, page table id
_HEADER = struct.Struct("<8sBBH")  # magic, version, flags, reserved
_FIXED = struct.Struct("<QIQq")  # volume size, block size, block count, created_at µs
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_CHECKSUM_SIZE = 32
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOLE = bytes(ENTRY_SIZE)
_NO_ID = bytes(ID_SIZE)


@dataclass(frozen=True, slots=True)
class Manifest:
    """One backup. `entries` holds `block_count` records of ENTRY_SIZE bytes:
    a type byte, a blob id and a page table id (zeros for a hole; a zero page
    table id means the block has none). It is kept as given, never copied:
    for a large volume it is most of the manifest's memory, so the writer
    and `decode` keep it in chunks that cost nothing where all are holes."""

    backup_id: str
    parent_id: str | None
    volume_size: int
    block_size: int
    created_at: datetime
    entries: bytes | bytearray | memoryview | BlockEntries
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def block_count(self) -> int:
        return len(self.entries) // ENTRY_SIZE

    def blob_id(self, index: int) -> bytes | None:
        """Blob id of block `index`, None for a hole."""
        start = index * ENTRY_SIZE
        if self.entries[start] == ENTRY_HOLE:
            return None
        return bytes(self.entries[start + 1 : start + 1 + ID_SIZE])

    def page_table_id(self, index: int) -> bytes | None:
        """Blob id of the page table of block `index`; None for a hole or none."""
        start = index * ENTRY_SIZE + 1 + ID_SIZE
        table_id = bytes(self.entries[start : start + ID_SIZE])
        return None if table_id == _NO_ID else table_id

    def data_blocks(self) -> Iterator[tuple[int, bytes, bytes | None]]:
        """(block index, blob id, page table id or None) of every block that is
        not a hole, in order. Entries are looked at a chunk at a time, by their
        type bytes, so the holes of a sparse volume cost next to nothing."""
        first = 0
        for part in _parts(self.entries):
            view = memoryview(part)
            kinds = bytes(view[::ENTRY_SIZE])
            if kinds.count(ENTRY_HOLE) != len(kinds):
                for offset, kind in enumerate(kinds):
                    if kind == ENTRY_HOLE:
                        continue
                    at = offset * ENTRY_SIZE + 1
                    table = bytes(view[at + ID_SIZE : at + 2 * ID_SIZE])
                    blob = bytes(view[at : at + ID_SIZE])
                    yield first + offset, blob, None if table == _NO_ID else table
            first += len(kinds)

    def blocks(self) -> Iterator[tuple[int, bytes | None]]:
        """(block index, blob id or None for a hole) for every block, in order."""
        index = 0
        for data, blob_id, _ in self.data_blocks():
            yield from ((hole, None) for hole in range(index, data))
            yield data, blob_id
            index = data + 1
        yield from ((hole, None) for hole in range(index, self.block_count))

    def blob_ids(self) -> set[bytes]:
        """Every blob the manifest names: blocks and their page tables (a delta's
        bases are found through the index or the pack trailers)."""
        ids: set[bytes] = set()
        for _, blob_id, table_id in self.data_blocks():
            ids.add(blob_id)
            if table_id is not None:
                ids.add(table_id)
        return ids

    def block_length(self, index: int) -> int:
        """Bytes of the volume block `index` covers (the last block may be short)."""
        return min(self.block_size, self.volume_size - index * self.block_size)

    def encode(self, *, level: int = 3) -> bytes:
        """The stored bytes. The body is hashed and compressed in parts, so the
        entries are never copied into it."""
        head = bytearray(
            _FIXED.pack(
                self.volume_size,
                self.block_size,
                self.block_count,
                _to_micros(self.created_at),
            )
        )
        _put_str(head, self.backup_id, _U16)
        _put_str(head, self.parent_id or "", _U16)
        head += _U32.pack(len(self.metadata))
        for key in sorted(self.metadata):
            _put_str(head, key, _U16)
            _put_str(head, self.metadata[key], _U32)
        checksum = blake3.blake3(head)
        for part in _parts(self.entries):
            checksum.update(part)
        digest = checksum.digest()
        size = len(head) + len(self.entries) + len(digest)
        compressor = zstandard.ZstdCompressor(level=level, write_content_size=True).compressobj(
            size=size
        )
        parts = [_HEADER.pack(MAGIC, VERSION, FLAG_ZSTD, 0)]
        for part in (head, *_parts(self.entries), digest):
            parts.append(compressor.compress(part))
        parts.append(compressor.flush())
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """The manifest in `data`; CorruptManifest if it is truncated or garbled."""
        if len(data) < _HEADER.size:
            raise CorruptManifest("Manifest is too short for its header.")
        magic, version, flags, reserved = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise CorruptManifest("Manifest does not start with the manifest magic.")
        if version != VERSION:
            raise CorruptManifest(f"Manifest version {version} is not supported.")
        if flags & ~FLAG_ZSTD or reserved:
            raise CorruptManifest(f"Manifest has unsupported flags {flags:#04x}.")
        body = memoryview(data)[_HEADER.size :]
        if flags & FLAG_ZSTD:
            body = memoryview(_decompress(body))
        if len(body) < _CHECKSUM_SIZE or (
            blake3.blake3(body[:-_CHECKSUM_SIZE]).digest() != body[-_CHECKSUM_SIZE:]
        ):
            raise CorruptManifest("Manifest checksum does not match its content.")
        try:
            return _parse_body(body[:-_CHECKSUM_SIZE])
        except (struct.error, UnicodeDecodeError, ValueError, OverflowError) as e:
            raise CorruptManifest(f"Manifest is malformed: {e}") from e


class BlockEntries:
    """A manifest's entries as a writer fills them: chunks of CHUNK_BLOCKS
    entries, each allocated when one of its blocks is set, so the holes of a
    sparse volume cost no memory (a 256 GiB volume has 17 MiB of entries,
    almost all holes when it holds 4 GiB). Unset entries read as holes."""

    CHUNK_BLOCKS = 256

    def __init__(self, block_count: int) -> None:
        self.block_count = block_count
        self._chunks: dict[int, bytearray] = {}

    def __len__(self) -> int:
        return self.block_count * ENTRY_SIZE

    def set(self, index: int, entry: bytes) -> None:
        """Set the entry of block `index` (ENTRY_SIZE bytes, from `entry_of`)."""
        number, at = divmod(index, self.CHUNK_BLOCKS)
        chunk = self._chunks.get(number)
        if chunk is None:
            chunk = self._chunks[number] = bytearray(self._chunk_length(number))
        chunk[at * ENTRY_SIZE : (at + 1) * ENTRY_SIZE] = entry

    @overload
    def __getitem__(self, key: int) -> int: ...

    @overload
    def __getitem__(self, key: slice) -> bytes: ...

    def __getitem__(self, key: int | slice) -> int | bytes:
        """A byte, or a range of bytes within one entry, as of the whole array."""
        first = key if isinstance(key, int) else key.start
        number, at = divmod(first, self.CHUNK_BLOCKS * ENTRY_SIZE)
        chunk = self._chunks.get(number)
        if isinstance(key, int):
            return chunk[at] if chunk is not None else 0
        length = key.stop - key.start
        return bytes(chunk[at : at + length]) if chunk is not None else bytes(length)

    def __eq__(self, other: object) -> bool:
        """Equal to entries of the same bytes, chunked or not."""
        if isinstance(other, BlockEntries):
            other = b"".join(other.parts())
        if not isinstance(other, bytes | bytearray | memoryview):
            return NotImplemented
        return len(self) == len(other) and b"".join(self.parts()) == other

    def put_chunk(self, number: int, data: bytes | bytearray | memoryview) -> None:
        """Set the entries of chunk `number` at once (a decoded manifest's)."""
        if len(data) != self._chunk_length(number):
            raise ValueError(f"chunk {number} of {len(data)} bytes")
        self._chunks[number] = bytearray(data)

    def parts(self) -> Iterator[bytes | bytearray]:
        """The whole array, chunk by chunk; a zero chunk for the ones never set."""
        zeros = bytes(self.CHUNK_BLOCKS * ENTRY_SIZE)
        for number in range(-(-self.block_count // self.CHUNK_BLOCKS)):
            length = self._chunk_length(number)
            yield self._chunks.get(number) or zeros[:length]

    def _chunk_length(self, number: int) -> int:
        blocks = min(self.CHUNK_BLOCKS, self.block_count - number * self.CHUNK_BLOCKS)
        return blocks * ENTRY_SIZE


def _parts(
    entries: bytes | bytearray | memoryview | BlockEntries,
) -> Iterator[bytes | bytearray | memoryview]:
    if isinstance(entries, BlockEntries):
        return iter(entries.parts())
    return iter((memoryview(entries),))


def block_count_for(volume_size: int, block_size: int) -> int:
    return -(-volume_size // block_size)


def manifest_key(container: str, backup_id: str) -> str:
    return f"{container}/backups/{backup_id}"


def entry_of(blob_id: bytes | None, page_table_id: bytes | None = None) -> bytes:
    """The ENTRY_SIZE record of a block: a hole, or a blob and its page table."""
    if blob_id is None:
        return _HOLE
    table_id = page_table_id or _NO_ID
    if len(blob_id) != ID_SIZE or len(table_id) != ID_SIZE:
        raise ValueError(f"a blob id has {ID_SIZE} bytes")
    return bytes([ENTRY_BLOB]) + blob_id + table_id


def _parse_body(body: memoryview) -> Manifest:
    volume_size, block_size, block_count, micros = _FIXED.unpack_from(body)
    pos = _FIXED.size
    backup_id, pos = _get_str(body, pos, _U16)
    parent_id, pos = _get_str(body, pos, _U16)
    (count,) = _U32.unpack_from(body, pos)
    pos += _U32.size
    metadata: dict[str, str] = {}
    for _ in range(count):
        key, pos = _get_str(body, pos, _U16)
        value, pos = _get_str(body, pos, _U32)
        if key in metadata:
            raise CorruptManifest(f"Manifest metadata key {key!r} appears twice.")
        metadata[key] = value
    if block_size == 0 or block_count != block_count_for(volume_size, block_size):
        raise CorruptManifest(
            f"Manifest has {block_count} blocks of {block_size} for {volume_size} bytes."
        )
    raw = body[pos:]
    if len(raw) != block_count * ENTRY_SIZE:
        raise CorruptManifest(f"Manifest entries take {len(raw)} bytes, not {block_count}.")
    entries = BlockEntries(block_count)
    step = BlockEntries.CHUNK_BLOCKS * ENTRY_SIZE
    zeros = bytes(step)
    for first in range(0, len(raw), step):
        chunk = raw[first : first + step]
        if chunk == zeros[: len(chunk)]:
            continue  # holes only: no memory, like the writer's
        _check_entries(chunk, first // ENTRY_SIZE)
        entries.put_chunk(first // step, chunk)
    return Manifest(
        backup_id=backup_id,
        parent_id=parent_id or None,
        volume_size=volume_size,
        block_size=block_size,
        created_at=_EPOCH + timedelta(microseconds=micros),
        entries=entries,
        metadata=metadata,
    )


def _check_entries(chunk: memoryview, first: int) -> None:
    """CorruptManifest for an entry of an unknown type or a hole naming a blob."""
    for start in range(0, len(chunk), ENTRY_SIZE):
        kind = chunk[start]
        if kind == ENTRY_HOLE and chunk[start : start + ENTRY_SIZE] != _HOLE:
            raise CorruptManifest(
                f"Manifest hole entry {first + start // ENTRY_SIZE} names a blob."
            )
        if kind not in (ENTRY_HOLE, ENTRY_BLOB):
            raise CorruptManifest(f"Manifest entry {first + start // ENTRY_SIZE} has type {kind}.")


def _decompress(body: memoryview) -> bytes:
    try:
        declared = zstandard.frame_content_size(body)
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        raw: bytes = decompressor.decompress(body)
    except zstandard.ZstdError as e:
        raise CorruptManifest(f"Manifest does not decompress: {e}") from e
    if not decompressor.eof or decompressor.unused_data or len(raw) != declared:
        raise CorruptManifest("Manifest is truncated or has trailing bytes.")
    return raw


def _put_str(out: bytearray, text: str, size: struct.Struct) -> None:
    raw = text.encode()
    out += size.pack(len(raw))
    out += raw


def _get_str(body: memoryview, pos: int, size: struct.Struct) -> tuple[str, int]:
    (length,) = size.unpack_from(body, pos)
    pos += size.size
    if pos + length > len(body):
        raise CorruptManifest("Manifest string runs past its end.")
    return bytes(body[pos : pos + length]).decode(), pos + length


def _to_micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("a manifest time must carry a time zone")
    return (moment - _EPOCH) // timedelta(microseconds=1)
