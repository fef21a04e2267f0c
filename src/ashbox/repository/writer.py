"""The backup pipeline: volume → blocks → blobs → packs → manifest.

Implements DESIGN.md §4 and the write order of docs/format.md, "Write order".
Stages, overlapped on bounded batches of blocks:

    read into reused buffers, hash, page table and encoded ahead (thread
    pool; reads leave the page cache as they found it: volumes/file.py) →
    one `index.reuse` per batch (caller thread) → packs: filled, uploaded,
    committed (pack_writer.py) → ... → `index.keep_references` → manifest put

The worker that hashes a block also encodes it: as a page delta against
the parent's block when its page table (read ahead) says that pays, else
whole while most recent blocks were new; so the caller thread mostly
collects finished work. A block found stored already costs its encoding
only in a batch that began while blocks were new; the others are encoded
after the `reuse` that found them new (measured on the bench images: docs/
performance.md).

A block not in the repository whose offset holds a block of the same length
in the parent backup is stored as a page delta against it (docs/format.md,
"Delta") when few of its pages changed and the parent's delta chain is short
(the choice and the chains: delta_bases.py); the backup then references the
whole chain, so a base lives as long as any backup that needs it.

At most three batches of blocks and the pack writer's buffers are in memory
at once, whatever the volume size. The index is called from the thread that
runs the backup, and from the one reading the parent's windows ahead
(delta_bases.py). (Sealing packs in the upload pool, which would call
`begin_pack` from there, was measured: no faster.)
"""

from __future__ import annotations

import logging
import mmap
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ashbox import faults
from ashbox.errors import VolumeIOError
from ashbox.repository.blob import BlobCodec
from ashbox.repository.crypto import seal_manifest
from ashbox.repository.delta import (
    PageHasher,
    encode_delta_blob,
    page_views,
)
from ashbox.repository.delta_bases import Base, DeltaBases, delta_pages
from ashbox.repository.index import Index
from ashbox.repository.manifest import (
    BlockEntries,
    Manifest,
    block_count_for,
    entry_of,
    manifest_key,
)
from ashbox.repository.pack_writer import PackWriter
from ashbox.storage.base import Store
from ashbox.volumes.file import VolumeReader, aligned_buffer, close_later, open_for_read

log = logging.getLogger(__name__)

_BATCH_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class BackupStats:
    """What a backup did. Every block is exactly one of: a hole, the first
    occurrence of a new blob, or a reused blob (already in the repository or
    earlier in this backup): hole_blocks + new_blobs + reused_blobs == blocks."""

    volume_size: int
    stored_bytes: int
    new_blobs: int
    reused_blobs: int
    hole_blocks: int
    packs: int
    delta_blobs: int = 0


@dataclass(frozen=True, slots=True)
class WriterSettings:
    store: Store
    container: str
    index: Index
    codec: BlobCodec
    block_size: int
    pack_size: int
    threads: int
    upload_threads: int


def write_backup(
    settings: WriterSettings,
    backup_id: str,
    source: Path,
    *,
    parent_id: str | None,
    metadata: Mapping[str, str],
    progress: Callable[[int, int], None],
    parent: Manifest | None = None,
    fenced: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> BackupStats:
    """Back `source` up as `backup_id`; the manifest is put only after every pack
    it needs is committed. Changed blocks are stored as deltas against the
    blocks of `parent` (the manifest of `parent_id`) when that pays. An
    exception (also from `progress`) propagates and may leave pending packs,
    which `Repository.discard_incomplete` removes. The backup's references and
    its manifest are written inside `fenced()`, which raises if this run may no
    longer write them (another run of the backup took over)."""
    if parent is not None and parent.block_size != settings.block_size:
        parent = None
    with open_for_read(source) as volume:
        run = _Run(settings, backup_id, volume, progress, parent)
        try:
            run.back_up()
        finally:
            run.shutdown()
        manifest = Manifest(
            backup_id=backup_id,
            parent_id=parent_id,
            volume_size=volume.size,
            block_size=settings.block_size,
            created_at=datetime.now(UTC),
            entries=run.entries,
            metadata=dict(metadata),
        )
    encoded = manifest.encode()
    if settings.codec.cipher is not None:
        encoded = seal_manifest(encoded, backup_id, settings.codec.cipher)
    with fenced():
        dead = settings.index.keep_references(
            settings.container, backup_id, sorted(manifest.blob_ids())
        )
        settings.store.put(manifest_key(settings.container, backup_id), encoded)
    if dead:
        log.info("backup %s left %d packs dead (bases it did not use)", backup_id, len(dead))
    faults.point("create.manifest_written")
    stats = run.stats()
    progress(volume.size, volume.size)
    log.info(
        "backup written backup_id=%s size=%d stored=%d new=%d deltas=%d reused=%d holes=%d "
        "packs=%d",
        backup_id,
        stats.volume_size,
        stats.stored_bytes,
        stats.new_blobs,
        stats.delta_blobs,
        stats.reused_blobs,
        stats.hole_blocks,
        stats.packs,
    )
    return stats


Encoded = tuple[int, bytes | memoryview]  # (flags, payload) of a blob


@dataclass(slots=True)
class _Digest:
    """What the worker that read a block made of it: its blob id (None for a
    hole) and, unless it is the parent's block at the same offset, its page
    table, that table's blob id and encoding; and the block itself encoded
    ahead, as a delta on its `Base` when that pays, else whole if asked."""

    blob_id: bytes | None
    table: bytes | None = None
    table_id: bytes | None = None
    table_encoded: Encoded | None = None
    encoded: Encoded | None = None
    is_delta: bool = False


@dataclass(slots=True)
class _Block:
    index: int
    buf: mmap.mmap | None  # None once nothing needs the block's bytes
    length: int
    base: Base | None  # the parent's block, if this one may be a delta on it
    blob_id: bytes | None = None
    encoded: Future[Encoded] | Encoded | None = None
    base_id: bytes | None = None


def _needs_buffer(block: _Block) -> bool:
    """Whether a classified block's buffer is still needed: by an encoding
    under way, or by a payload that is a view of it (a raw blob)."""
    encoded = block.encoded
    if isinstance(encoded, Future):
        return True
    return (
        encoded is not None and isinstance(encoded[1], memoryview) and encoded[1].obj is block.buf
    )


@dataclass(slots=True)
class _Batch:
    blocks: list[_Block]
    digests: list[Future[_Digest]]  # of the blocks, until the batch is classified
    end: int  # volume offset where the batch's last block ends
    tables: list[tuple[bytes, int, Encoded]] = field(default_factory=list)  # id, length, blob


@dataclass(slots=True)
class _Run:
    settings: WriterSettings
    backup_id: str
    volume: VolumeReader
    progress: Callable[[int, int], None]
    parent: Manifest | None
    entries: BlockEntries = field(init=False)
    _cpu: ThreadPoolExecutor = field(init=False)
    _free: list[mmap.mmap] = field(init=False)
    _zero_ids: dict[int, bytes] = field(init=False)  # block length → id of that many zeros
    _hasher: PageHasher = field(init=False)
    _pages: dict[int, list[memoryview]] = field(init=False)  # id of a whole buffer → its pages
    _bases: DeltaBases = field(init=False)
    _packs: PackWriter = field(init=False)
    _data_blocks: int = 0
    _new_blobs: int = 0
    _delta_blobs: int = 0
    _encode_ahead: bool = True  # whether workers compress whole blocks before the index is asked

    def __post_init__(self) -> None:
        s = self.settings
        self.entries = BlockEntries(block_count_for(self.volume.size, s.block_size))
        self._free = []
        self._zero_ids = {
            n: s.codec.blob_id(bytes(n)) for n in {s.block_size, self.volume.size % s.block_size}
        }
        self._hasher = PageHasher(s.codec.blob_id(b"ashbox page fingerprints"))
        self._pages = {}
        self._bases = DeltaBases(
            store=s.store,
            container=s.container,
            index=s.index,
            codec=s.codec,
            backup_id=self.backup_id,
            parent=self.parent,
        )
        self._packs = PackWriter(
            store=s.store,
            container=s.container,
            index=s.index,
            codec=s.codec,
            pack_size=s.pack_size,
            upload_threads=s.upload_threads,
            backup_id=self.backup_id,
        )
        self._cpu = ThreadPoolExecutor(s.threads, thread_name_prefix="ashbox-backup")

    @property
    def batch_blocks(self) -> int:
        return max(2, min(256, _BATCH_BYTES // self.settings.block_size))

    def back_up(self) -> None:
        hashed: deque[_Batch] = deque()
        encoding: deque[_Batch] = deque()
        for indices in self._batches():
            hashed.append(self._read(indices))
            if len(hashed) > 1:
                encoding.append(self._classify(hashed.popleft()))
            if len(encoding) > 1:
                self._append(encoding.popleft())
            self._packs.commit_finished()
        while hashed:
            encoding.append(self._classify(hashed.popleft()))
        while encoding:
            self._append(encoding.popleft())
        self._packs.finish()

    def shutdown(self) -> None:
        """Stop the pools: queued work is dropped, running uploads finish (their
        packs stay pending for discard_incomplete). The buffers are unmapped."""
        self._cpu.shutdown(wait=True, cancel_futures=True)
        self._bases.close()
        self._packs.shutdown()
        self._pages.clear()  # their views would keep the buffers mapped
        close_later(self._free)
        self._free = []

    def stats(self) -> BackupStats:
        count = self.entries.block_count
        return BackupStats(
            volume_size=self.volume.size,
            stored_bytes=self._packs.stored_bytes,
            new_blobs=self._new_blobs,
            reused_blobs=self._data_blocks - self._new_blobs,
            hole_blocks=count - self._data_blocks,
            packs=self._packs.packs,
            delta_blobs=self._delta_blobs,
        )

    def _batches(self) -> Iterator[list[int]]:
        """Indices of the blocks that may hold data, in order, in batches."""
        bs = self.settings.block_size
        batch: list[int] = []
        last = -1
        for offset, length in self.volume.data_extents(bs):
            for index in range(max(offset // bs, last + 1), (offset + length - 1) // bs + 1):
                batch.append(index)
                last = index
                if len(batch) == self.batch_blocks:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def _parent_block(self, index: int, length: int) -> tuple[bytes | None, bytes | None]:
        """The parent's blob id and page table id at block `index`, if it holds
        a block of `length` bytes there."""
        p = self.parent
        if p is None or index >= p.block_count or p.block_length(index) != length:
            return None, None
        return p.blob_id(index), p.page_table_id(index)

    def _read(self, indices: list[int]) -> _Batch:
        """Start reading, hashing and encoding ahead a batch of blocks in the
        thread pool."""
        bs = self.settings.block_size
        size = self.volume.size
        self._bases.read_ahead(indices[-1] + 1)
        blocks, digests = [], []
        for index in indices:
            buf = self._free.pop() if self._free else aligned_buffer(bs)
            offset = index * bs
            length = min(bs, size - offset)
            parent_id, parent_table = self._parent_block(index, length)
            same = parent_id if parent_table is not None else None
            base = None
            if parent_id is not None and parent_table is not None:
                base = self._bases.base(parent_id, parent_table)
            digest = self._cpu.submit(
                self._digest, buf, offset, length, same, base, self._encode_ahead
            )
            blocks.append(_Block(index, buf, length, base))
            digests.append(digest)
        return _Batch(blocks, digests, min(size, (indices[-1] + 1) * bs))

    def _digest(
        self,
        buf: mmap.mmap,
        offset: int,
        length: int,
        parent_id: bytes | None,
        base: Base | None,
        encode_whole: bool,
    ) -> _Digest:
        """Read a block and hash it; unless it is `parent_id`, its page table too,
        and encode it ahead: as a delta on `base` if that pays, else whole if
        `encode_whole`. A block of zeros is a hole: it is known by its id, which
        costs less than comparing it with zeros."""
        if self.volume.read(buf, offset, length) != length:
            raise VolumeIOError(f"{self.volume.path} shrank while backup {self.backup_id} ran")
        codec = self.settings.codec
        view = memoryview(buf)[:length]
        blob_id = codec.blob_id(view)
        if blob_id == parent_id:
            return _Digest(blob_id)
        if blob_id == self._zero_ids.get(length):
            return _Digest(None)
        table = self._hasher.table_of(self._pages_of(buf, length))
        digest = _Digest(blob_id, table, codec.blob_id(table), codec.encode(table))
        pages = None if base is None else delta_pages(table, base.table)
        if pages is not None:
            digest.encoded, digest.is_delta = encode_delta_blob(codec, view, pages), True
        elif encode_whole:
            digest.encoded = codec.encode(view)
        return digest

    def _pages_of(self, buf: mmap.mmap, length: int) -> list[memoryview]:
        """The pages of a block read into `buf`: a whole buffer is cut once."""
        if length != len(buf):
            return page_views(memoryview(buf)[:length])
        pages = self._pages.get(id(buf))
        if pages is None:
            pages = self._pages[id(buf)] = page_views(memoryview(buf))
        return pages

    def _classify(self, batch: _Batch) -> _Batch:
        """Name each block; reference in one `reuse` the blobs already stored and
        the delta chains the changed blocks rest on, but for those the parent's
        window referenced already (`DeltaBases.held`); keep the encodings the
        workers made ahead for the new blobs (each stored once), and encode
        the others. A reference the backup turns out not to need is dropped at
        its end (`index.keep_references`).

        A block the workers encoded as a delta is not looked up, nor its page
        table: if stored already, the delta is a few KiB stored twice (the index
        keeps the first copy), while asking cost the bench incremental's caller
        thread ~40 ms of its ~0.75 s (docs/performance.md)."""
        s = self.settings
        blocks = batch.blocks
        self._bases.forget_before(blocks[0].index)
        held = self._bases.held
        digests = [digest.result() for digest in batch.digests]
        batch.digests = []  # until it is appended, a batch holds only what packs need
        asked: list[bytes] = []
        for block, digest in zip(blocks, digests, strict=True):
            if digest.blob_id is None:
                continue
            if digest.table_id is None:  # the parent's block: its table too
                digest.table_id = self._parent_block(block.index, block.length)[1]
            ids: list[bytes | None] = [digest.blob_id, digest.table_id]
            if digest.is_delta and block.base is not None:
                ids = list(block.base.chain)  # a delta and its table are not looked up
            asked.extend(b for b in ids if b and b not in self._packs.pending and not held(b))
        stored = s.index.reuse(s.container, self.backup_id, list(dict.fromkeys(asked)))
        new = 0
        for block, digest in zip(blocks, digests, strict=True):
            blob_id = block.blob_id = digest.blob_id
            if blob_id is None:
                continue
            self._data_blocks += 1
            table_id = self._keep_table(batch, digest, stored)
            self.entries.set(block.index, entry_of(blob_id, table_id))
            if blob_id in stored or blob_id in self._packs.pending or held(blob_id):
                continue
            self._packs.pending.add(blob_id)
            self._new_blobs += 1
            new += 1
            block.encoded = self._encoding(block, digest, stored)
        self._encode_ahead = 2 * new >= len(blocks)
        for block in blocks:
            if block.buf is not None and not _needs_buffer(block):
                self._free.append(block.buf)
                block.buf = None
        return batch

    def _keep_table(self, batch: _Batch, digest: _Digest, stored: set[bytes]) -> bytes | None:
        """The page table id for a block's manifest entry; a new table is queued
        for the batch's table pack."""
        table_id = digest.table_id
        if table_id is None or table_id in stored or table_id in self._packs.pending:
            return table_id
        if self._bases.held(table_id):
            return table_id
        if digest.table is None or digest.table_encoded is None:
            return None  # the parent's table is gone: none for this block
        self._packs.pending.add(table_id)
        batch.tables.append((table_id, len(digest.table), digest.table_encoded))
        return table_id

    def _encoding(
        self, block: _Block, digest: _Digest, stored: set[bytes]
    ) -> Future[Encoded] | Encoded:
        """A new block's blob: the delta encoded ahead if its whole chain is
        referenced, else the whole block encoded ahead, else encoded now."""
        base, held = block.base, self._bases.held
        if digest.is_delta and base is not None and digest.encoded is not None:
            if all(b in stored or held(b) for b in base.chain):
                block.base_id = base.blob_id
                self._delta_blobs += 1
                return digest.encoded
        elif digest.encoded is not None:
            return digest.encoded
        assert block.buf is not None
        return self._cpu.submit(self.settings.codec.encode, memoryview(block.buf)[: block.length])

    def _append(self, batch: _Batch) -> None:
        """Put the new blobs of a batch into packs, in order; free the buffers."""
        for block in batch.blocks:
            encoded = block.encoded
            if encoded is not None and block.blob_id is not None:
                flags, payload = encoded.result() if isinstance(encoded, Future) else encoded
                self._packs.add_block(block.blob_id, flags, payload, block.length, block.base_id)
                del payload
            block.encoded = None
            if block.buf is not None:
                self._free.append(block.buf)
        for table_id, length, (flags, payload) in batch.tables:
            self._packs.add_table(table_id, flags, payload, length)
        batch.tables = []
        self.progress(batch.end, self.volume.size)
