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
not to need are dropped at its end (`index.keep_references`). Called only
from the thread that runs the backup, like the index.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
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
        self._read_to = 0  # parent blocks before this index were read ahead
        self._windows: list[_Window] = []  # read ahead, oldest first

    def held(self, blob_id: bytes) -> bool:
        """Whether the backup references `blob_id` already, through a window
        read ahead: the blob is stored and stays so while the backup runs."""
        return any(blob_id in w.held for w in self._windows)

    def base(self, parent_id: bytes, parent_table_id: bytes) -> Base | None:
        """What a changed block needs to become a delta on the parent's block
        `parent_id`: its chain (short enough to rest on) and page table, if
        read ahead (`read_ahead` past the block first)."""
        chain = next((w.chains[parent_id] for w in self._windows if parent_id in w.chains), None)
        table = next(
            (w.tables[parent_table_id] for w in self._windows if parent_table_id in w.tables),
            None,
        )
        if chain is None or len(chain) > MAX_DEPTH or table is None:
            return None
        return Base(parent_id, chain, table)

    def read_ahead(self, stop: int) -> None:
        """Read ahead the chains and page tables of the parent's blocks before
        block `stop`, a window at a time, and reference what is still stored
        of them (`held`)."""
        parent = self.parent
        if parent is None:
            return
        while self._read_to < min(stop, parent.block_count):
            window = range(self._read_to, min(self._read_to + WINDOW_BLOCKS, parent.block_count))
            self._read_to = window.stop
            ids = sorted({b for i in window if (b := parent.blob_id(i)) is not None})
            tables = sorted({t for i in window if (t := parent.page_table_id(i)) is not None})
            found = self.index.locate(self.container, [*ids, *tables]) if ids else {}
            chains = self.chains(ids, found)
            members = {b for chain in chains.values() for b in chain}
            members.update(t for t in tables if t in found)
            held = self.index.reuse(self.container, self.backup_id, sorted(members))
            self._windows.append(
                _Window(window.stop, chains, self.fetch_tables(tables, found), held)
            )

    def forget_before(self, start: int) -> None:
        """Drop the windows of the parent's blocks before block `start`."""
        self._windows = [w for w in self._windows if w.end > start]

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
