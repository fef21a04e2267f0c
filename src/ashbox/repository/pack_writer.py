"""A backup's packs: filled with blobs, sealed, uploaded, committed to the index.

The backup pipeline (writer.py) hands over blobs in volume order; they fill
two packs at a time, one of block blobs and one of page tables, which go to
packs of their own so the next backup reads them in a few ranged gets. A
full pack is sealed (its id is the hash of its bytes), recorded as pending
(`index.begin_pack`), uploaded in the upload pool, and committed
(`index.commit_pack`) once its upload is done: docs/format.md, "Write order".

At most `max_uploads` sealed packs upload beside the two being filled, and
block packs are filled in reused page-aligned buffers, so the store can
write them with O_DIRECT. The index is only called from the thread that
runs the backup.
"""

from __future__ import annotations

import logging
import mmap
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ashbox import faults
from ashbox.repository.blob import BlobCodec
from ashbox.repository.index import Index
from ashbox.repository.pack import PackBuilder, SealedPack, begin_upload, pack_key
from ashbox.storage.base import Store
from ashbox.volumes.file import aligned_buffer, close_later

log = logging.getLogger(__name__)

_UPLOAD_BYTES = 16 << 20  # of sealed packs in flight, beside the ones being filled
# Page tables (2 KiB per 1 MiB block) fill a buffer that grows: capped, so that
# a volume with much data does not hold them all.
_TABLE_PACK_BYTES = 2 << 20


@dataclass(slots=True)
class _Filling:
    """The pack being filled with one kind of blob, and when it is full."""

    builder: PackBuilder
    limit: int  # bytes of a sealed pack
    aligned: bool  # filled in a reused page-aligned buffer


@dataclass(slots=True)
class _Upload:
    sealed: SealedPack
    done: Future[None]


class PackWriter:
    """Packs out of a backup's blobs. `pending` holds the ids of the blobs the
    backup stores that no committed pack holds yet: the writer adds an id when
    it decides to store the blob, and a commit removes it."""

    def __init__(
        self,
        *,
        store: Store,
        container: str,
        index: Index,
        codec: BlobCodec,
        pack_size: int,
        upload_threads: int,
        backup_id: str,
    ) -> None:
        self.store = store
        self.container = container
        self.index = index
        self.codec = codec
        self.pack_size = pack_size
        self.backup_id = backup_id
        self.max_uploads = max(1, min(upload_threads, _UPLOAD_BYTES // pack_size))
        self.pending: set[bytes] = set()
        self.stored_bytes = 0
        self.packs = 0
        self._buffers: list[mmap.mmap] = []  # free, of pack_size bytes
        self._uploads: deque[_Upload] = deque()
        self._io = ThreadPoolExecutor(upload_threads, thread_name_prefix="ashbox-upload")
        self._blocks = self._filling(pack_size, aligned=True)
        self._tables = self._filling(min(pack_size, _TABLE_PACK_BYTES), aligned=False)

    def add_block(
        self,
        blob_id: bytes,
        flags: int,
        payload: bytes | memoryview,
        raw_length: int,
        base_id: bytes | None,
    ) -> None:
        """Add a block's blob (a delta names its `base_id`)."""
        self._add(self._blocks, blob_id, flags, payload, raw_length, base_id)

    def add_table(
        self, table_id: bytes, flags: int, payload: bytes | memoryview, length: int
    ) -> None:
        """Add a page table's blob."""
        self._add(self._tables, table_id, flags, payload, length, None)

    def commit_finished(self) -> None:
        """Commit the packs whose uploads are done, in order."""
        while self._uploads and self._uploads[0].done.done():
            self._commit(self._uploads.popleft())

    def finish(self) -> None:
        """Seal the packs being filled, and commit every pack once uploaded."""
        for filling in (self._blocks, self._tables):
            if len(filling.builder):
                self._upload(filling.builder.seal())
        while self._uploads:
            self._commit(self._uploads.popleft())

    def shutdown(self) -> None:
        """Drop queued uploads; running ones finish, their packs stay pending
        (for `Repository.discard_incomplete`). The free buffers are unmapped."""
        self._io.shutdown(wait=True, cancel_futures=True)
        close_later(self._buffers)
        self._buffers = []

    def _filling(self, limit: int, *, aligned: bool) -> _Filling:
        return _Filling(self._builder(aligned), limit, aligned)

    def _builder(self, aligned: bool) -> PackBuilder:
        if not aligned:
            return PackBuilder(self.codec.cipher)
        buffer = (
            self._buffers.pop() if self._buffers else aligned_buffer(self.pack_size, populate=True)
        )
        return PackBuilder(self.codec.cipher, buffer=buffer)

    def _add(
        self,
        filling: _Filling,
        blob_id: bytes,
        flags: int,
        payload: bytes | memoryview,
        raw_length: int,
        base_id: bytes | None,
    ) -> None:
        """Add a blob to the pack being filled, sealing it first if the blob
        would take it past its limit."""
        if len(filling.builder) and filling.builder.size + len(payload) > filling.limit:
            self._upload(filling.builder.seal())
            filling.builder = self._builder(filling.aligned)
        filling.builder.add(blob_id, flags, payload, raw_length, base_id=base_id)

    def _upload(self, sealed: SealedPack) -> None:
        while len(self._uploads) >= self.max_uploads:
            self._commit(self._uploads.popleft())
        begun = begin_upload(self.index, self.container, sealed, self.backup_id, self.codec)
        if begun is not sealed and isinstance(sealed.data.obj, mmap.mmap):
            self._buffers.append(sealed.data.obj)  # copied into the salted pack
        sealed = begun
        key = pack_key(self.container, sealed.pack_id)
        self._uploads.append(_Upload(sealed, self._io.submit(self.store.put, key, sealed.data)))

    def _commit(self, upload: _Upload) -> None:
        upload.done.result()
        sealed = upload.sealed
        entries = [e.location(sealed.pack_id) for e in sealed.entries]
        self.index.commit_pack(
            self.container, sealed.pack_id, len(sealed.data), entries, self.backup_id
        )
        faults.point("create.pack_committed")
        self.pending.difference_update(e.blob_id for e in sealed.entries)
        self.stored_bytes += len(sealed.data)
        buffer = sealed.data.obj
        if isinstance(buffer, mmap.mmap):
            self._buffers.append(buffer)
        self.packs += 1
        log.debug(
            "pack committed backup_id=%s pack_id=%s blobs=%d size=%d",
            self.backup_id,
            sealed.pack_id,
            len(entries),
            len(sealed.data),
        )
