"""The worker and an encrypted container: its key comes from the settings' key file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ashbox.config import settings_from
from ashbox.db.engine import Database
from ashbox.errors import InvalidInput
from ashbox.statuses import BackupStatus, VolumeStatus
from tests.harness import Harness

DATA = b"payroll line 7\n" * 30_000 + bytes(100_000) + bytes(range(256)) * 500


def encrypted_harness(db: Database, root: Path, passphrase: bytes | None) -> Harness:
    key_file = ""
    if passphrase is not None:
        key_file = str(root / f"key-{hashlib.sha256(passphrase).hexdigest()[:8]}")
        Path(key_file).write_bytes(passphrase + b"\n")
    return Harness(db, root, encryption="aes-256-gcm", key_file=key_file)


def test_the_worker_backs_up_and_restores_an_encrypted_container(
    db: Database, tmp_path: Path
) -> None:
    h = encrypted_harness(db, tmp_path, b"service passphrase")
    bid = h.backup(h.import_image("v.raw", DATA))
    assert h.service.get_backup(h.ctx, bid).status == BackupStatus.AVAILABLE
    config = json.loads((tmp_path / "data" / "store" / "volumebackups" / "config").read_bytes())
    assert config["encryption"] == "aes-256-gcm"
    restored = h.service.restore_backup(h.ctx, bid)
    h.run_tasks()
    path = Path(h.service.get_volume(h.ctx, restored.volume_id).path)
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(DATA).digest()
    files = (tmp_path / "data" / "store").rglob("*")
    stored = b"".join(p.read_bytes() for p in files if p.is_file())
    assert b"payroll" not in stored


@pytest.mark.parametrize(
    ("passphrase", "reason"),
    [
        (None, "Repository volumebackups is encrypted: configure its key"),
        (b"not the passphrase", "The key given does not open repository volumebackups."),
    ],
)
def test_a_worker_without_the_right_key_fails_the_backup_with_a_clear_reason(
    db: Database, tmp_path: Path, passphrase: bytes | None, reason: str
) -> None:
    first = encrypted_harness(db, tmp_path, b"service passphrase")
    vid = first.import_image("v.raw", DATA)
    first.backup(vid)
    h = encrypted_harness(db, tmp_path, passphrase)
    backup = h.service.create_backup(h.ctx, volume_id=vid, name="second")
    h.run_tasks()
    failed = h.service.get_backup(h.ctx, backup.id)
    assert failed.status == BackupStatus.ERROR
    assert (failed.fail_reason or "").startswith(reason)
    assert h.service.get_volume(h.ctx, vid).status == VolumeStatus.AVAILABLE


def test_the_settings_refuse_an_unknown_encryption_or_one_without_a_key_file() -> None:
    assert settings_from({"encryption": "aes-256-gcm", "key_file": "/k"}).key_file == "/k"
    with pytest.raises(InvalidInput, match="encryption: 'rot13'"):
        settings_from({"encryption": "rot13"})
    with pytest.raises(InvalidInput, match="needs key_file"):
        settings_from({"encryption": "aes-256-gcm"})
