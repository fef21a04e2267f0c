"""Issue 2's acceptance, through `ashbox serve` over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from ashbox.db.engine import Database
from ashbox.db.models import Backup, Pack
from tests.conftest import _fresh_postgres_database
from tests.server import Server

pytestmark = pytest.mark.integration

MiB = 1 << 20


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-split"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """`ashbox serve` on each database, and the split deployment (an API process and
    two worker processes) on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ashbox.db'}"
    return _fresh_postgres_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Iterator[Server]:
    split = request.node.callspec.params["database_url"].endswith("-split")
    srv = Server(tmp_path / "data", database_url, split=split)
    srv.start()
    yield srv
    srv.stop()


def mixed_image(path: Path, size: int, seed: int = 1) -> Path:
    """Random, log-like text and zero extents of 64 KiB to 4 MiB."""
    rng = random.Random(seed)
    text = b"".join(
        b"2026-11-25 08:%02d:%02d INFO request %d served\n" % (i % 60, i % 60, i)
        for i in range(40_000)
    )
    with path.open("wb") as f:
        written = 0
        while written < size:
            n = min(size - written, rng.choice([64 << 10, 1 << 20, 4 << 20]))
            kind = rng.random()
            if kind < 0.4:
                f.write(os.urandom(n))
            elif kind < 0.75:
                start = rng.randrange(0, len(text) - n) if n < len(text) else 0
                f.write((text * (n // len(text) + 1))[start : start + n])
            else:
                f.write(b"\0" * n)
            written += n
    return path


def sha256(path: Path, length: int | None = None) -> str:
    h = hashlib.sha256()
    remaining = length if length is not None else path.stat().st_size
    with path.open("rb") as f:
        while remaining > 0:
            chunk = f.read(min(8 * MiB, remaining))
            if not chunk:
                break
            h.update(chunk)
            remaining -= len(chunk)
    return h.hexdigest()


def backup_and_restore(server: Server, image: Path, **fields: object) -> tuple[str, Path]:
    volume = server.import_volume(image)
    bid = server.create_backup(volume["id"], **fields)
    assert server.wait_backup(bid)["status"] == "available"
    target = server.restore(bid)
    assert server.wait_backup(bid)["status"] == "available"
    assert server.volume(target)["status"] == "available"
    return bid, server.path_of(target)


def test_a_mixed_image_restores_identically(server: Server, tmp_path: Path) -> None:
    image = mixed_image(tmp_path / "mixed.raw", 256 * MiB)
    _, restored = backup_and_restore(server, image)
    assert sha256(restored) == sha256(image)


def test_a_sparse_4gib_image_backs_up_in_seconds_without_reading_holes(
    server: Server, tmp_path: Path
) -> None:
    image = tmp_path / "sparse.raw"
    with image.open("wb") as f:
        f.truncate(4 << 30)
        for i in range(8):
            f.seek(i * (512 * MiB) + 3 * MiB)
            f.write(os.urandom(8 * MiB))
    started = time.monotonic()
    bid, restored = backup_and_restore(server, image)
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"backup and restore of 64 MiB of data took {elapsed:.1f}s"
    assert server.backup(bid)["os-backup-stats:stored_size"] < 70 * MiB
    assert sha256(restored) == sha256(image)
    assert os.stat(restored).st_blocks * 512 < 200 * MiB  # holes stayed holes


def test_an_image_not_a_multiple_of_the_block_size_restores_identically(
    server: Server, tmp_path: Path
) -> None:
    image = mixed_image(tmp_path / "odd.raw", 10 * MiB)
    with image.open("ab") as f:
        f.write(os.urandom(12_345))
    _, restored = backup_and_restore(server, image)
    assert restored.stat().st_size == image.stat().st_size
    assert sha256(restored) == sha256(image)


def test_an_incremental_after_a_small_change_stores_little_and_dedup_works(
    server: Server, tmp_path: Path
) -> None:
    image = mixed_image(tmp_path / "v.raw", 256 * MiB)
    volume = server.import_volume(image)
    full = server.create_backup(volume["id"])
    assert server.wait_backup(full)["status"] == "available"
    full_bytes = server.backup(full)["os-backup-stats:stored_size"]
    with image.open("r+b") as f:  # 1% of the image, in four extents
        for offset in (10 * MiB, 70 * MiB, 150 * MiB, 230 * MiB):
            f.seek(offset)
            f.write(os.urandom(640 * 1024))
    changed = sha256(image)
    incremental = server.create_backup(volume["id"], incremental=True)
    detail = server.wait_backup(incremental)
    assert detail["status"] == "available" and detail["is_incremental"]
    assert detail["os-backup-stats:stored_size"] < 0.05 * full_bytes
    target = server.restore(incremental)
    assert server.wait_backup(incremental)["status"] == "available"
    assert sha256(server.path_of(target)) == changed

    twin = tmp_path / "twin.raw"
    twin.write_bytes(image.read_bytes())
    twin_backup = server.create_backup(server.import_volume(twin)["id"])
    assert server.wait_backup(twin_backup)["status"] == "available"
    assert server.backup(twin_backup)["os-backup-stats:stored_size"] < 0.01 * full_bytes


def test_deletes_respect_dependents_and_reclaim_storage(
    server: Server, tmp_path: Path, database_url: str
) -> None:
    image = mixed_image(tmp_path / "v.raw", 32 * MiB)
    volume = server.import_volume(image)["id"]
    full = server.create_backup(volume)
    server.wait_backup(full)
    incremental = server.create_backup(volume, incremental=True)
    server.wait_backup(incremental)
    refused = server.http.delete(f"/backups/{full}")
    assert refused.status_code == 400
    assert refused.json() == {
        "badRequest": {
            "code": 400,
            "message": "Invalid backup: Incremental backups exist for this backup.",
        }
    }
    assert server.call("DELETE", f"/backups/{incremental}", expect=202) is None
    assert server.wait_backup(incremental) == {}
    server.call("DELETE", f"/backups/{full}", expect=202)
    assert server.wait_backup(full) == {}
    assert pack_files(server) == []

    # Two backups sharing every block: deleting one keeps the other restorable.
    first = server.create_backup(volume)
    server.wait_backup(first)
    second = server.create_backup(volume)
    server.wait_backup(second)
    server.call("DELETE", f"/backups/{first}", expect=202)
    assert server.wait_backup(first) == {}
    target = server.restore(second)
    server.wait_backup(second)
    assert sha256(server.path_of(target)) == sha256(image)
    assert_no_orphans(server, database_url)


def test_bad_input_gets_cinder_errors_and_changes_nothing(server: Server, tmp_path: Path) -> None:
    missing = "0b6e4e5c-8d8f-4a8e-9a35-2d1f0c9e0a11"
    response = server.http.get(f"/backups/{missing}")
    assert response.status_code == 404
    assert response.json() == {
        "itemNotFound": {"code": 404, "message": f"Backup {missing} could not be found."}
    }
    image = mixed_image(tmp_path / "v.raw", 4 * MiB)
    volume = server.import_volume(image)["id"]
    bid = server.create_backup(volume)
    busy = server.http.post("/backups", json={"backup": {"volume_id": volume}})
    if server.volume(volume)["status"] == "backing-up":
        assert busy.status_code == 400
        assert "Volume to be backed up must be available or in-use" in busy.text
    server.wait_backup(bid)
    before = server.call("GET", "/backups/detail")
    unknown = server.http.post("/backups", json={"backup": {"volume_id": volume, "colour": "red"}})
    assert unknown.status_code == 400
    assert "badRequest" in unknown.json()
    big = tmp_path / "big.raw"
    with big.open("wb") as f:
        f.truncate(2 << 30)
    big_backup = server.create_backup(server.import_volume(big)["id"])
    server.wait_backup(big_backup)
    small = server.import_volume(mixed_image(tmp_path / "small.raw", 4 * MiB))
    too_small = server.http.post(
        f"/backups/{big_backup}/restore", json={"restore": {"volume_id": small["id"]}}
    )
    assert too_small.status_code == 400
    assert too_small.json()["badRequest"]["message"] == (
        "Invalid volume: volume size 1 is too small to restore backup of size 2."
    )
    assert server.volume(small["id"])["status"] == "available"
    after = server.call("GET", "/backups/detail")
    assert len(after["backups"]) == len(before["backups"]) + 1


def pack_files(server: Server) -> list[Path]:
    return [p for p in (server.data_dir / "store").rglob("data/*/*") if p.is_file()]


def assert_no_orphans(server: Server, database_url: str) -> None:
    """Every pack and manifest in the store is one the database knows and needs."""
    db = Database(database_url)
    try:
        with db.transaction() as s:
            packs = set(s.scalars(select(Pack.id).where(Pack.state == "live")))
            backups = set(s.scalars(select(Backup.id).where(Backup.deleted.is_(False))))
    finally:
        db.dispose()
    assert {p.name for p in pack_files(server)} <= packs
    manifests = {p.name for p in (server.data_dir / "store").rglob("backups/*") if p.is_file()}
    assert manifests <= backups
