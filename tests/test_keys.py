"""Encrypted volumes' keys (CINDER-CONTRACT §3.9): the embedded key manager,
castellan's through its own test key manager, and the key of each backup,
restored volume and imported copy."""

from __future__ import annotations

import base64
import json
import os
import stat
import uuid
from pathlib import Path

import pytest
from castellan.common.credentials import token
from castellan.tests.unit.key_manager.mock_key_manager import MockKeyManager
from sqlalchemy import delete, select, update

from ashbox.db.engine import Database
from ashbox.db.models import EncryptionKey, Volume, VolumeType, VolumeTypeEncryption
from ashbox.errors import InvalidInput, KeyManagerError
from ashbox.keymgr.barbican import BarbicanKeyManager
from ashbox.keymgr.embedded import EmbeddedKeyManager
from ashbox.records import ListQuery
from ashbox.statuses import BackupStatus
from tests.harness import Harness

DATA = os.urandom(256 * 1024)


def test_embedded_keys_are_made_cloned_and_deleted(db: Database, tmp_path: Path) -> None:
    master = tmp_path / "conf" / "master.key"
    keys = EmbeddedKeyManager(db, master)
    key_id = keys.create_key()
    assert stat.S_IMODE(master.stat().st_mode) == 0o600 and len(master.read_bytes()) == 32
    key = keys.key_bytes(key_id)
    clone = keys.clone(key_id)
    assert clone != key_id and keys.key_bytes(clone) == key and len(key) == 32
    with db.reading() as s:
        wrapped = s.scalars(select(EncryptionKey.wrapped)).all()
    assert len(wrapped) == 2 and all(key not in w for w in wrapped)  # never stored bare
    keys.delete(key_id)
    keys.delete(key_id)  # already gone: not an error
    with pytest.raises(KeyManagerError, match=f"Key {key_id} could not be found"):
        keys.key_bytes(key_id)
    assert keys.key_bytes(clone) == key


def test_a_wrong_or_short_master_key_opens_nothing(db: Database, tmp_path: Path) -> None:
    key_id = EmbeddedKeyManager(db, tmp_path / "a.key").create_key()
    other = tmp_path / "b.key"
    other.write_bytes(os.urandom(32))
    with pytest.raises(KeyManagerError, match="does not open with the master key"):
        EmbeddedKeyManager(db, other).key_bytes(key_id)
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 16)
    with pytest.raises(KeyManagerError, match="holds 16 bytes, not 32"):
        EmbeddedKeyManager(db, short).create_key()


def _castellan() -> BarbicanKeyManager:
    return BarbicanKeyManager(MockKeyManager(), token.Token("a-token"))


def test_castellan_keys_are_made_cloned_and_deleted() -> None:
    keys = _castellan()
    key_id = keys.create_key()
    clone = keys.clone(key_id)
    assert clone != key_id and keys.key_bytes(clone) == keys.key_bytes(key_id)
    assert len(keys.key_bytes(key_id)) == 32
    keys.delete(key_id)
    keys.delete(key_id)  # already gone: not an error
    with pytest.raises(KeyManagerError):
        keys.clone(key_id)


def test_castellan_is_configured_with_its_own_options() -> None:
    keys = BarbicanKeyManager.of(
        {
            "barbican.barbican_endpoint": "https://barbican.example:9311",
            "key_manager.auth_type": "keystone_password",
            "key_manager.auth_url": "https://keystone.example:5000/v3",
            "key_manager.username": "ashbox",
            "key_manager.password": "secret",
            "key_manager.project_name": "service",
        }
    )
    assert keys is not None  # made without reaching either server
    with pytest.raises(KeyManagerError, match="Bad key_manager_options"):
        BarbicanKeyManager.of({"key_manager.auth_type": "nonsense"})


def _encrypted_volume(h: Harness, name: str) -> tuple[str, str]:
    """An encrypted volume, as a volume type with encryption would make it: its key."""
    volume_id = h.import_image(name, DATA)
    key_id = h.worker.keys.create_key()
    with h.db.transaction() as s:
        s.execute(update(Volume).where(Volume.id == volume_id).values(encryption_key_id=key_id))
    return volume_id, key_id


def _volume_key(h: Harness, volume_id: str) -> str | None:
    with h.db.reading() as s:
        return s.scalar(select(Volume.encryption_key_id).where(Volume.id == volume_id))


def _backup_key(h: Harness, backup_id: str) -> str | None:
    return h.service.get_backup(h.ctx, backup_id).encryption_key_id


def test_each_backup_restore_and_copy_holds_a_clone_of_its_own(harness: Harness) -> None:
    keys = harness.worker.keys
    volume_id, volume_key = _encrypted_volume(harness, "v.raw")
    full = harness.backup(volume_id)
    incremental = harness.backup(volume_id, incremental=True)
    full_key, incremental_key = _backup_key(harness, full), _backup_key(harness, incremental)
    assert len({volume_key, full_key, incremental_key}) == 3
    assert full_key is not None and incremental_key is not None
    assert keys.key_bytes(full_key) == keys.key_bytes(incremental_key) == keys.key_bytes(volume_key)

    restored = harness.service.restore_backup(harness.ctx, full)
    harness.run_tasks()
    new_key = _volume_key(harness, restored.volume_id)
    assert new_key not in (None, full_key, volume_key)
    assert new_key is not None and keys.key_bytes(new_key) == keys.key_bytes(full_key)

    # Into a volume that has a key: a fresh clone replaces it, and the old one goes.
    target, target_key = _encrypted_volume(harness, "t.raw")
    harness.service.restore_backup(harness.ctx, full, volume_id=target)
    harness.run_tasks()
    replaced = _volume_key(harness, target)
    assert replaced not in (None, target_key, full_key)
    with pytest.raises(KeyManagerError):
        keys.key_bytes(target_key)

    # An imported copy holds its own clone: deleting the original leaves it.
    service, url = harness.service.export_record(harness.ctx, full)
    fields = json.loads(base64.b64decode(url))
    assert fields["encryption_key_id"] == full_key
    fields["id"] = str(uuid.uuid4())
    copy_url = base64.b64encode(json.dumps(fields).encode()).decode()
    copy = harness.service.import_record(harness.ctx, service, copy_url).id
    harness.run_tasks()
    copy_key = _backup_key(harness, copy)
    assert copy_key not in (None, full_key)

    harness.service.delete_backup(harness.ctx, incremental)
    harness.run_tasks()
    with pytest.raises(KeyManagerError):
        keys.key_bytes(incremental_key)
    assert copy_key is not None and keys.key_bytes(copy_key) == keys.key_bytes(volume_key)


def test_a_plain_volume_s_backups_hold_no_key(harness: Harness) -> None:
    volume_id = harness.import_image("v.raw", DATA)
    backup = harness.backup(volume_id)
    assert _backup_key(harness, backup) is None
    restored = harness.service.restore_backup(harness.ctx, backup)
    harness.run_tasks()
    assert _volume_key(harness, restored.volume_id) is None
    with harness.db.reading() as s:
        assert s.scalars(select(EncryptionKey.id)).all() == []


def test_a_key_that_cannot_be_cloned_fails_the_backup(harness: Harness) -> None:
    volume_id, volume_key = _encrypted_volume(harness, "v.raw")
    harness.worker.keys.delete(volume_key)
    backup = harness.service.create_backup(harness.ctx, volume_id=volume_id)
    harness.run_tasks()
    failed = harness.service.get_backup(harness.ctx, backup.id)
    assert failed.status == BackupStatus.ERROR
    assert failed.fail_reason == f"Key {volume_key} could not be found."


def test_castellan_s_options_come_from_a_table_of_tables(tmp_path: Path) -> None:
    from ashbox.config import load_settings

    config = tmp_path / "ashbox.toml"
    config.write_text(
        'key_manager = "barbican"\n'
        "[key_manager_options.barbican]\n"
        'barbican_endpoint = "https://barbican.example:9311"\n'
        "[key_manager_options.key_manager]\n"
        'auth_type = "keystone_token"\n'
        'token = "a-token"\n'
    )
    settings = load_settings(config, environ={})
    assert settings.key_manager_options == {
        "barbican.barbican_endpoint": "https://barbican.example:9311",
        "key_manager.auth_type": "keystone_token",
        "key_manager.token": "a-token",
    }
    assert BarbicanKeyManager.of(settings.key_manager_options) is not None
    from_env = load_settings(
        None, {"ASHBOX_KEY_MANAGER_OPTIONS": '{"key_manager": {"auth_type": "keystone_token"}}'}
    )
    assert from_env.key_manager_options == {"key_manager.auth_type": "keystone_token"}


def _encrypted_type(h: Harness) -> str:
    made = h.service.create_volume_type(h.ctx, name=f"luks-{uuid.uuid4().hex[:8]}")
    fields = {"provider": "luks", "control_location": "front-end", "key_size": 256}
    h.service.create_volume_type_encryption(h.ctx, made.id, fields)
    return made.id


def _restore_onto(h: Harness, backup_id: str, volume_id: str) -> None:
    h.service.restore_backup(h.ctx, backup_id, volume_id=volume_id)
    h.run_tasks()


def test_an_encrypted_backup_restores_only_onto_its_source_s_type(harness: Harness) -> None:
    """§3.9: a volume of an encrypted type has a key from its start; its backup
    goes onto a new volume (of the source's type), a volume of that type, or a
    volume with no type (which takes it), and onto no other."""
    h, encrypted = harness, _encrypted_type(harness)
    source = h.service.create_volume(h.ctx, size=1, name="enc", volume_type=encrypted)
    h.run_tasks()
    assert _volume_key(h, source.id) is not None
    with Path(source.path).open("r+b") as f:
        f.write(DATA)
    backup = h.backup(source.id)

    restored = h.service.restore_backup(h.ctx, backup)
    h.run_tasks()
    new = h.service.get_volume(h.ctx, restored.volume_id)
    assert (new.status, new.volume_type_id) == ("available", encrypted)
    assert new.encryption_key_id is not None
    assert Path(new.path).read_bytes()[: len(DATA)] == DATA

    plain = h.create_volume("plain")  # the default type
    _restore_onto(h, backup, plain)
    assert h.service.get_volume(h.ctx, plain).status == "error_restoring"
    failed = h.service.get_backup(h.ctx, backup)
    assert failed.status == BackupStatus.AVAILABLE
    assert failed.fail_reason is not None
    assert "is different than the destination volume type" in failed.fail_reason
    assert not Path(h.service.get_volume(h.ctx, plain).path).read_bytes().strip(b"\0")
    messages = h.service.list_messages(h.ctx, ListQuery(limit=100))
    assert any(m.event_id == "VOLUME_VOLUME_BACKUP_015_026" for m in messages)

    untyped = h.create_volume("untyped")
    with h.db.transaction() as s:  # as a volume from before volume types
        s.execute(update(Volume).where(Volume.id == untyped).values(volume_type_id=None))
    _restore_onto(h, backup, untyped)
    took = h.service.get_volume(h.ctx, untyped)
    assert (took.status, took.volume_type_id) == ("available", encrypted)

    gone = h.create_volume("gone")
    with h.db.transaction() as s:  # the source type deleted behind ashbox's back
        s.execute(update(Volume).where(Volume.id == gone).values(volume_type_id=None))
        s.execute(
            delete(VolumeTypeEncryption).where(VolumeTypeEncryption.volume_type_id == encrypted)
        )
        s.execute(delete(VolumeType).where(VolumeType.id == encrypted))
    _restore_onto(h, backup, gone)
    assert h.service.get_volume(h.ctx, gone).status == "error_restoring"
    reason = h.service.get_backup(h.ctx, backup).fail_reason
    assert reason is not None and f"The source volume type '{encrypted}' is not available" in reason


def test_a_volume_of_an_encrypted_type_is_not_managed(harness: Harness) -> None:
    encrypted = _encrypted_type(harness)
    path = harness.image("m.raw", DATA)
    with pytest.raises(InvalidInput, match="is encrypted"):
        harness.service.import_volume(harness.ctx, path=str(path), volume_type=encrypted)
