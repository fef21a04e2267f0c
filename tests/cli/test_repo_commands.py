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
    code = main([*argv, "--data-dir", str(harness.root)], stdout=out, stderr=err)
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
    assert doc["raw_size"] == (256 + 128 + 64) * 1024
    assert doc["dedup_ratio"] == pytest.approx(704 / 448, abs=1e-3)
    unique = {u["id"]: u["unique_size"] for u in doc["backups"]}
    # Random bytes do not compress: the unique bytes are the raw bytes of the own blocks.
    assert unique == {a: 128 * 1024, b: 64 * 1024}


def test_repo_stats_prints_a_table_for_people(harness: Harness) -> None:
    a, _ = two_backups(harness)
    code, out, _ = run(harness, "repo", "stats")
    assert code == 0
    assert "dedup ratio        1.57" in out
    assert a in out
