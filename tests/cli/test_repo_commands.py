"""`ashbox repo ...` and `ashbox backup verify` on a real database and store directory."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from ashbox.cli.main import main
from ashbox.db.engine import Database
from tests.harness import Harness


def run(harness: Harness, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--data-dir", str(harness.data_dir)], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def harness(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv("ASHBOX_DATABASE_URL", db.url)
    monkeypatch.setenv("ASHBOX_BLOCK_SIZE", str(64 * 1024))
    monkeypatch.setenv("ASHBOX_GC_GRACE_SECONDS", "0")
    for name in ("ASHBOX_CONFIG", "ASHBOX_STORE", "ASHBOX_DEFAULT_CONTAINER"):
        monkeypatch.delenv(name, raising=False)
    return Harness(db, tmp_path)


def two_backups(harness: Harness) -> tuple[str, str]:
    rng = random.Random(7)
    shared = rng.randbytes(256 * 1024)
    first = harness.import_image("a.img", shared + rng.randbytes(128 * 1024))
    second = harness.import_image("b.img", shared + rng.randbytes(64 * 1024))
    return harness.backup(first), harness.backup(second)


def test_repo_stats_shows_ratios_and_each_backups_unique_bytes(harness: Harness) -> None:
    a, b = two_backups(harness)
    code, out, err = run(harness, "repo", "stats", "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["container"] == "volumebackups"
    assert doc["packs"] >= 1 and doc["stored_size"] > 0
    assert doc["logical_size"] == (384 + 320) * 1024
    # The blocks' raw bytes, plus the small page tables deltas keep per block.
    KiB = 1024
    assert 448 * KiB <= doc["raw_size"] < 456 * KiB
    assert doc["dedup_ratio"] == pytest.approx(704 / 448, rel=0.02)
    unique = {u["id"]: u["unique_size"] for u in doc["backups"]}
    # Random bytes do not compress: the unique bytes are those of the own blocks.
    assert 128 * KiB <= unique[a] < 132 * KiB
    assert 64 * KiB <= unique[b] < 68 * KiB


def test_repo_stats_prints_a_table_for_people(harness: Harness) -> None:
    a, _ = two_backups(harness)
    code, out, _ = run(harness, "repo", "stats")
    assert code == 0
    assert "dedup ratio        1.5" in out
    assert a in out


def packs_of(harness: Harness) -> list[Path]:
    return sorted(p for p in (harness.data_dir / "store" / "volumebackups" / "data").rglob("*"))


def test_repo_check_passes_then_fails_naming_the_backups_of_a_damaged_pack(
    harness: Harness,
) -> None:
    a, b = two_backups(harness)
    code, out, _ = run(harness, "repo", "check", "--read-data")
    assert code == 0 and "no damage found" in out
    for pack in [p for p in packs_of(harness) if p.is_file()]:
        data = bytearray(pack.read_bytes())
        data[20] ^= 0xFF  # inside the first blob
        pack.write_bytes(bytes(data))
    assert run(harness, "repo", "check")[0] == 0  # trailers are intact
    code, out, _ = run(harness, "repo", "check", "--read-data")
    assert code == 1
    assert a in out and b in out and "damaged" in out


def test_backup_verify_exits_0_for_a_sound_backup_and_1_with_the_damage(
    harness: Harness,
) -> None:
    a, _ = two_backups(harness)
    code, out, err = run(harness, "backup", "verify", a)
    assert code == 0, err
    assert "verified" in out
    for pack in [p for p in packs_of(harness) if p.is_file()]:
        pack.unlink()
    code, _, err = run(harness, "backup", "verify", a)
    assert code != 0
    assert a in err and "pack" in err


def test_repo_rebuild_index_after_the_tables_are_emptied_keeps_every_backup_restorable(
    harness: Harness,
) -> None:
    from sqlalchemy import delete

    from ashbox.db.models import Blob, BlobRef, Pack

    a, b = two_backups(harness)
    with harness.db.transaction() as s:
        for model in (BlobRef, Blob, Pack):
            s.execute(delete(model))
    assert run(harness, "backup", "verify", a)[0] != 0
    code, out, err = run(harness, "repo", "rebuild-index", "--known-backups")
    assert code == 0, err
    assert "2 backups" in out
    for backup_id in (a, b):
        assert run(harness, "backup", "verify", backup_id)[0] == 0


def test_repo_gc_deletes_what_a_delete_left_and_repacks(harness: Harness) -> None:
    a, b = two_backups(harness)
    harness.service.delete_backup(harness.ctx, a)
    harness.run_tasks()
    code, out, err = run(harness, "repo", "gc")
    assert code == 0, err
    assert "gc of volumebackups" in out
    assert run(harness, "backup", "verify", b)[0] == 0
    assert run(harness, "repo", "check", "--read-data")[0] == 0


def test_a_repo_command_run_elsewhere_fails_and_makes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cron job run from the wrong directory must not stay green."""
    for name in ("ASHBOX_CONFIG", "ASHBOX_STORE", "ASHBOX_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    for argv in (["repo", "check"], ["repo", "stats"], ["repo", "gc"], ["backup", "verify", "b"]):
        out, err = io.StringIO(), io.StringIO()
        assert main(argv, stdout=out, stderr=err) == 3, argv
        assert "No ashbox database at" in err.getvalue()
    assert list(tmp_path.iterdir()) == []


def test_a_container_the_store_lacks_is_not_made_by_a_check(harness: Harness) -> None:
    two_backups(harness)
    code, _, err = run(harness, "repo", "check", "--container", "elsewhere")
    assert code == 3 and "holds no repository" in err
    assert not (harness.data_dir / "store" / "elsewhere").exists()


def test_verify_takes_a_name_as_well_as_an_id(harness: Harness) -> None:
    volume = harness.import_image("n.img", random.Random(3).randbytes(200_000))
    backup_id = harness.backup(volume, name="nightly")
    code, out, err = run(harness, "backup", "verify", "nightly")
    assert code == 0, err
    assert backup_id in out
    harness.backup(volume, name="nightly")
    code, _, err = run(harness, "backup", "verify", "nightly")
    assert code == 2 and "2 backups are named nightly" in err


def test_recover_brings_every_backup_back_after_the_database_is_lost(
    harness: Harness, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ashbox.records import ListQuery
    from tests.conftest import _fresh_postgres_database

    a, b = two_backups(harness)
    harness.service.update_backup(harness.ctx, a, name="kept name")
    before = {r.id: r for r in harness.service.list_backups(harness.ctx, ListQuery())[0]}
    sums = {}
    for backup_id in (a, b):
        restore = harness.service.restore_backup(harness.ctx, backup_id)
        harness.run_tasks()
        path = Path(harness.service.get_volume(harness.ctx, restore.volume_id).path)
        sums[backup_id] = path.read_bytes()
    if database_url.startswith("sqlite"):
        lost = f"sqlite:///{tmp_path / 'lost' / 'new.db'}"
    else:
        lost = _fresh_postgres_database(database_url.rsplit("/", 1)[0])
    monkeypatch.setenv("ASHBOX_DATABASE_URL", lost)
    code, out, err = run(harness, "repo", "recover", "-f", "json")
    assert code == 0, err
    assert sorted(json.loads(out)["recovered_from_records"]) == sorted([a, b])
    new_db = Database(lost)
    try:
        fresh = Harness(new_db, tmp_path)
        after = {r.id: r for r in fresh.service.list_backups(fresh.ctx, ListQuery())[0]}
        assert set(after) == {a, b}
        for backup_id in (a, b):
            old, new = before[backup_id], after[backup_id]
            assert (new.status, new.volume_id, new.size) == ("available", old.volume_id, old.size)
            assert new.created_at == old.created_at and new.project_id == old.project_id
            restore = fresh.service.restore_backup(fresh.ctx, backup_id)
            fresh.run_tasks()
            path = Path(fresh.service.get_volume(fresh.ctx, restore.volume_id).path)
            assert path.read_bytes() == sums[backup_id]
    finally:
        new_db.dispose()
