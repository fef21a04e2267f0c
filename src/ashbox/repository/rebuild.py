"""Rebuilding the index from the store alone: `ashbox repo rebuild-index`.

docs/format.md, "Reclaiming space and checking". The store is
self-describing: every pack's trailer lists its blobs (id, place, sizes,
flags, base), and every manifest the blobs its backup needs. The index's
live and dead packs, blobs and references are replaced in one transaction
by what the trailers and manifests say; pending packs (a backup uploading
now) are kept as they are, and so are the references of backups that have
no manifest yet (a backup running now). A pack no manifest needs is marked
dead and goes after the grace period.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from ashbox.errors import BackupNotFound, CorruptData, ObjectNotFound
from ashbox.repository.index import PENDING, PackContents
from ashbox.repository.pack import FOOTER_SIZE, decode_trailer, trailer_length
from ashbox.repository.repository import Repository
from ashbox.repository.stats import manifest_ids

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RebuildReport:
    container: str
    packs: int
    blobs: int
    backups: int
    unreadable_packs: tuple[str, ...]  # skipped: their blobs are not indexed
    unreadable_manifests: tuple[str, ...]  # skipped: their backups reference nothing


def rebuild_index(repo: Repository, *, backup_ids: Collection[str] | None = None) -> RebuildReport:
    """Rebuild the index of `repo` from its packs and manifests. With
    `backup_ids`, only those backups' manifests give references (the backups
    the database knows); otherwise every manifest in the store does. One
    pack's trailer and one manifest's ids are held at a time."""
    container = repo.container
    pending = {p.pack_id for p in repo.index.packs(container) if p.state == PENDING}
    packs_read: list[str] = []
    unreadable_packs: list[str] = []
    stored = set(manifest_ids(repo))
    backups_read: list[str] = []
    unreadable_manifests: list[str] = []

    def packs() -> Iterator[PackContents]:
        prefix = f"{container}/data/"
        for key in repo.store.list(prefix):
            pack_id = key.rsplit("/", 1)[-1]
            if pack_id in pending or key != f"{prefix}{pack_id[:2]}/{pack_id}":
                continue
            try:
                contents = _read_pack(repo, key, pack_id)
            except (CorruptData, ObjectNotFound) as e:
                log.warning("pack unreadable, not indexed pack_id=%s: %s", pack_id, e.message)
                unreadable_packs.append(pack_id)
                continue
            packs_read.append(pack_id)
            yield contents

    def references() -> Iterator[tuple[str, set[bytes]]]:
        for backup_id in sorted(stored):
            if backup_ids is not None and backup_id not in backup_ids:
                continue
            try:
                blob_ids = repo.read_manifest(backup_id).blob_ids()
            except BackupNotFound:
                continue  # deleted since the listing: it references nothing
            except CorruptData as e:
                log.warning("manifest unreadable backup_id=%s: %s", backup_id, e.message)
                unreadable_manifests.append(backup_id)
                continue
            backups_read.append(backup_id)
            yield backup_id, blob_ids

    def running(backup_id: str) -> bool:
        """A backup with references and no manifest is being written: keep them."""
        return backup_id not in stored and (backup_ids is None or backup_id in backup_ids)

    blobs = repo.index.rebuild(container, packs(), references(), running)
    report = RebuildReport(
        container=container,
        packs=len(packs_read),
        blobs=blobs,
        backups=len(backups_read),
        unreadable_packs=tuple(unreadable_packs),
        unreadable_manifests=tuple(unreadable_manifests),
    )
    log.info(
        "index rebuilt container=%s packs=%d blobs=%d backups=%d unreadable=%d",
        container,
        report.packs,
        report.blobs,
        report.backups,
        len(unreadable_packs) + len(unreadable_manifests),
    )
    return report


def _read_pack(repo: Repository, key: str, pack_id: str) -> PackContents:
    size = repo.store.size(key)
    footer = repo.store.get(key, max(0, size - FOOTER_SIZE), FOOTER_SIZE)
    length = trailer_length(footer)
    tail = repo.store.get(key, max(0, size - length), length)
    entries = decode_trailer(tail, size, repo.codec.cipher)
    return PackContents(pack_id, size, [e.location(pack_id) for e in entries])
