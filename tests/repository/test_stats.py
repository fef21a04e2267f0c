"""`repository_stats` gives, from the index's sums (`Index.usage`), exactly the
figures of a straightforward computation over every blob and reference, on the
memory index and the database index; and it never lists every blob."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.repository.check import check_repository
from ashbox.repository.delta import PAGE_SIZE
from ashbox.repository.index import BlobLocation, Index
from ashbox.repository.pack import pack_key
from ashbox.repository.rebuild import rebuild_index
from ashbox.repository.repository import Repository
from ashbox.repository.stats import (
    RepositoryStats,
    repository_stats,
)
from ashbox.volumes import open_for_write

from ..storage.memory_store import MemoryStore
from .conftest import CONTAINER
from .memory_index import MemoryIndex

BLOCK = 16 * PAGE_SIZE  # several pages, so changed blocks are stored as deltas


class UnlistedIndex(MemoryIndex):
    """A memory index that fails whoever lists every blob or reference while
    `listing` is off: what `repo stats` and `repo check` must not need."""

    listing = True

    def blobs(self, container: str) -> list[BlobLocation]:
        assert self.listing, "listed every blob"
        return super().blobs(container)

    def references(self, container: str) -> dict[str, set[bytes]]:
        assert self.listing, "listed every reference"
        return super().references(container)


def open_repository(store: MemoryStore, index: Index) -> Repository:
    return Repository.open(
        store, CONTAINER, index, block_size=BLOCK, pack_size=8 * BLOCK, gc_grace_seconds=0
    )


def blob_figures(stats: RepositoryStats) -> tuple[int, int, int, dict[str, int]]:
    """What `Index.usage` gives `repository_stats`: referenced blobs, their raw
    and stored bytes, and each backup's unique bytes (those not 0)."""
    unique = {u.backup_id: u.unique_size for u in stats.backups if u.unique_size}
    return stats.blobs, stats.raw_size, stats.blob_size, unique


def old_blob_figures(repo: Repository) -> tuple[int, int, int, dict[str, int]]:
    """The oracle: the same figures as computed before `Index.usage`, in Python
    over every blob and every reference of the container."""
    blobs = {b.blob_id: b for b in repo.index.blobs(repo.container)}
    references = repo.index.references(repo.container)
    users: Counter[bytes] = Counter()
    for blob_ids in references.values():
        users.update(blob_ids)
    referenced = [blobs[b] for b in users if b in blobs]
    unique = {
        backup_id: sum(blobs[b].length for b in ids if b in blobs and users[b] == 1)
        for backup_id, ids in references.items()
    }
    return (
        len(referenced),
        sum(b.raw_length for b in referenced),
        sum(b.length for b in referenced),
        {backup_id: size for backup_id, size in unique.items() if size},
    )


def blocks(seed: int, count: int) -> list[bytes]:
    """Random blocks and compressible ones, so raw and stored sizes differ."""
    rng = random.Random(seed)
    return [
        rng.randbytes(BLOCK) if i % 2 else (b"ashbox %d " % rng.randint(0, 99) * BLOCK)[:BLOCK]
        for i in range(count)
    ]


def change_pages(path: Path, pages: list[int], seed: int) -> None:
    rng = random.Random(seed)
    with open_for_write(path) as w:
        for page in pages:
            w.write(rng.randbytes(PAGE_SIZE), page * PAGE_SIZE)


def shared_and_delta_backups(repo: Repository, tmp_path: Path) -> None:
    """b1; b2 and b3 its incrementals, changed pages stored as deltas (b3's on
    b2's); b4 another volume sharing blocks with b1 and repeating one; `holes`
    with no data; `running` with references and no manifest yet."""
    pages = BLOCK // PAGE_SIZE
    a = blocks(1, 8)
    volume = tmp_path / "v1"
    volume.write_bytes(b"".join(a) + bytes(BLOCK) + a[0][:1000])  # a hole, a short tail
    repo.backup("b1", volume)
    change_pages(volume, [1 * pages + 3, 2 * pages, 3 * pages + 15], seed=2)
    repo.backup("b2", volume, parent_id="b1")
    change_pages(volume, [1 * pages + 4, 5 * pages + 1], seed=3)
    repo.backup("b3", volume, parent_id="b2")
    b = blocks(4, 2)
    other = tmp_path / "v2"
    other.write_bytes(b"".join([a[0], a[6], b[0], b[0], b[1]]))
    repo.backup("b4", other)
    holes = tmp_path / "v3"
    holes.write_bytes(bytes(3 * BLOCK))
    repo.backup("holes", holes)
    in_b3 = repo.read_manifest("b3").blob_id(1)
    assert in_b3 is not None
    assert repo.index.reuse(CONTAINER, "running", [in_b3, repo.codec.blob_id(b[1])])


def assert_stats_match_the_oracle(repo: Repository) -> RepositoryStats:
    stats = repository_stats(repo)
    assert blob_figures(stats) == old_blob_figures(repo)
    return stats


def test_stats_on_the_memory_index_match_a_computation_over_every_blob(
    store: MemoryStore, tmp_path: Path
) -> None:
    index = UnlistedIndex()
    repo = open_repository(store, index)
    shared_and_delta_backups(repo, tmp_path)
    assert any(b.base_id is not None for b in index.blobs(CONTAINER))

    index.listing = False
    stats = repository_stats(repo)
    assert check_repository(repo, read_data=True).ok
    index.listing = True
    assert blob_figures(stats) == old_blob_figures(repo)
    by_backup = {u.backup_id: u for u in stats.backups}
    assert set(by_backup) == {"b1", "b2", "b3", "b4", "holes", "running"}
    assert by_backup["holes"].unique_size == 0 and by_backup["holes"].logical_size == 0
    assert by_backup["running"].logical_size == 0
    assert all(by_backup[b].unique_size > 0 for b in ("b1", "b2", "b3", "b4"))
    assert stats.blobs < sum(len(ids) for ids in index.references(CONTAINER).values())
    assert stats.raw_size != stats.blob_size

    repo.delete("b1")
    after = assert_stats_match_the_oracle(repo)
    assert "b1" not in {u.backup_id for u in after.backups}


def test_stats_on_the_database_index_match_a_computation_over_every_blob(
    store: MemoryStore, db: Database, tmp_path: Path
) -> None:
    repo = open_repository(store, DbIndex(db))
    shared_and_delta_backups(repo, tmp_path)
    assert any(b.base_id is not None for b in repo.index.blobs(CONTAINER))
    stats = assert_stats_match_the_oracle(repo)
    assert {u.backup_id for u in stats.backups} == {"b1", "b2", "b3", "b4", "holes", "running"}

    repo.delete("b1")
    assert_stats_match_the_oracle(repo)

    # A pack lost from the store: the rebuilt index holds references to blobs it
    # no longer indexes, which count nowhere.
    lost = repo.index.locate(CONTAINER, [repo.codec.blob_id(blocks(1, 8)[6])])
    store.delete(pack_key(CONTAINER, next(iter(lost.values())).pack_id))
    assert rebuild_index(repo).unreadable_packs == ()  # the pack is simply gone
    indexed = {b.blob_id for b in repo.index.blobs(CONTAINER)}
    references = repo.index.references(CONTAINER)
    assert set().union(*references.values()) - indexed
    assert_stats_match_the_oracle(repo)


def test_stats_of_an_empty_repository_are_zero(db: Database) -> None:
    for index in (MemoryIndex(), DbIndex(db)):
        stats = repository_stats(open_repository(MemoryStore(), index))
        assert (stats.packs, stats.blobs, stats.raw_size, stats.blob_size) == (0, 0, 0, 0)
        assert stats.backups == ()
        assert (stats.dedup_ratio, stats.compression_ratio) == (1.0, 1.0)
