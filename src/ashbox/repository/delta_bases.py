"""Which new blocks of a backup become page deltas, and the delta chains it relies on.

docs/format.md §4.1. For each block whose offset holds a block of the same
length in the parent backup, the writer (writer.py) asks for that block as a
`Base`: its chain, short enough to rest on, and its page table. The writer's
workers then pick the pages to store (`delta_pages`), and the writer keeps
the delta only if the backup references the whole chain (`index.reuse`), so
a base lives as long as a backup that needs it.

The parent's chains and page tables are read ahead from its manifest, a
window of WINDOW_BLOCKS blocks at a time: one `locate`, a few ranged gets and
one `reuse` per window rather than per batch. That `reuse` references for the
backup every blob of the window's chains and page tables that is still
stored (`held`): the blocks that did not change and the bases of those that
did need no index call of their own, and the references a backup turns out
not to need are dropped at its end (`index.keep_references`, after `close`).

A thread of its own reads each window while the backup works on the one
before: read by the thread that runs the backup, a window's index calls and
gets held up its batches (~15 ms a window, 93 ms of the bench incremental's
caller thread). The other methods are called from the thread that runs the
backup only.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ashbox.errors import CorruptData, ObjectNotFound
from ashbox.repository.blob import BlobCodec
from ashbox.repository.delta import FINGERPRINT_SIZE, MAX_DEPTH, changed_pages
from ashbox.repository.index import BlobLocation, Index
from ashbox.repository.manifest import Manifest
from ashbox.repository.pack import pack_key
from ashbox.storage.base import Store

log = logging.getLogger(__name__)

WINDOW_BLOCKS = 256


@dataclass(frozen=True, slots=True)
class _Window:
    """The parent's chains and page tables for its blocks before `end`, and
    which of their blobs the backup references already."""

    end: int
    chains: dict[bytes, list[bytes]]
    tables: dict[bytes, bytes]
    held: set[bytes]


@dataclass(frozen=True, slots=True)
class Base:
    """A parent block a changed block may be stored as a delta against: its
    blob id, its chain (itself, then its bases) and its page table."""

    blob_id: bytes
    chain: list[bytes]
    table: bytes


def delta_pages(table: bytes, base_table: bytes) -> list[int] | None:
    """The pages to store if a block with page table `table` pays as a delta on
    a base with `base_table`: at most half of its pages changed. Thread-safe."""
    if len(table) != len(base_table):
        return None
    pages = changed_pages(table, base_table)
    return pages if 2 * len(pages) <= len(table) // FINGERPRINT_SIZE else None


class DeltaBases:
    def __init__(
        self,
        *,
        store: Store,
        container: str,
        index: Index,
        codec: BlobCodec,
        backup_id: str,
        parent: Manifest | None,
    ) -> None:
        self.store = store
        self.container = container
        self.index = index
        self.codec = codec
        self.backup_id = backup_id
        self.parent = parent
        self._asked_to = 0  # parent blocks before this index are read or being read
        self._read_to = 0  # parent blocks before this index were read ahead
        self._windows: list[_Window] = []  # read ahead, oldest first
        # The live windows' sets and maps merged, as the backup asks them for
        # every block (several times), the GIL held.
        self._held: set[bytes] = set()
        self._chains: dict[bytes, list[bytes]] = {}
        self._tables: dict[bytes, bytes] = {}
        self._reading: deque[Future[_Window]] = deque()  # in order
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="ashbox-bases")

    def held(self, blob_id: bytes) -> bool:
        """Whether the backup references `blob_id` already, through a window
        read ahead: the blob is stored and stays so while the backup runs."""
        return blob_id in self._held

    def base(self, parent_id: bytes, parent_table_id: bytes) -> Base | None:
        """What a changed block needs to become a delta on the parent's block
        `parent_id`: its chain (short enough to rest on) and page table, if
        read ahead (`read_ahead` past the block first)."""
        chain = self._chains.get(parent_id)
        table = self._tables.get(parent_table_id)
        if chain is None or len(chain) > MAX_DEPTH or table is None:
            return None
        return Base(parent_id, chain, table)

    def read_ahead(self, stop: int) -> None:
        """Have the chains and page tables of the parent's blocks before block
        `stop` read ahead, and what is still stored of them referenced
        (`held`), waiting for it if need be; start reading the next window."""
        parent = self.parent
        if parent is None:
            return
        end = parent.block_count
        while self._asked_to < min(stop + WINDOW_BLOCKS, end):
            window = range(self._asked_to, min(self._asked_to + WINDOW_BLOCKS, end))
            self._asked_to = window.stop
            self._reading.append(self._reader.submit(self._read_window, parent, window))
        while self._read_to < min(stop, end):
            window_read = self._reading.popleft().result()
            self._windows.append(window_read)
            self._read_to = window_read.end
            self._merge()

    def close(self) -> None:
        """Wait for the window being read, drop those not begun: every reference
        is made before the backup's end drops those it did not need."""
        self._reader.shutdown(wait=True, cancel_futures=True)

    def _read_window(self, parent: Manifest, window: range) -> _Window:
        ids = sorted({b for i in window if (b := parent.blob_id(i)) is not None})
        tables = sorted({t for i in window if (t := parent.page_table_id(i)) is not None})
        found = self.index.locate(self.container, [*ids, *tables]) if ids else {}
        chains = self.chains(ids, found)
        members = {b for chain in chains.values() for b in chain}
        members.update(t for t in tables if t in found)
        held = self.index.reuse(self.container, self.backup_id, sorted(members))
        return _Window(window.stop, chains, self.fetch_tables(tables, found), held)

    def forget_before(self, start: int) -> None:
        """Drop the windows of the parent's blocks before block `start`."""
        if self._windows and self._windows[0].end <= start:
            self._windows = [w for w in self._windows if w.end > start]
            self._merge()

    def _merge(self) -> None:
        self._held = set().union(*(w.held for w in self._windows))
        self._chains = {k: v for w in self._windows for k, v in w.chains.items()}
        self._tables = {k: v for w in self._windows for k, v in w.tables.items()}

    def chains(
        self, blob_ids: list[bytes], located: Mapping[bytes, BlobLocation] | None = None
    ) -> dict[bytes, list[bytes]]:
        """For each indexed blob, itself and its bases down to a whole blob (at
        most MAX_DEPTH + 2 long, longer chains are cut there). `located`: blobs
        already located by the caller, not asked again."""
        found: dict[bytes, BlobLocation] = dict(located or {})
        todo = {b for b in blob_ids if b not in found}
        todo |= {
            loc.base_id
            for loc in found.values()
            if loc.base_id is not None and loc.base_id not in found
        }
        for _ in range(MAX_DEPTH + 2):
            if not todo:
                break
            found.update(self.index.locate(self.container, sorted(todo)))
            todo = {
                loc.base_id
                for loc in found.values()
                if loc.base_id is not None and loc.base_id not in found
            }
        chains: dict[bytes, list[bytes]] = {}
        for blob_id in blob_ids:
            chain: list[bytes] = []
            current: bytes | None = blob_id
            while current is not None and current in found and len(chain) <= MAX_DEPTH + 1:
                chain.append(current)
                current = found[current].base_id
            if current is None:
                chains[blob_id] = chain
            elif current not in found and chain:
                chains[blob_id] = [*chain, current]  # a missing base: caught by reuse
        return chains

    def fetch_tables(
        self, table_ids: list[bytes], found: Mapping[bytes, BlobLocation]
    ) -> dict[bytes, bytes]:
        """The parent's page tables that can be read (located in `found`), by id."""
        by_pack: dict[str, list[BlobLocation]] = {}
        for loc in (found[t] for t in set(table_ids) if t in found):
            by_pack.setdefault(loc.pack_id, []).append(loc)
        tables: dict[bytes, bytes] = {}
        for pack_id, locations in by_pack.items():
            start = min(loc.offset for loc in locations)
            end = max(loc.offset + loc.length for loc in locations)
            try:
                data = self.store.get(pack_key(self.container, pack_id), start, end - start)
            except ObjectNotFound:
                continue
            view = memoryview(data)
            for loc in locations:
                payload = view[loc.offset - start : loc.offset - start + loc.length]
                if loc.base_id is None and len(payload) == loc.length:
                    try:
                        tables[loc.blob_id] = self.codec.decode(
                            loc.blob_id, payload, loc.flags, loc.raw_length
                        )
                    except CorruptData:
                        log.warning(
                            "page table unreadable backup_id=%s blob_id=%s pack_id=%s",
                            self.backup_id,
                            loc.blob_id.hex(),
                            pack_id,
                        )
        return tables
