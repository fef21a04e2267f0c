"""Repositories on the database index (SQLite and PostgreSQL), for check, rebuild and gc tests."""

from __future__ import annotations

import random
from pathlib import Path

from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.repository.repository import Repository
from ashbox.storage.base import Store
from ashbox.volumes import create_volume_file

from .conftest import BLOCK, CONTAINER, sha256


def db_repository(store: Store, db: Database, *, grace: float = 0.0) -> Repository:
    return Repository.open(
        store,
        CONTAINER,
        DbIndex(db),
        block_size=BLOCK,
        pack_size=8 * BLOCK,
        threads=2,
        upload_threads=2,
        gc_grace_seconds=grace,
    )


def image(path: Path, blocks: list[bytes]) -> Path:
    """A volume made of these blocks, back to back."""
    path.write_bytes(b"".join(blocks))
    return path


def random_blocks(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(BLOCK) for _ in range(count)]


def restored_sha(repo: Repository, backup_id: str, tmp_path: Path, size: int) -> str:
    target = tmp_path / f"restore-{backup_id}"
    target.unlink(missing_ok=True)
    create_volume_file(target, size)
    repo.restore(backup_id, target, new_volume=True)
    return sha256(target)
