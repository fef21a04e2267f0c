"""A store that fails to read (StoreError: unreachable, timing out) is told
apart from one that reads wrong bytes (corruption), by check and by verify."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ashbox.errors import CorruptData, StoreError
from ashbox.repository.check import check_repository
from ashbox.repository.manifest import manifest_key
from ashbox.repository.pack import pack_key
from ashbox.repository.repository import Repository
from ashbox.repository.stats import repository_stats

from ..storage.memory_store import MemoryStore
from .conftest import BLOCK, CONTAINER
from .gc_helpers import image, random_blocks
from .memory_index import MemoryIndex


class FailingStore:
    """A store whose reads of the keys in `failing` fail as a store does
    when its server does not answer, and whose listing still shows the keys in
    `ghosts`, as Swift's does after a delete until its object updater runs
    (a fake at a seam we own)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.failing: set[str] = set()
        self.ghosts: set[str] = set()

    def put(self, key: str, data: bytes | memoryview) -> None:
        self.store.put(key, data)

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        self._fail(key)
        return self.store.get(key, offset, length)

    def size(self, key: str) -> int:
        self._fail(key)
        return self.store.size(key)

    def delete(self, key: str) -> None:
        self.store.delete(key)

    def list(self, prefix: str) -> Iterator[str]:
        ghosts = {key for key in self.ghosts if key.startswith(prefix)}
        return iter(sorted(set(self.store.list(prefix)) | ghosts))

    def _fail(self, key: str) -> None:
        if key in self.failing:
            raise StoreError(f"Backup store: cannot read {key}: read timed out.")


@pytest.fixture
def failing(store: MemoryStore) -> FailingStore:
    return FailingStore(store)


@pytest.fixture
def repo(failing: FailingStore, index: MemoryIndex) -> Repository:
    return Repository.open(
        failing,
        CONTAINER,
        index,
        block_size=BLOCK,
        pack_size=8 * BLOCK,
        threads=2,
        upload_threads=2,
        gc_grace_seconds=0,
    )


def two_backups(repo: Repository, tmp_path: Path) -> tuple[str, str]:
    """b1 and b2 with no block in common; the pack of each one's first block."""
    one, two = random_blocks(1, 4), random_blocks(2, 4)
    repo.backup("b1", image(tmp_path / "1", one))
    repo.backup("b2", image(tmp_path / "2", two))

    def pack_of(block: bytes) -> str:
        blob_id = repo.codec.blob_id(block)
        return repo.index.locate(CONTAINER, [blob_id])[blob_id].pack_id

    return pack_of(one[0]), pack_of(two[0])


@pytest.mark.parametrize("read_data", [False, True])
def test_check_reports_an_unreadable_pack_apart_from_a_corrupt_one(
    repo: Repository, failing: FailingStore, tmp_path: Path, read_data: bool
) -> None:
    corrupt, unreadable = two_backups(repo, tmp_path)
    key = pack_key(CONTAINER, corrupt)
    data = bytearray(failing.store.get(key))
    data[-40] ^= 0x01  # in the trailer: found with and without reading data
    failing.store.put(key, bytes(data))
    failing.failing.add(pack_key(CONTAINER, unreadable))

    report = check_repository(repo, read_data=read_data)

    assert not report.ok
    damaged = [d for d in report.damages if not d.unreadable]
    lost = [d for d in report.damages if d.unreadable]
    assert damaged and all(d.pack_id == corrupt for d in damaged if d.pack_id)
    assert [d.pack_id for d in lost] == [unreadable]
    assert lost[0].message == (
        f"could not read {pack_key(CONTAINER, unreadable)}: Backup store: cannot read "
        f"{pack_key(CONTAINER, unreadable)}: read timed out."
    )
    assert report.damaged_packs == (corrupt,)
    assert report.affected_backups == ("b1",)


def test_check_reports_an_unreadable_manifest_apart_from_a_corrupt_one(
    repo: Repository, failing: FailingStore, tmp_path: Path
) -> None:
    two_backups(repo, tmp_path)
    bad = manifest_key(CONTAINER, "b1")
    failing.store.put(bad, failing.store.get(bad)[:-7])
    failing.failing.add(manifest_key(CONTAINER, "b2"))

    report = check_repository(repo)

    by_backup = {d.backup_id: d for d in report.damages}
    assert not by_backup["b1"].unreadable
    assert by_backup["b2"].unreadable
    assert by_backup["b2"].message.startswith(f"could not read {manifest_key(CONTAINER, 'b2')}: ")
    assert report.affected_backups == ("b1",)


def test_verify_says_could_not_read_for_a_store_failure_and_corrupt_for_wrong_bytes(
    repo: Repository, failing: FailingStore, tmp_path: Path
) -> None:
    corrupt, unreadable = two_backups(repo, tmp_path)
    key = pack_key(CONTAINER, corrupt)
    data = bytearray(failing.store.get(key))
    data[BLOCK // 2] ^= 0x10  # inside the first blob
    failing.store.put(key, bytes(data))
    failing.failing.add(pack_key(CONTAINER, unreadable))

    with pytest.raises(CorruptData) as wrong:
        repo.verify("b1")
    assert "is corrupt" in wrong.value.message

    with pytest.raises(StoreError) as lost:
        repo.verify("b2")
    assert not isinstance(lost.value, CorruptData)
    assert lost.value.message.startswith(
        f"Backup b2: could not read {pack_key(CONTAINER, unreadable)} "
    )
    assert lost.value.message.endswith("read timed out.")


def test_a_manifest_listed_after_its_delete_is_skipped_by_check_and_stats(
    repo: Repository, failing: FailingStore, tmp_path: Path
) -> None:
    """A backup deleted while check or stats runs is the same case."""
    two_backups(repo, tmp_path)
    repo.delete("b2")
    failing.ghosts.add(manifest_key(CONTAINER, "b2"))

    report = check_repository(repo)

    assert report.ok and report.manifests_checked == 1
    stats = repository_stats(repo)
    assert [u.backup_id for u in stats.backups] == ["b1"] and not stats.unreadable_manifests
