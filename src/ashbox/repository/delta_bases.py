"""Which new blocks of a backup become page deltas, and the delta chains it relies on.

docs/format.md §4.1. The writer (writer.py) hands over, for each new block
whose offset holds a block of the same length in the parent backup, the
parent's blob id, the parent's page table id and the new page table; this
module keeps the deltas whose whole chain the backup could reference
(`index.reuse`), so a base lives as long as a backup that needs it.

The parent's chains and page tables are read ahead from its manifest, a
window of WINDOW_BLOCKS blocks at a time: one `locate` and a few ranged gets
per window rather than per batch. What they say may age (a gc may kill a
base meanwhile): the `reuse` that references a chain is what decides. Called
only from the thread that runs the backup, like the index.
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
    """The parent's chains and page tables for its blocks before `end`."""

    end: int
    chains: dict[bytes, list[bytes]]
    tables: dict[bytes, bytes]


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

    def plan(
        self, candidates: Mapping[int, tuple[bytes, bytes, bytes]]
    ) -> dict[int, tuple[list[int], list[bytes]]]:
        """The pages to store as a delta and the chain it rests on, by block
        index, for those `candidates` (block index → parent blob id, parent page
        table id, new page table) where a delta pays and the chain is short and
        was stored. The caller references the chain (`index.reuse`) and keeps
        the delta only if all of it is still stored. Block indices only grow
        from one call to the next."""
        if not candidates:
            return {}
        self._read_ahead(min(candidates), max(candidates) + 1)
        plans: dict[int, tuple[list[int], list[bytes]]] = {}
        for index, (parent_id, parent_table, table) in candidates.items():
            chain = next(
                (w.chains[parent_id] for w in self._windows if parent_id in w.chains), None
            )
            base_table = next(
                (w.tables[parent_table] for w in self._windows if parent_table in w.tables), None
            )
            if chain is None or len(chain) > MAX_DEPTH or base_table is None:
                continue
            if len(base_table) != len(table):
                continue
            pages = changed_pages(table, base_table)
            if 2 * len(pages) <= len(table) // FINGERPRINT_SIZE:
                plans[index] = (pages, chain)
        return plans

    def _read_ahead(self, start: int, stop: int) -> None:
        """Read ahead the chains and page tables of the parent's blocks for the
        windows that blocks [start, stop) fall in; drop the windows before."""
        parent = self.parent
        if parent is None:
            return
        while self._read_to < min(stop, parent.block_count):
            window = range(self._read_to, min(self._read_to + WINDOW_BLOCKS, parent.block_count))
            self._read_to = window.stop
            ids = sorted({b for i in window if (b := parent.blob_id(i)) is not None})
            tables = sorted({t for i in window if (t := parent.page_table_id(i)) is not None})
            found = self.index.locate(self.container, [*ids, *tables]) if ids else {}
            self._windows.append(
                _Window(window.stop, self.chains(ids, found), self.fetch_tables(tables, found))
            )
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
