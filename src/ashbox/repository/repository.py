"""The repository facade: back up, restore and delete backups of one container.

This is the whole API the manager uses. A container is one repository
(DESIGN.md §3): its config, packs and manifests live under `<container>/`
in the store, its index in an `Index`. The format is docs/format.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ashbox import faults
from ashbox.errors import (
    BackupNotFound,
    CorruptData,
    CorruptManifest,
    InvalidBackup,
    InvalidInput,
    ObjectNotFound,
)
from ashbox.repository.blob import BlobCodec
from ashbox.repository.config import ENCRYPTION_NONE, RepositoryConfig, load_or_create_config
from ashbox.repository.crypto import KdfParams, RepositoryKeys, open_manifest, seal_manifest
from ashbox.repository.index import ABANDONED, Index
from ashbox.repository.keys import unlock
from ashbox.repository.manifest import Manifest, manifest_key
from ashbox.repository.pack import pack_key
from ashbox.repository.reader import ReaderSettings, restore_backup, verify_backup
from ashbox.repository.record import decode_record, encode_record, record_key
from ashbox.repository.writer import BackupStats, WriterSettings, write_backup
from ashbox.storage.base import Store

log = logging.getLogger(__name__)

__all__ = ["BackupStats", "Repository"]


def _no_progress(done: int, total: int) -> None:
    """The default progress callback: ignores progress."""


class Repository:
    """One container of a store, with its index. Build it with `open`."""

    def __init__(
        self,
        store: Store,
        container: str,
        index: Index,
        config: RepositoryConfig,
        *,
        pack_size: int,
        compression_level: int,
        threads: int,
        upload_threads: int,
        keys: RepositoryKeys | None = None,
        gc_grace_seconds: float = 0.0,
    ) -> None:
        if pack_size < config.block_size or threads < 1 or upload_threads < 1:
            raise InvalidInput(
                f"Pack size {pack_size} must hold a block of {config.block_size} bytes, "
                f"and threads ({threads}) and upload threads ({upload_threads}) must be >= 1."
            )
        if not -7 <= compression_level <= 22:
            raise InvalidInput(f"Compression level {compression_level} is outside -7..22.")
        if gc_grace_seconds < 0:
            raise InvalidInput(f"The gc grace period {gc_grace_seconds} s is negative.")
        self.store = store
        self.container = container
        self.index = index
        self.config = config
        self.pack_size = pack_size
        self.threads = threads
        self.upload_threads = upload_threads
        self.gc_grace_seconds = gc_grace_seconds
        self.codec = BlobCodec(compression_level, keys)

    @classmethod
    def open(
        cls,
        store: Store,
        container: str,
        index: Index,
        *,
        block_size: int = 1 << 20,
        pack_size: int = 16 << 20,
        compression_level: int = 3,
        threads: int = 2,
        upload_threads: int = 2,
        encryption: str = ENCRYPTION_NONE,
        secret: bytes | None = None,
        kdf: KdfParams | None = None,
        gc_grace_seconds: float = 0.0,
    ) -> Repository:
        """The repository in `container`, its config created (with `block_size`
        and `encryption`) if missing; an existing config wins. An encrypted
        repository is unlocked with `secret` (a passphrase or key file's bytes;
        KeyRequired without one, WrongKey if it opens no key slot); an
        unencrypted one ignores it. `kdf` is the cost of a new key slot."""
        _check_name("container", container, allow_slash=True)
        config = load_or_create_config(
            store, container, block_size=block_size, encryption=encryption, secret=secret, kdf=kdf
        )
        keys = unlock(config, secret, container)
        index.ensure_container(container)
        return cls(
            store,
            container,
            index,
            config,
            pack_size=pack_size,
            compression_level=compression_level,
            threads=threads,
            upload_threads=upload_threads,
            keys=keys,
            gc_grace_seconds=gc_grace_seconds,
        )

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def backup(
        self,
        backup_id: str,
        source: Path,
        *,
        parent_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        progress: Callable[[int, int], None] = _no_progress,
        fenced: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> BackupStats:
        """Back up the volume at `source` as `backup_id`. Idempotent: a rerun after
        a crash discards the crash's pending packs and reuses its committed blobs.
        `progress(done, total)` may raise to stop the backup; the exception propagates.
        `fenced()` guards the final writes (references, manifest): see write_backup."""
        _check_name("backup id", backup_id)
        log.info("backup started backup_id=%s container=%s", backup_id, self.container)
        self.discard_incomplete(backup_id)
        settings = WriterSettings(
            store=self.store,
            container=self.container,
            index=self.index,
            codec=self.codec,
            block_size=self.block_size,
            pack_size=self.pack_size,
            threads=self.threads,
            upload_threads=self.upload_threads,
        )
        return write_backup(
            settings,
            backup_id,
            source,
            parent_id=parent_id,
            metadata=metadata or {},
            progress=progress,
            parent=self._parent_manifest(parent_id),
            fenced=fenced,
        )

    def restore(
        self,
        backup_id: str,
        target: Path,
        *,
        new_volume: bool,
        progress: Callable[[int, int], None] = _no_progress,
        manifest: Manifest | None = None,
    ) -> None:
        """Restore `backup_id` onto `target` (at least the backup's size). On a
        `new_volume` (fresh sparse file) holes are skipped, else zeroed. A caller
        that read the backup's `manifest` already passes it, not to read it twice."""
        if manifest is None or manifest.backup_id != backup_id:
            manifest = self.read_manifest(backup_id)
        log.info("restore started backup_id=%s target=%s", backup_id, target)
        restore_backup(
            self._reader_settings(), manifest, target, new_volume=new_volume, progress=progress
        )

    def verify(
        self, backup_id: str, *, progress: Callable[[int, int], None] = _no_progress
    ) -> None:
        """Read and check every blob `backup_id` needs without writing anywhere;
        CorruptData names the backup, block offset and pack of the first damage."""
        manifest = self.read_manifest(backup_id)
        verify_backup(self._reader_settings(), manifest, progress=progress)

    def delete(self, backup_id: str) -> None:
        """Drop the backup's references, delete the packs dead for longer than
        the grace period (with a grace of 0, those this delete killed too),
        then its manifest. Idempotent."""
        _check_name("backup id", backup_id)
        self.discard_incomplete(backup_id)
        dead = self.index.release(self.container, backup_id)
        faults.point("delete.refs_released")
        deleted = self.delete_dead_packs()
        self.store.delete(manifest_key(self.container, backup_id))
        self.store.delete(record_key(self.container, backup_id))
        log.info(
            "backup deleted backup_id=%s dead_packs=%d deleted_packs=%d",
            backup_id,
            len(dead),
            len(deleted),
        )

    def delete_dead_packs(self) -> list[str]:
        """Delete from the store, then forget, the packs dead for longer than the
        grace period; delete the objects of those abandoned for longer and bury
        them, to be deleted once more before they are forgotten (ashbox.repository.index).
        Return both."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.gc_grace_seconds)
        packs = self.index.dead_packs(self.container, dead_before=cutoff)
        abandoned = self.index.dead_packs(self.container, dead_before=cutoff, state=ABANDONED)
        self._delete_packs(packs)
        for pack_id in abandoned:
            self.store.delete(pack_key(self.container, pack_id))
        self.index.bury(self.container, abandoned)
        return packs + abandoned

    def _delete_packs(self, packs: list[str]) -> None:
        """Delete dead packs from the store, then forget them."""
        for pack_id in packs:
            self.store.delete(pack_key(self.container, pack_id))
        if packs:
            faults.point("gc.packs_deleted")
            self.index.forget_packs(self.container, packs)

    def discard_incomplete(self, backup_id: str) -> None:
        """Abandon the packs `backup_id` began and never committed (a crash's, or
        a late run's that lost the task): they die, and are deleted once the
        grace period has passed (at once with no grace), by when a late run's
        upload has ended."""
        abandoned = self.index.abandon_packs(
            self.container, self.index.pending_packs(self.container, backup_id)
        )
        if abandoned:
            log.info("pending packs abandoned backup_id=%s packs=%d", backup_id, len(abandoned))
        if self.gc_grace_seconds <= 0:
            self._delete_packs(abandoned)

    def read_manifest(self, backup_id: str) -> Manifest:
        """The manifest of `backup_id`; BackupNotFound if the container has none."""
        _check_name("backup id", backup_id)
        try:
            data = self.store.get(manifest_key(self.container, backup_id))
        except ObjectNotFound as e:
            raise BackupNotFound(backup_id) from e
        if self.codec.cipher is not None:
            data = open_manifest(data, backup_id, self.codec.cipher)
        manifest = Manifest.decode(data)
        if manifest.backup_id != backup_id:
            raise CorruptManifest(
                f"Manifest stored for backup {backup_id} describes backup {manifest.backup_id}."
            )
        return manifest

    def put_record(self, fields: dict[str, object]) -> None:
        """Store the record of backup `fields["id"]` (docs/format.md, "Backup record")."""
        backup_id = str(fields["id"])
        _check_name("backup id", backup_id)
        self.store.put(
            record_key(self.container, backup_id), encode_record(fields, self.codec.cipher)
        )

    def read_record(self, backup_id: str) -> dict[str, object]:
        """The stored record of `backup_id`; ObjectNotFound, CorruptRecord."""
        _check_name("backup id", backup_id)
        data = self.store.get(record_key(self.container, backup_id))
        return decode_record(data, backup_id, self.codec.cipher)

    def record_ids(self) -> list[str]:
        """Ids of the backups whose records are in the store, sorted."""
        prefix = record_key(self.container, "")
        return sorted(
            k[len(prefix) :] for k in self.store.list(prefix) if "/" not in k[len(prefix) :]
        )

    def copy_manifest(self, source_id: str, backup_id: str) -> Manifest:
        """Store the manifest of `source_id` again as `backup_id`'s (an imported
        record under a new id), and take `backup_id`'s references on its blobs."""
        manifest = replace(self.read_manifest(source_id), backup_id=backup_id)
        self.reference(backup_id, manifest)
        encoded = manifest.encode()
        if self.codec.cipher is not None:
            encoded = seal_manifest(encoded, backup_id, self.codec.cipher)
        self.store.put(manifest_key(self.container, backup_id), encoded)
        return manifest

    def reference(self, backup_id: str, manifest: Manifest) -> None:
        """Take `backup_id`'s references on every blob `manifest` needs (bases
        included); CorruptData naming how many the index lacks."""
        ids = sorted(manifest.blob_ids())
        found = self.index.reuse(self.container, backup_id, ids)
        if len(found) < len(ids):
            raise CorruptData(
                f"{len(ids) - len(found)} blobs of backup {backup_id} are in no live pack of "
                f"container {self.container}."
            )

    def incomplete(self, backup_id: str) -> str | None:
        """Why `backup_id` cannot be restored from this repository without reading
        its data (no manifest, an unreadable one, blobs the index lacks); None if
        nothing is missing. `verify` reads the data too."""
        try:
            manifest = self.read_manifest(backup_id)
        except BackupNotFound:
            return f"backup {backup_id} has no manifest in container {self.container}"
        except (CorruptData, InvalidBackup) as e:
            return f"the manifest of backup {backup_id} is unreadable: {e}"
        ids = sorted(manifest.blob_ids())
        missing = len(ids) - len(self.index.locate(self.container, ids))
        if missing:
            return f"{missing} blobs of backup {backup_id} are in no pack of the index"
        return None

    def _parent_manifest(self, parent_id: str | None) -> Manifest | None:
        """The manifest a backup's deltas are taken against: its parent's, if
        the container holds a readable one."""
        if parent_id is None:
            return None
        try:
            return self.read_manifest(parent_id)
        except (BackupNotFound, CorruptData, InvalidBackup) as e:
            log.warning("parent manifest unusable parent_id=%s: %s", parent_id, e)
            return None

    def _reader_settings(self) -> ReaderSettings:
        return ReaderSettings(
            store=self.store,
            container=self.container,
            index=self.index,
            codec=self.codec,
            threads=self.threads + self.upload_threads,
        )


def _check_name(what: str, name: str, *, allow_slash: bool = False) -> None:
    parts = name.split("/") if allow_slash else [name]
    if not name or any(not p or p.startswith(".") or "/" in p or "\0" in p for p in parts):
        raise InvalidBackup(f"{what} {name!r} cannot name objects in the store")
