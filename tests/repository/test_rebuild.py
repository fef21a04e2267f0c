"""`rebuild_index` rebuilds packs, blobs and references from the store alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from ashbox.db import index_rebuild
from ashbox.db.engine import Database
from ashbox.db.models import Blob, BlobRef, Pack
from ashbox.errors import StoreError
from ashbox.repository.index import PackContents
from ashbox.repository.pack import pack_key
from ashbox.repository.rebuild import rebuild_index

from ..storage.memory_store import MemoryStore
from .conftest import BLOCK, CONTAINER, make_image, sha256
from .gc_helpers import db_repository, image, random_blocks, restored_sha


def test_every_backup_restores_identically_after_the_index_tables_are_emptied(
    store: MemoryStore, db: Database, tmp_path: Path
) -> None:
    repo = db_repository(store, db)
    sources = {
        "full": make_image(tmp_path / "a", 40 * BLOCK + 17, seed=1),
        "other": make_image(tmp_path / "b", 25 * BLOCK, seed=2),
    }
    for backup_id, source in sources.items():
        repo.backup(backup_id, source)
    changed = bytearray(sources["full"].read_bytes())
    changed[5 * BLOCK : 5 * BLOCK + 10] = b"0123456789"
    sources["incr"] = image(tmp_path / "c", [bytes(changed)])
    repo.backup("incr", sources["incr"], parent_id="full")
    before = {p.pack_id for p in repo.index.packs(CONTAINER)}
    refs_before = repo.index.references(CONTAINER)

    with db.transaction() as s:
        for model in (BlobRef, Blob, Pack):
            s.execute(delete(model))
    report = rebuild_index(repo)

    assert report.backups == 3 and not report.unreadable_packs
    assert {p.pack_id for p in repo.index.packs(CONTAINER)} == before
    assert repo.index.references(CONTAINER) == refs_before
    for backup_id, source in sources.items():
        size = source.stat().st_size
        assert restored_sha(repo, backup_id, tmp_path, size) == sha256(source)


def test_a_rebuild_keeps_the_references_of_a_backup_still_running(
    store: MemoryStore, db: Database, tmp_path: Path
) -> None:
    repo = db_repository(store, db)
    blocks = random_blocks(3, 4)
    repo.backup("kept", image(tmp_path / "k", blocks[:2]))
    running = repo.codec.blob_id(blocks[0])
    assert repo.index.reuse(CONTAINER, "running", [running]) == {running}
    rebuild_index(repo)
    assert repo.index.references(CONTAINER)["running"] == {running}


def test_packs_no_manifest_needs_are_dead_after_a_rebuild(
    store: MemoryStore, db: Database, tmp_path: Path
) -> None:
    repo = db_repository(store, db)
    blocks = random_blocks(5, 6)
    repo.backup("kept", image(tmp_path / "k", blocks[:3]))
    repo.backup("lost", image(tmp_path / "l", blocks[3:]))
    lost_id = repo.codec.blob_id(blocks[4])
    lost_pack = repo.index.locate(CONTAINER, [lost_id])[lost_id].pack_id
    with db.transaction() as s:
        for model in (BlobRef, Blob, Pack):
            s.execute(delete(model))
    store.delete(f"{CONTAINER}/backups/lost")

    rebuild_index(repo)

    assert set(repo.index.references(CONTAINER)) == {"kept"}
    assert lost_pack in repo.index.dead_packs(CONTAINER)
    assert restored_sha(repo, "kept", tmp_path, 3 * BLOCK) == sha256(tmp_path / "k")


def test_a_rebuild_limited_to_known_backups_references_only_them(
    store: MemoryStore, db: Database, tmp_path: Path
) -> None:
    repo = db_repository(store, db)
    blocks = random_blocks(4, 4)
    repo.backup("known", image(tmp_path / "k", blocks[:2]))
    repo.backup("stranger", image(tmp_path / "s", blocks[2:]))
    rebuild_index(repo, backup_ids={"known"})
    assert set(repo.index.references(CONTAINER)) == {"known"}


def test_a_blob_in_two_packs_is_indexed_in_the_first_by_id_and_the_other_dies(
    store: MemoryStore, db: Database, tmp_path: Path
) -> None:
    repo = db_repository(store, db)
    blocks = random_blocks(6, 3)
    repo.backup("b", image(tmp_path / "b", blocks))
    first = repo.codec.blob_id(blocks[0])
    original = repo.index.locate(CONTAINER, [first])[first].pack_id
    packs = len(repo.index.packs(CONTAINER))
    copy = "0" * 64  # sorts first: the same bytes under another pack id
    store.put(pack_key(CONTAINER, copy), store.get(pack_key(CONTAINER, original)))

    report = rebuild_index(repo)

    assert repo.index.locate(CONTAINER, [first])[first].pack_id == copy
    assert report.packs == packs + 1 and report.blobs == len(repo.index.blobs(CONTAINER))
    assert original in repo.index.dead_packs(CONTAINER)
    assert restored_sha(repo, "b", tmp_path, 3 * BLOCK) == sha256(tmp_path / "b")


def test_a_rebuild_stages_rows_in_batches_and_indexes_them_all(
    store: MemoryStore, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = db_repository(store, db)
    repo.backup("b", image(tmp_path / "b", random_blocks(7, 20)))
    before = (repo.index.blobs(CONTAINER), repo.index.references(CONTAINER))
    monkeypatch.setattr(index_rebuild, "_BATCH_ROWS", 3)
    with db.transaction() as s:
        for model in (BlobRef, Blob, Pack):
            s.execute(delete(model))

    rebuild_index(repo)

    after = (repo.index.blobs(CONTAINER), repo.index.references(CONTAINER))
    assert sorted(after[0], key=lambda b: b.blob_id) == sorted(before[0], key=lambda b: b.blob_id)
    assert after[1] == before[1]


def test_a_rebuild_that_fails_midway_leaves_the_index_as_it_was(
    store: MemoryStore, db: Database, tmp_path: Path
) -> None:
    repo = db_repository(store, db)
    repo.backup("b", image(tmp_path / "b", random_blocks(8, 12)))
    before = (repo.index.packs(CONTAINER), repo.index.references(CONTAINER))

    def failing_packs() -> Iterator[PackContents]:
        yield PackContents("f" * 64, 10, [])
        raise StoreError("Backup store: the network went away.")

    with pytest.raises(StoreError):
        repo.index.rebuild(CONTAINER, failing_packs(), iter([]), lambda _: True)
    assert (repo.index.packs(CONTAINER), repo.index.references(CONTAINER)) == before
    rebuild_index(repo)  # the staging tables of the failed one are gone
    assert repo.index.references(CONTAINER) == before[1]
