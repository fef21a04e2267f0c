"""`check_repository` finds flipped bytes, missing packs and broken manifests, and
names the backups they touch; restore and verify report the same damage."""

from __future__ import annotations

from pathlib import Path

import pytest

from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.errors import CorruptData
from ashbox.repository.blob import FLAG_DELTA
from ashbox.repository.check import check_repository
from ashbox.repository.index import LIVE, BlobLocation
from ashbox.repository.manifest import manifest_key
from ashbox.repository.pack import pack_key
from ashbox.repository.repository import Repository
from ashbox.volumes import create_volume_file

from ..storage.memory_store import MemoryStore
from .conftest import BLOCK, CONTAINER
from .gc_helpers import db_repository, image, random_blocks


@pytest.fixture
def repo(store: MemoryStore, db: Database) -> Repository:
    return db_repository(store, db)


def three_backups(repo: Repository, tmp_path: Path) -> tuple[list[bytes], list[bytes]]:
    """b1 and b2 share their first 4 blocks; b3 shares nothing."""
    shared = random_blocks(1, 4)
    own = random_blocks(2, 12)
    repo.backup("b1", image(tmp_path / "1", shared + own[:4]))
    repo.backup("b2", image(tmp_path / "2", shared + own[4:8]))
    repo.backup("b3", image(tmp_path / "3", own[8:]))
    return shared, own


def location_of(repo: Repository, block: bytes) -> BlobLocation:
    blob_id = repo.codec.blob_id(block)
    return repo.index.locate(CONTAINER, [blob_id])[blob_id]


def test_a_sound_repository_checks_clean_with_and_without_reading_data(
    repo: Repository, tmp_path: Path
) -> None:
    three_backups(repo, tmp_path)
    for read_data in (False, True):
        report = check_repository(repo, read_data=read_data)
        assert report.ok, report.damages
        assert report.manifests_checked == 3
        assert report.packs_checked >= 2
    whole = [b for b in repo.index.blobs(CONTAINER) if not b.flags & FLAG_DELTA]
    assert check_repository(repo, read_data=True).blobs_checked == len(whole) >= 16


def test_a_flipped_byte_in_a_pack_is_found_by_reading_data_and_fails_restore_and_verify(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    shared, _ = three_backups(repo, tmp_path)
    loc = location_of(repo, shared[2])
    key = pack_key(CONTAINER, loc.pack_id)
    data = bytearray(store.get(key))
    data[loc.offset + loc.length // 2] ^= 0x10
    store.put(key, bytes(data))

    assert check_repository(repo).ok  # the trailer is intact: only the data is bad
    report = check_repository(repo, read_data=True)
    assert not report.ok
    assert report.damaged_packs == (loc.pack_id,)
    assert set(report.affected_backups) >= {"b1", "b2"}

    target = tmp_path / "out"
    create_volume_file(target, 8 * BLOCK)
    for run in (
        lambda: repo.restore("b1", target, new_volume=True),
        lambda: repo.verify("b1"),
    ):
        with pytest.raises(CorruptData) as e:
            run()
        assert "b1" in e.value.message
        assert f"offset {2 * BLOCK}" in e.value.message
        assert loc.pack_id in e.value.message


def test_a_deleted_pack_is_found_and_every_backup_needing_it_is_listed(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    shared, _ = three_backups(repo, tmp_path)
    loc = location_of(repo, shared[0])
    store.delete(pack_key(CONTAINER, loc.pack_id))

    report = check_repository(repo)
    assert not report.ok
    assert loc.pack_id in report.damaged_packs
    assert any("missing" in d.message for d in report.damages)
    assert {"b1", "b2"} <= set(report.affected_backups)

    target = tmp_path / "out"
    create_volume_file(target, 8 * BLOCK)
    with pytest.raises(CorruptData) as e:
        repo.restore("b2", target, new_volume=True)
    assert "b2" in e.value.message and loc.pack_id in e.value.message
    assert "offset" in e.value.message


def test_a_truncated_manifest_is_found_and_fails_restore_naming_the_backup(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    three_backups(repo, tmp_path)
    key = manifest_key(CONTAINER, "b3")
    store.put(key, store.get(key)[:-7])

    report = check_repository(repo)
    assert not report.ok
    assert report.affected_backups == ("b3",)
    assert report.damaged_packs == ()
    target = tmp_path / "out"
    create_volume_file(target, 8 * BLOCK)
    with pytest.raises(CorruptData) as e:
        repo.restore("b3", target, new_volume=True)
    assert "b3" in e.value.message or "Manifest" in e.value.message


def test_a_trailer_that_disagrees_with_the_index_is_found_without_reading_data(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    shared, _ = three_backups(repo, tmp_path)
    loc = location_of(repo, shared[1])
    key = pack_key(CONTAINER, loc.pack_id)
    data = bytearray(store.get(key))
    data[-40] ^= 0x01  # inside the trailer's entries or checksum
    store.put(key, bytes(data))
    report = check_repository(repo)
    assert report.damaged_packs == (loc.pack_id,)
    assert "b1" in report.affected_backups


class PackByPackIndex(DbIndex):
    """The database index, recording which packs' blobs are asked for, and
    failing whoever lists every blob: a check must hold one pack's rows at a time."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.asked: list[str] = []

    def pack_blobs(self, container: str, pack_id: str) -> list[BlobLocation]:
        self.asked.append(pack_id)
        return super().pack_blobs(container, pack_id)

    def blobs(self, container: str) -> list[BlobLocation]:
        raise AssertionError("a check listed every blob of the container")


def test_a_check_asks_the_index_for_one_pack_at_a_time_and_finds_the_same_damage(
    store: MemoryStore, db: Database, tmp_path: Path
) -> None:
    index = PackByPackIndex(db)
    repo = Repository.open(
        store, CONTAINER, index, block_size=BLOCK, pack_size=8 * BLOCK, gc_grace_seconds=0
    )
    shared, _ = three_backups(repo, tmp_path)
    live = [p.pack_id for p in index.packs(CONTAINER) if p.state == LIVE]
    assert check_repository(repo, read_data=True).ok
    assert index.asked == live
    loc = location_of(repo, shared[2])
    key = pack_key(CONTAINER, loc.pack_id)
    data = bytearray(store.get(key))
    data[loc.offset + loc.length // 2] ^= 0x10
    store.put(key, bytes(data))
    report = check_repository(repo, read_data=True)
    assert report.damaged_packs == (loc.pack_id,)
    assert set(report.affected_backups) >= {"b1", "b2"}
