"""Backups reusing blobs while deletes and the garbage collector run at once, on
SQLite and PostgreSQL; then every remaining backup restores identically (DESIGN.md §3)."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from pathlib import Path

import pytest

from ashbox.containers import open_repository
from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.repository.check import check_repository
from ashbox.repository.gc import collect_garbage
from ashbox.repository.repository import Repository
from ashbox.storage.posix import PosixStore
from ashbox.volumes import create_volume_file
from tests.harness import Harness

BLOCK = 4096
CONTAINER = "volumebackups"
BACKUPS = 40
SECONDS = 20.0


def _repository(store: PosixStore, db: Database) -> Repository:
    return Repository.open(
        store,
        CONTAINER,
        DbIndex(db),
        block_size=BLOCK,
        pack_size=6 * BLOCK,
        threads=2,
        upload_threads=2,
        gc_grace_seconds=0.5,
    )


@pytest.mark.slow
def test_backups_deletes_and_gc_at_once_lose_nothing(db: Database, tmp_path: Path) -> None:
    store = PosixStore(tmp_path / "store")
    pool = [random.Random(n).randbytes(BLOCK) for n in range(48)]
    expected: dict[str, str] = {}  # backups written and not deleted: their image's sha256
    lock = threading.Lock()
    finished = threading.Event()
    errors: list[BaseException] = []
    deleted: list[str] = []
    gc_runs = [0]

    def back_up() -> None:
        repo = _repository(store, db)
        rng = random.Random(1)
        parent: str | None = None
        for n in range(BACKUPS):
            blocks = [rng.choice(pool) if rng.random() < 0.9 else bytes(BLOCK) for _ in range(12)]
            if parent is not None and rng.random() < 0.5:
                blocks[rng.randrange(12)] = rng.randbytes(BLOCK)  # a few new blobs
            data = b"".join(blocks)
            source = tmp_path / f"src-{n}"
            source.write_bytes(data)
            backup_id = f"b{n}"
            with lock:
                usable_parent = parent if parent in expected else None
            repo.backup(backup_id, source, parent_id=usable_parent)
            source.unlink()
            with lock:
                expected[backup_id] = hashlib.sha256(data).hexdigest()
            parent = backup_id

    def delete() -> None:
        repo = _repository(store, db)
        rng = random.Random(2)
        while not finished.is_set():
            with lock:
                victims = sorted(expected)[:-3]  # keep the newest: parents of what comes
                victim = rng.choice(victims) if victims else None
                if victim is not None:
                    del expected[victim]
            if victim is None:
                time.sleep(0.01)
                continue
            repo.delete(victim)
            deleted.append(victim)

    def gc() -> None:
        repo = _repository(store, db)
        while not finished.is_set():
            collect_garbage(repo, repack_live_fraction=0.95)
            gc_runs[0] += 1

    def guarded(target: object) -> threading.Thread:
        def run() -> None:
            try:
                target()  # type: ignore[operator]
            except BaseException as e:
                errors.append(e)
                finished.set()

        return threading.Thread(target=run)

    writer = guarded(back_up)
    others = [guarded(delete), guarded(gc)]
    deadline = time.monotonic() + SECONDS
    for thread in [writer, *others]:
        thread.start()
    writer.join(max(1.0, deadline - time.monotonic()))
    finished.set()
    for thread in [writer, *others]:
        thread.join(60)
    assert not errors, errors
    assert deleted and gc_runs[0] > 1

    repo = _repository(store, db)
    time.sleep(0.6)  # past the grace period: what died may now go
    collect_garbage(repo, repack_live_fraction=0.95)
    report = check_repository(repo, read_data=True)
    assert report.ok, report.damages
    for backup_id, digest in sorted(expected.items()):
        target = tmp_path / f"restore-{backup_id}"
        create_volume_file(target, 12 * BLOCK)
        repo.restore(backup_id, target, new_volume=True)
        assert hashlib.sha256(target.read_bytes()).hexdigest() == digest, backup_id
        repo.verify(backup_id)
    packs_in_store = {k.rsplit("/", 1)[-1] for k in store.list(f"{CONTAINER}/data/")}
    live = {p.pack_id for p in repo.index.packs(CONTAINER) if p.state == "live"}
    assert live <= packs_in_store


def test_the_worker_collects_garbage_on_every_container(db: Database, tmp_path: Path) -> None:
    harness = Harness(db, tmp_path)
    volume = harness.import_image("a.img", random.Random(3).randbytes(256 * 1024))
    kept = harness.backup(volume)
    gone = harness.backup(harness.import_image("b.img", random.Random(4).randbytes(128 * 1024)))
    harness.service.delete_backup(harness.ctx, gone)
    harness.run_tasks()
    reports = harness.worker.collect_garbage()
    assert [r.container for r in reports] == [CONTAINER]
    repo = open_repository(harness.settings, harness.worker.store, db, CONTAINER)
    assert check_repository(repo, read_data=True).ok
    repo.verify(kept)
    assert repo.index.dead_packs(CONTAINER) == []
