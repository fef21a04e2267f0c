"""The restore pipeline: manifest → ranged pack reads → verified blocks → a sink.

Implements DESIGN.md §4. The manifest is walked in windows of blocks; for
each window the blobs are located in one index call, grouped by pack, and
adjacent blobs are fetched in one ranged `get`. Fetch, decode (which checks
every blob against its id) and the sink's writes run in a thread pool with a
bounded number of ranges in flight, so memory stays bounded whatever the
volume size. The task that reads a window's last range also rebuilds the
window's page deltas from their decoded bases, so no task of the pool waits
for another. The index is only called from the thread that runs the restore.

A restore writes into a volume (`restore_backup`); `verify_backup` runs the
same reads and checks into a sink that discards the blocks.

A restore into a volume writes back behind itself: once every write below a
volume offset is done, the bytes up to it are sent to the disk
(sync_file_range) and, one step later, dropped from the page cache, so a
restore neither fills the page cache nor stalls on it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

from ashbox.errors import CorruptBlob, CorruptData, ObjectNotFound, StoreError, VolumeIOError
from ashbox.repository.blob import BlobCodec
from ashbox.repository.delta import MAX_DEPTH, decode_delta_blob
from ashbox.repository.index import BlobLocation, Index
from ashbox.repository.manifest import Manifest
from ashbox.repository.pack import pack_key
from ashbox.repository.write_behind import WriteBehind
from ashbox.storage.base import Store
from ashbox.volumes.file import open_for_write

log = logging.getLogger(__name__)

MAX_RANGE_SIZE = 4 << 20
MAX_RANGE_GAP = 256 << 10
_WINDOW_BYTES = 16 << 20


class BlockSink(Protocol):
    """Where restored blocks go; called from several threads at once, for
    disjoint ranges."""

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Store `data` at volume offset `offset`."""

    def zero(self, offset: int, length: int) -> None:
        """Make `length` bytes at `offset` read as zeros."""


class DiscardSink:
    """A sink that drops everything: a restore into it only reads and checks."""

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Drop the block."""

    def zero(self, offset: int, length: int) -> None:
        """Drop the hole."""


@dataclass(frozen=True, slots=True)
class ReaderSettings:
    store: Store
    container: str
    index: Index
    codec: BlobCodec
    threads: int


def restore_backup(
    settings: ReaderSettings,
    manifest: Manifest,
    target: Path,
    *,
    new_volume: bool,
    progress: Callable[[int, int], None],
    window_blocks: int | None = None,
) -> None:
    """Write the backup in `manifest` to the start of `target`, which must hold
    at least its volume size. Holes, and pages of zeros, are skipped on a
    `new_volume` (a fresh sparse file); holes are zeroed otherwise; bytes past
    the backup's end are untouched.
    CorruptData names the backup, block offset and pack of any bad blob."""
    total = manifest.volume_size
    with open_for_write(target) as volume:
        if volume.size < total:
            raise VolumeIOError(
                f"{target} holds {volume.size} bytes, fewer than the {total} bytes of "
                f"backup {manifest.backup_id}"
            )
        # A new volume reads as zeros: its holes, and the zero pages of its
        # blocks, are left unwritten.
        sink = _VolumeSink(volume.write_sparse if new_volume else volume.write, volume.zero)
        with WriteBehind(volume.fd) as behind:
            read_backup(
                settings,
                manifest,
                sink,
                zero_holes=not new_volume,
                progress=progress,
                window_blocks=window_blocks,
                settled=behind.settled,
            )
        volume.flush()
    log.info("backup restored backup_id=%s target=%s size=%d", manifest.backup_id, target, total)


def verify_backup(
    settings: ReaderSettings,
    manifest: Manifest,
    *,
    progress: Callable[[int, int], None],
    window_blocks: int | None = None,
) -> None:
    """Read and check every blob the backup in `manifest` needs, writing nothing.
    CorruptData names the backup, block offset and pack of the first bad blob."""
    read_backup(
        settings,
        manifest,
        DiscardSink(),
        zero_holes=False,
        progress=progress,
        window_blocks=window_blocks,
    )
    log.info("backup verified backup_id=%s size=%d", manifest.backup_id, manifest.volume_size)


def read_backup(
    settings: ReaderSettings,
    manifest: Manifest,
    sink: BlockSink,
    *,
    zero_holes: bool,
    progress: Callable[[int, int], None],
    window_blocks: int | None = None,
    settled: Callable[[int], None] | None = None,
) -> None:
    """Restore the backup in `manifest` into `sink`: every block verified, holes
    passed to `sink.zero` when `zero_holes`. `settled(end)` is called, in
    increasing order, once every write to the sink below `end` has returned."""
    window = window_blocks or max(1, _WINDOW_BYTES // manifest.block_size)
    total = manifest.volume_size
    limit = 2 * settings.threads  # tasks queued or running at once
    with ThreadPoolExecutor(settings.threads, thread_name_prefix="ashbox-restore") as pool:
        restore = _Restore(settings, manifest, sink)
        in_flight: set[Future[int]] = set()
        windows: deque[tuple[int, list[Future[int]]]] = deque()  # (end offset, its tasks)
        done = 0

        def submit(task: Callable[[], int]) -> Future[int]:
            nonlocal in_flight, done
            while len(in_flight) >= limit:
                finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                done += sum(f.result() for f in finished)
                progress(done, total)
            future = pool.submit(task)
            in_flight.add(future)
            windows[-1][1].append(future)
            return future

        def settle() -> None:
            while windows and all(f.done() for f in windows[0][1]):
                end = windows.popleft()[0]
                if settled is not None:
                    settled(end)

        try:
            for start in range(0, manifest.block_count, window):
                blocks = range(start, min(start + window, manifest.block_count))
                windows.append((min(blocks.stop * manifest.block_size, total), []))
                done += restore.holes(blocks, zero=zero_holes)
                plan = restore.plan(blocks)
                for one in plan.ranges:
                    submit(partial(restore.fetch, one, plan))
                settle()
            for future in in_flight:
                done += future.result()
            in_flight = set()
            settle()
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise
    progress(total, total)


@dataclass(frozen=True, slots=True)
class _VolumeSink:
    """A volume as a sink."""

    write_at: Callable[[bytes | bytearray | memoryview, int], None]
    zero_at: Callable[[int, int], None]

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        self.write_at(data, offset)

    def zero(self, offset: int, length: int) -> None:
        self.zero_at(offset, length)


@dataclass(slots=True)
class _Range:
    """One ranged read of a pack and the blobs it holds."""

    pack_id: str
    start: int
    end: int
    blobs: list[BlobLocation] = field(default_factory=list)


@dataclass(slots=True)
class _Plan:
    """What a window of blocks needs: the ranges to read, the blocks each
    blob fills, the delta blobs to rebuild from their bases after the reads,
    and (filled by the reads) the decoded blobs those rebuilds use."""

    ranges: list[_Range]
    users: dict[bytes, list[int]]
    first_user: dict[bytes, int]
    found: dict[bytes, BlobLocation]
    deltas: dict[bytes, list[int]]
    keep: set[bytes]
    decoded: dict[bytes, bytes | bytearray] = field(default_factory=dict)
    unread: int = 0  # ranges not read yet
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read_one(self) -> bool:
        """Count a range read; whether it was the window's last."""
        with self.lock:
            self.unread -= 1
            return self.unread == 0


@dataclass(slots=True)
class _Restore:
    settings: ReaderSettings
    manifest: Manifest
    sink: BlockSink

    def holes(self, blocks: range, *, zero: bool) -> int:
        """Zero (if asked) the holes among `blocks`, merged into runs; their bytes."""
        m = self.manifest
        total = 0
        run_start: int | None = None
        for index in [*blocks, None]:
            is_hole = index is not None and m.blob_id(index) is None
            if is_hole and run_start is None:
                run_start = index
            elif not is_hole and run_start is not None:
                end = blocks.stop if index is None else index
                offset = run_start * m.block_size
                length = min(end * m.block_size, m.volume_size) - offset
                if zero:
                    self.sink.zero(offset, length)
                total += length
                run_start = None
        return total

    def plan(self, blocks: range) -> _Plan:
        """Locate every blob `blocks` need, delta bases included, and group them
        into ranged reads, adjacent blobs merged."""
        m = self.manifest
        s = self.settings
        users: dict[bytes, list[int]] = {}
        for index in blocks:
            blob_id = m.blob_id(index)
            if blob_id is not None:
                users.setdefault(blob_id, []).append(index)
        found = s.index.locate(s.container, list(users)) if users else {}
        first_user = {blob_id: indices[0] for blob_id, indices in users.items()}
        todo = list(users)
        keep: set[bytes] = set()
        for depth in range(MAX_DEPTH + 2):
            bases: list[bytes] = []
            for blob_id in todo:
                location = found.get(blob_id)
                if location is None:
                    offset = first_user[blob_id] * m.block_size
                    raise CorruptData(
                        f"Backup {m.backup_id}: the block at offset {offset} needs blob "
                        f"{blob_id.hex()}, which the repository index does not hold."
                    )
                if location.base_id is not None:
                    if depth > MAX_DEPTH:
                        raise CorruptData(
                            f"Backup {m.backup_id}: the block at offset "
                            f"{first_user[blob_id] * m.block_size} has a delta chain deeper "
                            f"than {MAX_DEPTH} in pack {location.pack_id}."
                        )
                    keep.add(blob_id)
                    keep.add(location.base_id)
                    first_user.setdefault(location.base_id, first_user[blob_id])
                    if location.base_id not in found:
                        bases.append(location.base_id)
            if not bases:
                break
            found.update(s.index.locate(s.container, bases))
            todo = bases
        deltas = {b: users[b] for b in users if found[b].base_id is not None}
        by_pack: dict[str, list[BlobLocation]] = {}
        for blob_id in first_user:
            location = found[blob_id]
            by_pack.setdefault(location.pack_id, []).append(location)
        ranges: list[_Range] = []
        for pack_id, locations in by_pack.items():
            locations.sort(key=lambda loc: loc.offset)
            current: _Range | None = None
            for loc in locations:
                end = loc.offset + loc.length
                if (
                    current is None
                    or loc.offset > current.end + MAX_RANGE_GAP
                    or end - current.start > MAX_RANGE_SIZE
                ):
                    if current is not None:
                        ranges.append(current)
                    current = _Range(pack_id, loc.offset, end)
                current.end = max(current.end, end)
                current.blobs.append(loc)
            if current is not None:
                ranges.append(current)
        return _Plan(ranges, users, first_user, found, deltas, keep, unread=len(ranges))

    def fetch(self, one: _Range, plan: _Plan) -> int:
        """Read one range; verify and write its whole blobs, keep those the
        window's deltas need; the last range of the window read also rebuilds
        the window's deltas. The bytes written."""
        m = self.manifest
        s = self.settings
        key = pack_key(s.container, one.pack_id)
        try:
            data = s.store.get(key, one.start, one.end - one.start)
        except ObjectNotFound as e:
            raise CorruptData(
                f"Backup {m.backup_id}: pack {one.pack_id} holding the block at offset "
                f"{self._offset(plan, one.blobs[0].blob_id)} is missing from the store."
            ) from e
        except StoreError as e:  # the bytes were not seen: not corrupt, unreadable
            raise StoreError(
                f"Backup {m.backup_id}: could not read {key} (the pack holding the block at "
                f"offset {self._offset(plan, one.blobs[0].blob_id)}): {e.message}"
            ) from e
        view = memoryview(data)
        written = 0
        for loc in one.blobs:
            payload = view[loc.offset - one.start : loc.offset - one.start + loc.length]
            if loc.base_id is not None:
                plan.decoded[loc.blob_id] = bytes(payload)
                continue
            # A block that is only a base is checked by the blocks rebuilt on it.
            verify = loc.blob_id in plan.users
            try:
                if len(payload) != loc.length:
                    raise CorruptBlob(f"Blob {loc.blob_id.hex()} is cut short by the pack's end.")
                raw = s.codec.decode(loc.blob_id, payload, loc.flags, loc.raw_length, verify=verify)
            except CorruptBlob as e:
                raise CorruptData(
                    f"Backup {m.backup_id}: the block at offset {self._offset(plan, loc.blob_id)} "
                    f"in pack {one.pack_id} is corrupt: {e.message}"
                ) from e
            if loc.blob_id in plan.keep:
                plan.decoded[loc.blob_id] = raw
            written += self._write(raw, plan.users.get(loc.blob_id, []), one.pack_id)
        if plan.read_one():  # the window's bases are all decoded: no task waits for them
            written += self.rebuild(plan)
        return written

    def rebuild(self, plan: _Plan) -> int:
        """Apply each delta of the window (and those under it) to its base;
        verify and write the blocks; the bytes written."""
        written = 0
        for blob_id, indices in plan.deltas.items():
            raw = self._rebuilt(blob_id, plan)
            written += self._write(raw, indices, plan.found[blob_id].pack_id)
        return written

    def _rebuilt(self, blob_id: bytes, plan: _Plan) -> bytes | bytearray:
        loc = plan.found[blob_id]
        if loc.base_id is None:
            return plan.decoded[blob_id]
        base = self._rebuilt(loc.base_id, plan)
        codec = self.settings.codec
        try:
            return decode_delta_blob(
                codec, blob_id, plan.decoded[blob_id], loc.flags, loc.raw_length, base
            )
        except CorruptBlob as e:
            m = self.manifest
            if codec.blob_id(base) != loc.base_id:  # the base is to blame
                base_loc = plan.found[loc.base_id]
                raise CorruptData(
                    f"Backup {m.backup_id}: the block at offset {self._offset(plan, blob_id)} "
                    f"rests on blob {loc.base_id.hex()} in pack {base_loc.pack_id}, which is "
                    "corrupt: it does not match its id."
                ) from e
            raise CorruptData(
                f"Backup {m.backup_id}: the block at offset {self._offset(plan, blob_id)} in "
                f"pack {loc.pack_id} is corrupt: {e.message}"
            ) from e

    def _write(self, raw: bytes | bytearray, indices: list[int], pack_id: str) -> int:
        m = self.manifest
        written = 0
        for index in indices:
            if len(raw) != m.block_length(index):
                raise CorruptData(
                    f"Backup {m.backup_id}: the block at offset {index * m.block_size} in "
                    f"pack {pack_id} has {len(raw)} bytes, not {m.block_length(index)}."
                )
            self.sink.write(index * m.block_size, raw)
            written += len(raw)
        return written

    def _offset(self, plan: _Plan, blob_id: bytes) -> int:
        return plan.first_user.get(blob_id, 0) * self.manifest.block_size
