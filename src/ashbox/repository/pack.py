"""Packs: a header, blobs back to back, then a trailer indexing them.

A pack is named by the BLAKE3-256 of all its bytes (hex) and stored at
`<container>/data/<first 2 hex>/<pack-id>`. In an encrypted repository the
trailer's entries are sealed with AES-256-GCM and the footer says so. Byte
layout: docs/format.md, "Pack" and "Encryption". Change both in one commit.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass

import blake3

from ashbox.errors import CorruptPack
from ashbox.repository.blob import FLAG_DELTA, FLAG_ENCRYPTED, FLAG_ZSTD, ID_SIZE, BlobCodec
from ashbox.repository.crypto import AAD_TRAILER, OVERHEAD, Cipher
from ashbox.repository.index import BlobLocation, Index

VERSION = 1
HEADER = b"ASHPACK" + bytes([VERSION])
HEADER_SIZE = len(HEADER)
FOOTER_MAGIC = b"ASHPKEND"
_ENTRY = struct.Struct("<32s32sQIIB3s")  # blob id, base, offset, length, raw length, flags, 0
_FOOTER = struct.Struct("<I16sBB2x8s")  # entry count, trailer checksum, version, flags, magic
TRAILER_ENCRYPTED = 0x01  # footer flag: the entries are sealed (nonce, ciphertext, tag)
ENTRY_SIZE = _ENTRY.size
FOOTER_SIZE = _FOOTER.size
_KNOWN_FLAGS = FLAG_ZSTD | FLAG_ENCRYPTED | FLAG_DELTA
_NO_BASE = bytes(ID_SIZE)
_RESERVED = bytes(3)
_MAX_LENGTH = (1 << 32) - 1


@dataclass(frozen=True, slots=True)
class PackEntry:
    """One blob of a pack: its id, byte range in the pack, raw size and flags.
    `base_id` names the base blob of a page delta (FLAG_DELTA), else None."""

    blob_id: bytes
    offset: int
    length: int
    raw_length: int
    flags: int
    base_id: bytes | None = None

    def location(self, pack_id: str) -> BlobLocation:
        return BlobLocation(
            blob_id=self.blob_id,
            pack_id=pack_id,
            offset=self.offset,
            length=self.length,
            raw_length=self.raw_length,
            flags=self.flags,
            base_id=self.base_id,
        )


@dataclass(frozen=True, slots=True)
class SealedPack:
    """A finished pack ready to upload."""

    pack_id: str
    data: memoryview  # of the builder's buffer
    entries: tuple[PackEntry, ...]


class PackBuilder:
    """Appends blobs to a pack in memory, then seals it with its trailer
    (encrypted with `cipher` in an encrypted repository)."""

    def __init__(
        self, cipher: Cipher | None = None, *, buffer: bytearray | mmap.mmap | None = None
    ) -> None:
        """`buffer`: memory to build the pack in (its bytes are overwritten; it
        is never resized, a pack that outgrows it moves to a bigger one), so
        each blob is copied once and a caller can reuse the buffer after the
        sealed pack is uploaded."""
        self._data: bytearray | mmap.mmap = bytearray(HEADER_SIZE) if buffer is None else buffer
        self._data[:HEADER_SIZE] = HEADER
        self._end = HEADER_SIZE
        self._entries: list[PackEntry] = []
        self._cipher = cipher

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes the sealed pack would have now."""
        sealing = OVERHEAD if self._cipher is not None else 0
        return self._end + ENTRY_SIZE * len(self._entries) + sealing + FOOTER_SIZE

    def add(
        self,
        blob_id: bytes,
        flags: int,
        payload: bytes | memoryview,
        raw_length: int,
        *,
        base_id: bytes | None = None,
    ) -> PackEntry:
        """Append a blob; a delta (FLAG_DELTA) names its `base_id`, no other blob does."""
        has_base = base_id is not None and len(base_id) == ID_SIZE and base_id != _NO_BASE
        if len(blob_id) != ID_SIZE or flags & ~_KNOWN_FLAGS or bool(flags & FLAG_DELTA) != has_base:
            raise ValueError(f"cannot add blob {blob_id.hex()} with flags {flags:#04x}")
        if not 0 < len(payload) <= _MAX_LENGTH or not 0 < raw_length <= _MAX_LENGTH:
            raise ValueError(f"blob {blob_id.hex()} has a bad size")
        entry = PackEntry(blob_id, self._end, len(payload), raw_length, flags, base_id)
        self._put(payload)
        self._entries.append(entry)
        return entry

    def seal(self) -> SealedPack:
        """The finished pack; the builder must not be used afterwards."""
        self._put(encode_trailer(self._entries, self._cipher))
        data = memoryview(self._data)[: self._end]
        pack_id = pack_id_of(data)
        sealed = SealedPack(pack_id, data, tuple(self._entries))
        self._data = bytearray()
        self._end = 0
        self._entries = []
        return sealed

    def _put(self, payload: bytes | memoryview) -> None:
        end = self._end + len(payload)
        if end > len(self._data):
            bigger = bytearray(max(end, 2 * len(self._data)))
            bigger[: self._end] = memoryview(self._data)[: self._end]
            self._data = bigger
        self._data[self._end : end] = payload
        self._end = end


def begin_upload(
    index: Index, container: str, sealed: SealedPack, owner: str, codec: BlobCodec
) -> SealedPack:
    """Record `sealed` as pending for `owner` (`Index.begin_pack`) before its
    upload; the pack to upload. Two packs of the same blobs in the same order
    have the same bytes, so the same id, and the one the index knows may be a
    dead pack that the collector is deleting, which an upload of that id
    would lose with it: such a pack gets one more blob, of 16 random bytes,
    and is sealed again, under another id."""
    if index.begin_pack(container, sealed.pack_id, owner):
        return sealed
    builder = PackBuilder(codec.cipher)
    for e in sealed.entries:
        blob = sealed.data[e.offset : e.offset + e.length]
        builder.add(e.blob_id, e.flags, blob, e.raw_length, base_id=e.base_id)
    salt = os.urandom(16)
    flags, payload = codec.encode(salt)
    builder.add(codec.blob_id(salt), flags, payload, len(salt))
    salted = builder.seal()
    if not index.begin_pack(container, salted.pack_id, owner):
        raise RuntimeError(f"the index knows pack {salted.pack_id} before its upload")
    return salted


def pack_id_of(data: bytes | bytearray | memoryview) -> str:
    """The id of a pack: hex BLAKE3-256 of all its bytes."""
    digest: str = blake3.blake3(data, max_threads=1).hexdigest()
    return digest


def pack_key(container: str, pack_id: str) -> str:
    return f"{container}/data/{pack_id[:2]}/{pack_id}"


def encode_trailer(entries: list[PackEntry], cipher: Cipher | None = None) -> bytes:
    """The trailer of a pack holding `entries`: sealed by `cipher` if given."""
    body = b"".join(
        _ENTRY.pack(
            e.blob_id, e.base_id or _NO_BASE, e.offset, e.length, e.raw_length, e.flags, _RESERVED
        )
        for e in entries
    )
    flags = 0
    if cipher is not None:
        body = bytes(cipher.seal(body, AAD_TRAILER))  # a trailer is small
        flags = TRAILER_ENCRYPTED
    checksum = blake3.blake3(body).digest()[:16]
    return body + _FOOTER.pack(len(entries), checksum, VERSION, flags, FOOTER_MAGIC)


def trailer_length(footer: bytes) -> int:
    """From the last FOOTER_SIZE bytes of a pack, the length of its whole trailer
    (entries and footer): read that many bytes from the end for `decode_trailer`."""
    _, _, body_size, _ = _parse_footer(footer)
    return body_size + FOOTER_SIZE


def decode_trailer(tail: bytes, pack_size: int, cipher: Cipher | None = None) -> list[PackEntry]:
    """Entries of a pack of `pack_size` bytes whose trailer is `tail` (its last
    `trailer_length` bytes); CorruptPack for anything malformed. `cipher` is
    the encrypted repository's, None for an unencrypted one: a trailer must be
    sealed exactly when it is given."""
    if len(tail) < FOOTER_SIZE:
        raise CorruptPack(f"Pack trailer is {len(tail)} bytes, shorter than its footer.")
    count, checksum, body_size, sealed = _parse_footer(tail[-FOOTER_SIZE:])
    if len(tail) != body_size + FOOTER_SIZE:
        raise CorruptPack(f"Pack trailer is {len(tail)} bytes, its footer says {count} entries.")
    blobs_end = pack_size - len(tail)
    if blobs_end < HEADER_SIZE:
        raise CorruptPack(f"Pack of {pack_size} bytes is too short for {count} entries.")
    body = tail[:body_size]
    if blake3.blake3(body).digest()[:16] != checksum:
        raise CorruptPack("Pack trailer checksum does not match its entries.")
    if sealed:
        if cipher is None:
            raise CorruptPack("Pack trailer is encrypted in an unencrypted repository.")
        body = cipher.open(body, AAD_TRAILER, error=CorruptPack, what="Pack trailer")
    elif cipher is not None:
        raise CorruptPack("Pack trailer is not encrypted in an encrypted repository.")
    entries = []
    expected = HEADER_SIZE
    for blob_id, base_id, offset, length, raw_length, flags, zero in _ENTRY.iter_unpack(body):
        name = blob_id.hex()
        if offset != expected or length == 0 or offset + length > blobs_end:
            raise CorruptPack(f"Pack entry {name} has a bad range {offset}+{length}.")
        if flags & ~_KNOWN_FLAGS or raw_length == 0 or zero != _RESERVED:
            raise CorruptPack(f"Pack entry {name} has bad flags, raw length or reserved bytes.")
        has_base = bool(flags & FLAG_DELTA)
        if has_base == (base_id == _NO_BASE):
            raise CorruptPack(f"Pack entry {name} has a base id that its flags contradict.")
        entries.append(
            PackEntry(blob_id, offset, length, raw_length, flags, base_id if has_base else None)
        )
        expected = offset + length
    if expected != blobs_end:
        raise CorruptPack(f"Pack blobs end at {expected}, the trailer starts at {blobs_end}.")
    return entries


def decode_pack(pack: bytes | bytearray, cipher: Cipher | None = None) -> list[PackEntry]:
    """Entries of a complete pack, validated; CorruptPack for anything else."""
    if not pack.startswith(HEADER):
        raise CorruptPack("Pack does not start with the pack header.")
    if len(pack) < HEADER_SIZE + FOOTER_SIZE:
        raise CorruptPack(f"Pack of {len(pack)} bytes is too short.")
    size = trailer_length(bytes(pack[-FOOTER_SIZE:]))
    if size > len(pack) - HEADER_SIZE:
        raise CorruptPack(f"Pack trailer of {size} bytes does not fit in {len(pack)} bytes.")
    return decode_trailer(bytes(pack[-size:]), len(pack), cipher)


def _parse_footer(footer: bytes) -> tuple[int, bytes, int, bool]:
    if len(footer) != FOOTER_SIZE:
        raise CorruptPack(f"Pack footer is {len(footer)} bytes, expected {FOOTER_SIZE}.")
    count, checksum, version, flags, magic = _FOOTER.unpack(footer)
    if magic != FOOTER_MAGIC:
        raise CorruptPack("Pack does not end with the trailer magic.")
    if version != VERSION:
        raise CorruptPack(f"Pack version {version} is not supported.")
    if flags & ~TRAILER_ENCRYPTED or footer[22:24] != b"\0\0":
        raise CorruptPack("Pack footer has unknown flags or nonzero reserved bytes.")
    sealed = bool(flags & TRAILER_ENCRYPTED)
    return count, checksum, count * ENTRY_SIZE + (OVERHEAD if sealed else 0), sealed
