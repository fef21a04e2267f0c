"""The backup pipeline: volume → blocks → blobs → packs → manifest.

Implements DESIGN.md §4 and the write order of docs/format.md, "Write order".
Stages, overlapped on bounded batches of blocks:

    read (caller thread, reused buffers) → hash (thread pool)
    → `index.reuse` (caller thread) → compress new blobs (thread pool)
    → append to the pack (caller thread) → upload (upload pool)
    → `index.commit_pack` (caller thread) → ... → manifest put

At most three batches of blocks and `upload_threads + 1` packs are in memory
at once, whatever the volume size. The index is only called from the thread
that runs the backup.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ashbox.errors import InvalidVolume
from ashbox.repository.blob import BlobCodec
from ashbox.repository.crypto import seal_manifest
from ashbox.repository.index import Index
from ashbox.repository.manifest import (
    ENTRY_BLOB,
    ENTRY_SIZE,
    Manifest,
    block_count_for,
    manifest_key,
)
from ashbox.repository.pack import PackBuilder, SealedPack, pack_key
from ashbox.storage.base import Store
from ashbox.volumes.file import VolumeReader, open_for_read

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
) -> BackupStats:
    """Back `source` up as `backup_id`; the manifest is put only after every pack
    it needs is committed. An exception (also from `progress`) propagates and
    may leave pending packs, which `Repository.discard_incomplete` removes."""
    with open_for_read(source) as volume:
        run = _Run(settings, backup_id, volume, progress)
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
            entries=bytes(run.entries),
            metadata=dict(metadata),
        )
    encoded = manifest.encode()
    if settings.codec.cipher is not None:
        encoded = seal_manifest(encoded, backup_id, settings.codec.cipher)
    settings.store.put(manifest_key(settings.container, backup_id), encoded)
    stats = run.stats()
    progress(volume.size, volume.size)
    log.info(
        "backup written backup_id=%s size=%d stored=%d new=%d reused=%d holes=%d packs=%d",
        backup_id,
        stats.volume_size,
        stats.stored_bytes,
        stats.new_blobs,
        stats.reused_blobs,
        stats.hole_blocks,
        stats.packs,
    )
    return stats


@dataclass(slots=True)
class _Block:
    index: int
    buf: bytearray
    length: int
    digest: Future[bytes | None]
    blob_id: bytes | None = None
    encoded: Future[tuple[int, bytes | memoryview]] | None = None


@dataclass(slots=True)
class _Batch:
    blocks: list[_Block]
    end: int  # volume offset where the batch's last block ends


@dataclass(slots=True)
class _Upload:
    sealed: SealedPack
    done: Future[None]


@dataclass(slots=True)
class _Run:
    settings: WriterSettings
    backup_id: str
    volume: VolumeReader
    progress: Callable[[int, int], None]
    entries: bytearray = field(init=False)
    _cpu: ThreadPoolExecutor = field(init=False)
    _io: ThreadPoolExecutor = field(init=False)
    _free: list[bytearray] = field(init=False)
    _zeros: bytes = field(init=False)
    _pending_ids: set[bytes] = field(default_factory=set)
    _pack: PackBuilder = field(init=False)
    _uploads: deque[_Upload] = field(default_factory=deque)
    _data_blocks: int = 0
    _new_blobs: int = 0
    _stored_bytes: int = 0
    _packs: int = 0

    def __post_init__(self) -> None:
        s = self.settings
        self.entries = bytearray(block_count_for(self.volume.size, s.block_size) * ENTRY_SIZE)
        self._zeros = bytes(s.block_size)
        self._free = []
        self._pack = PackBuilder(s.codec.cipher)
        self._cpu = ThreadPoolExecutor(s.threads, thread_name_prefix="ashbox-backup")
        self._io = ThreadPoolExecutor(s.upload_threads, thread_name_prefix="ashbox-upload")

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
            self._commit_finished()
        while hashed:
            encoding.append(self._classify(hashed.popleft()))
        while encoding:
            self._append(encoding.popleft())
        if len(self._pack):
            self._upload(self._pack.seal())
        while self._uploads:
            self._commit(self._uploads.popleft())

    def shutdown(self) -> None:
        """Stop the pools: queued work is dropped, running uploads finish (their
        packs stay pending for discard_incomplete)."""
        self._cpu.shutdown(wait=True, cancel_futures=True)
        self._io.shutdown(wait=True, cancel_futures=True)

    def stats(self) -> BackupStats:
        count = len(self.entries) // ENTRY_SIZE
        return BackupStats(
            volume_size=self.volume.size,
            stored_bytes=self._stored_bytes,
            new_blobs=self._new_blobs,
            reused_blobs=self._data_blocks - self._new_blobs,
            hole_blocks=count - self._data_blocks,
            packs=self._packs,
        )

    def _batches(self) -> Iterator[list[int]]:
        """Indices of the blocks that may hold data, in order, in batches."""
        bs = self.settings.block_size
        batch: list[int] = []
        last = -1
        for offset, length in self.volume.data_extents():
            for index in range(max(offset // bs, last + 1), (offset + length - 1) // bs + 1):
                batch.append(index)
                last = index
                if len(batch) == self.batch_blocks:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def _read(self, indices: list[int]) -> _Batch:
        bs = self.settings.block_size
        size = self.volume.size
        blocks = []
        for index in indices:
            buf = self._free.pop() if self._free else bytearray(bs)
            offset = index * bs
            length = min(bs, size - offset)
            got = self.volume.readinto(memoryview(buf)[:length], offset)
            if got != length:
                raise InvalidVolume(f"{self.volume.path} shrank while backup {self.backup_id} ran")
            digest = self._cpu.submit(_digest, self.settings.codec, buf, length, self._zeros)
            blocks.append(_Block(index, buf, length, digest))
        return _Batch(blocks, min(size, (indices[-1] + 1) * bs))

    def _classify(self, batch: _Batch) -> _Batch:
        """Name each block; reference the blobs already stored; start compressing
        the others (each new blob once)."""
        asked: list[bytes] = []
        for block in batch.blocks:
            block.blob_id = block.digest.result()
            if block.blob_id is not None and block.blob_id not in self._pending_ids:
                asked.append(block.blob_id)
        s = self.settings
        stored = s.index.reuse(s.container, self.backup_id, list(dict.fromkeys(asked)))
        for block in batch.blocks:
            blob_id = block.blob_id
            if blob_id is None:
                continue
            self._data_blocks += 1
            start = block.index * ENTRY_SIZE
            self.entries[start] = ENTRY_BLOB
            self.entries[start + 1 : start + ENTRY_SIZE] = blob_id
            if blob_id in stored or blob_id in self._pending_ids:
                continue
            self._pending_ids.add(blob_id)
            self._new_blobs += 1
            view = memoryview(block.buf)[: block.length]
            block.encoded = self._cpu.submit(s.codec.encode, view)
        return batch

    def _append(self, batch: _Batch) -> None:
        """Put the new blobs of a batch into packs, in order; free the buffers."""
        s = self.settings
        for block in batch.blocks:
            if block.encoded is not None and block.blob_id is not None:
                flags, payload = block.encoded.result()
                if len(self._pack) and self._pack.size + len(payload) > s.pack_size:
                    self._upload(self._pack.seal())
                    self._pack = PackBuilder(s.codec.cipher)
                self._pack.add(block.blob_id, flags, payload, block.length)
                del payload
            block.encoded = None
            self._free.append(block.buf)
        self.progress(batch.end, self.volume.size)

    def _upload(self, sealed: SealedPack) -> None:
        s = self.settings
        while len(self._uploads) >= s.upload_threads:
            self._commit(self._uploads.popleft())
        s.index.begin_pack(s.container, sealed.pack_id, self.backup_id)
        key = pack_key(s.container, sealed.pack_id)
        done = self._io.submit(s.store.put, key, memoryview(sealed.data))
        self._uploads.append(_Upload(sealed, done))

    def _commit_finished(self) -> None:
        while self._uploads and self._uploads[0].done.done():
            self._commit(self._uploads.popleft())

    def _commit(self, upload: _Upload) -> None:
        upload.done.result()
        s = self.settings
        sealed = upload.sealed
        entries = [e.location(sealed.pack_id) for e in sealed.entries]
        s.index.commit_pack(s.container, sealed.pack_id, len(sealed.data), entries, self.backup_id)
        self._pending_ids.difference_update(e.blob_id for e in sealed.entries)
        self._stored_bytes += len(sealed.data)
        self._packs += 1
        log.debug(
            "pack committed backup_id=%s pack_id=%s blobs=%d size=%d",
            self.backup_id,
            sealed.pack_id,
            len(entries),
            len(sealed.data),
        )


def _digest(codec: BlobCodec, buf: bytearray, length: int, zeros: bytes) -> bytes | None:
    """The blob id of a block, or None if it is all zeros (a hole)."""
    if length == len(buf):
        if buf == zeros:
            return None
        return codec.blob_id(buf)
    view = memoryview(buf)[:length]
    if view.tobytes() == zeros[:length]:
        return None
    return codec.blob_id(view)
