"""`rebuild_index` rebuilds packs, blobs and references from the store alone."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete

from ashbox.db.engine import Database
from ashbox.db.models import Blob, BlobRef, Pack
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
