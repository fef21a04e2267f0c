"""`ashbox repo key add|list|remove` on a real store directory and database."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from pathlib import Path

import pytest

from ashbox.cli.main import main
from ashbox.db.engine import Database
from ashbox.records import ListQuery
from ashbox.statuses import BackupStatus
from tests.harness import Harness

DATA = b"ledger entry 12\n" * 20_000 + bytes(range(256)) * 400


def run(root: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--data-dir", str(root / "data")], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def key_file(root: Path, name: str, secret: bytes) -> str:
    path = root / name
    path.write_bytes(secret + b"\n")
    return str(path)


@pytest.fixture
def root(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory holding an encrypted container with one backup, made by
    a worker whose key file holds 'first passphrase'."""
    monkeypatch.setenv("ASHBOX_DATABASE_URL", db.url)
    for name in ("CONFIG", "STORE", "DEFAULT_CONTAINER", "KEY_FILE", "ENCRYPTION"):
        monkeypatch.delenv(f"ASHBOX_{name}", raising=False)
    first = key_file(tmp_path, "first.key", b"first passphrase")
    h = Harness(db, tmp_path, encryption="aes-256-gcm", key_file=first)
    h.backup(h.import_image("v.raw", DATA))
    return tmp_path


def slots(root: Path) -> list[dict[str, object]]:
    code, out, err = run(root, "repo", "key", "list", "-f", "json")
    assert code == 0, err
    listed: list[dict[str, object]] = json.loads(out)
    return listed


def restores_with(db: Database, root: Path, secret: bytes) -> BackupStatus:
    """Whether a worker keyed with `secret` restores the backup: the restore's state."""
    h = Harness(db, root, key_file=key_file(root, "worker.key", secret))
    (backup,) = h.service.list_backups(h.ctx, ListQuery(filters={}))[0]
    restored = h.service.restore_backup(h.ctx, backup.id)
    h.run_tasks()
    volume = h.service.get_volume(h.ctx, restored.volume_id)
    if volume.status == "available":
        data = Path(volume.path).read_bytes()
        assert hashlib.sha256(data).digest() == hashlib.sha256(DATA).digest()
    return BackupStatus(h.service.get_backup(h.ctx, backup.id).status)


def test_key_list_shows_the_one_slot_without_secrets(root: Path) -> None:
    (slot,) = slots(root)
    assert set(slot) == {"id", "created_at", "kdf", "memory_kib", "iterations", "lanes"}
    assert (slot["kdf"], slot["memory_kib"], slot["iterations"], slot["lanes"]) == (
        "argon2id",
        65536,
        3,
        4,
    )
    code, out, _ = run(root, "repo", "key", "list")
    assert code == 0 and str(slot["id"]) in out and "argon2id m=65536 KiB t=3 p=4" in out


def test_a_key_added_opens_the_repository_and_the_old_one_is_then_removed(
    db: Database, root: Path
) -> None:
    first = key_file(root, "first.key", b"first passphrase")
    second = key_file(root, "second.key", b"second passphrase")
    code, out, err = run(root, "repo", "key", "add", "--key-file", first, "--new-key-file", second)
    assert code == 0, err
    old, new = (str(s["id"]) for s in slots(root))
    assert f"added key slot {new}" in out
    code, out, err = run(root, "repo", "key", "remove", old, "--key-file", second)
    assert code == 0, err
    assert [s["id"] for s in slots(root)] == [new]
    assert restores_with(db, root, b"second passphrase") == BackupStatus.AVAILABLE


def test_the_last_key_cannot_be_removed(root: Path) -> None:
    (slot,) = slots(root)
    first = key_file(root, "first.key", b"first passphrase")
    code, _, err = run(root, "repo", "key", "remove", str(slot["id"]), "--key-file", first)
    assert code == 2
    assert "is the last key of repository volumebackups" in err
    assert len(slots(root)) == 1


def test_a_wrong_or_missing_key_changes_nothing(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = root / "data" / "store" / "volumebackups" / "config"
    before = config.read_bytes()
    wrong = key_file(root, "wrong.key", b"guess")
    code, _, err = run(root, "repo", "key", "add", "--key-file", wrong, "--new-key-file", wrong)
    assert code == 2 and "does not open repository volumebackups" in err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(root, "repo", "key", "add", "--new-key-file", wrong)
    assert code == 2 and "is encrypted: configure its key" in err
    code, _, err = run(root, "repo", "key", "remove", "nope", "--key-file", wrong)
    assert code != 0 and "has no key slot nope" in err
    assert config.read_bytes() == before


def test_the_key_file_setting_is_the_default_key(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASHBOX_KEY_FILE", key_file(root, "first.key", b"first passphrase"))
    new = key_file(root, "new.key", b"another")
    code, _, err = run(root, "repo", "key", "add", "--new-key-file", new)
    assert code == 0, err
    assert len(slots(root)) == 2


def test_an_unencrypted_or_missing_repository_says_so(root: Path) -> None:
    code, _, err = run(root, "repo", "key", "list", "--container", "nothing-here")
    assert code != 0 and "holds no repository" in err


def test_a_key_command_without_a_service_state_says_where_it_looked(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "repo", "key", "list")
    assert code == 3 and "No ashbox database at" in err
    assert not (tmp_path / "data").exists()


def test_two_keys_added_at_once_are_both_kept(root: Path) -> None:
    first = key_file(root, "first.key", b"first passphrase")
    new = [key_file(root, f"new{i}.key", f"passphrase {i}".encode()) for i in range(2)]
    start = threading.Barrier(2)
    codes: list[int] = []

    def add(new_key: str) -> None:
        start.wait()
        codes.append(
            run(root, "repo", "key", "add", "--key-file", first, "--new-key-file", new_key)[0]
        )

    threads = [threading.Thread(target=add, args=(k,)) for k in new]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [0, 0]
    assert len(slots(root)) == 3
