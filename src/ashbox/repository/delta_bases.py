"""Which new blocks of a backup become page deltas, and the delta chains it relies on.

docs/format.md §4.1. The writer (writer.py) hands over, for each new block
whose offset holds a block of the same length in the parent backup, the
parent's blob id, the parent's page table id and the new page table; this
module locates the parent's chains and tables in the index, reads the tables
in a few ranged gets, and keeps the deltas whose whole chain the backup could
reference (`index.reuse`), so a base lives as long as a backup that needs it.
Called only from the thread that runs the backup, like the index.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ashbox.errors import CorruptData, ObjectNotFound
from ashbox.repository.blob import BlobCodec
from ashbox.repository.delta import FINGERPRINT_SIZE, MAX_DEPTH, changed_pages
from ashbox.repository.index import BlobLocation, Index
from ashbox.repository.pack import pack_key
from ashbox.storage.base import Store

log = logging.getLogger(__name__)


class DeltaBases:
    def __init__(
        self, *, store: Store, container: str, index: Index, codec: BlobCodec, backup_id: str
    ) -> None:
        self.store = store
        self.container = container
        self.index = index
        self.codec = codec
        self.backup_id = backup_id

    def plan(self, candidates: Mapping[int, tuple[bytes, bytes, bytes]]) -> dict[int, list[int]]:
        """The pages to store as a delta, by block index, for those `candidates`
        (block index → parent blob id, parent page table id, new page table) where
        a delta pays and its chain is short and still stored; the chains of the
        kept ones are referenced for the backup."""
        if not candidates:
            return {}
        parents = [c[0] for c in candidates.values()]
        parent_tables = [c[1] for c in candidates.values()]
        found = self.index.locate(self.container, sorted({*parents, *parent_tables}))
        chains = self.chains(parents, found)
        tables = self.fetch_tables(parent_tables, found)
        plans: dict[int, list[int]] = {}
        for index, (parent_id, parent_table, table) in candidates.items():
            chain = chains.get(parent_id)
            base_table = tables.get(parent_table)
            if chain is None or len(chain) > MAX_DEPTH or base_table is None:
                continue
            if len(base_table) != len(table):
                continue
            pages = changed_pages(table, base_table)
            if 2 * len(pages) <= len(table) // FINGERPRINT_SIZE:
                plans[index] = pages
        needed = {b for i in plans for b in chains[candidates[i][0]]}
        kept = self.index.reuse(self.container, self.backup_id, sorted(needed))
        return {i: p for i, p in plans.items() if set(chains[candidates[i][0]]) <= kept}

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

    def reference_chains(self, reused: list[bytes]) -> None:
        """Reference for the backup the bases of the reused blobs that are deltas."""
        ids = list(dict.fromkeys(reused))
        chains = self.chains(ids) if ids else {}
        bases = {b for chain in chains.values() for b in chain[1:]}
        if not bases:
            return
        kept = self.index.reuse(self.container, self.backup_id, sorted(bases))
        if missing := bases - kept:
            raise CorruptData(
                f"Backup {self.backup_id}: delta base blob {min(missing).hex()} of a reused "
                "blob is no longer stored."
            )

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
