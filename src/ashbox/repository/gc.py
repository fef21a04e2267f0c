"""Reclaiming space: `ashbox repo gc`, and the worker's schedule.

docs/format.md, "Reclaiming space and checking". One run:

0. *abandon*: pending packs whose writer is gone are marked dead;
1. *sweep*: live packs left with no referenced blob are marked dead;
2. *repack*: live packs holding dead bytes (unreferenced or duplicate blobs)
   whose referenced blobs fill less than `repack_live_fraction` of their bytes
   are rewritten: `begin_repack` drops
   their unreferenced blobs from the index (under the container lock, so no
   backup can reuse them from then on) and returns the referenced ones; these
   are copied, byte for byte as stored, into new packs (pending → upload →
   `commit_repack`), which points the blobs at the new packs and marks dead the
   old packs left with no referenced blob. A backup that reused one of them
   meanwhile holds a reference, so its blob is moved, never dropped;
3. *delete*: packs dead for longer than the grace period are deleted from the
   store, then forgotten.

A page delta is copied as stored, with its base id; its base is referenced by
every backup that references the delta, so it is live and moves too.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ashbox.errors import CorruptData, ObjectNotFound
from ashbox.repository.blob import FLAG_DELTA
from ashbox.repository.crypto import OVERHEAD
from ashbox.repository.index import BlobLocation
from ashbox.repository.pack import (
    ENTRY_SIZE,
    FOOTER_SIZE,
    HEADER,
    HEADER_SIZE,
    PackEntry,
    SealedPack,
    begin_upload,
    encode_trailer,
    pack_id_of,
    pack_key,
)
from ashbox.repository.repository import Repository

log = logging.getLogger(__name__)

# A repack writes one pack in seconds; a pending one older than this lost its collector.
ABANDONED_AFTER = timedelta(hours=1)
_OWNER_PREFIX = "gc-"

# Which of the given backup ids may still write packs (are being created).
Writing = Callable[[set[str]], set[str]]


@dataclass(frozen=True, slots=True)
class GcReport:
    container: str
    swept_packs: int  # live packs found with no referenced blob, now dead
    repacked_packs: int  # mostly dead packs whose live blobs were copied, now dead
    new_packs: int
    copied_size: int  # bytes of blobs copied into new packs
    abandoned_packs: int  # pending packs whose writer is gone, now dead
    deleted_packs: int  # dead packs deleted from the store
    freed_size: int  # their bytes
    skipped_packs: tuple[str, ...] = ()  # unreadable or corrupt: left for `repo check`


def collect_garbage(
    repo: Repository,
    *,
    repack_live_fraction: float = 0.5,
    writing: Writing | None = None,
    sole: bool = False,
) -> GcReport:
    """Abandon orphans, sweep, repack and delete (module docstring); safe beside
    running backups, deletes, restores and other collectors of the same
    container. `writing` tells which of the given backups may still write
    packs (those being created); without it no backup's pack is abandoned.
    `sole`: no other collector runs (the caller holds the gc lock)."""
    container = repo.container
    abandoned = _abandon_orphans(repo, writing, sole)
    swept = repo.index.sweep(container)
    overhead = HEADER_SIZE + FOOTER_SIZE + (OVERHEAD if repo.codec.cipher is not None else 0)
    candidates = [
        u.pack_id
        for u in repo.index.pack_usage(container)
        # Dead bytes: unreferenced blobs, and entries not indexed (duplicates).
        if u.live_bytes < u.size - overhead - u.blobs * ENTRY_SIZE
        and u.live_bytes < repack_live_fraction * u.size
    ]
    repack = _Repack(repo)
    if candidates:
        for pack_id, blobs in sorted(repo.index.begin_repack(container, candidates).items()):
            repack.copy(pack_id, blobs)
        repack.flush()
    sizes = {p.pack_id: p.size for p in repo.index.packs(container)}
    deleted = repo.delete_dead_packs()
    report = GcReport(
        container=container,
        swept_packs=len(swept),
        repacked_packs=repack.retired,
        new_packs=repack.new_packs,
        copied_size=repack.copied,
        abandoned_packs=len(abandoned),
        deleted_packs=len(deleted),
        freed_size=sum(sizes.get(p, 0) for p in deleted),
        skipped_packs=tuple(repack.skipped),
    )
    log.info(
        "gc done container=%s abandoned=%d swept=%d repacked=%d new=%d copied=%d "
        "deleted=%d freed=%d",
        container,
        report.abandoned_packs,
        report.swept_packs,
        report.repacked_packs,
        report.new_packs,
        report.copied_size,
        report.deleted_packs,
        report.freed_size,
    )
    return report


def _abandon_orphans(repo: Repository, writing: Writing | None, sole: bool) -> list[str]:
    """Abandon the pending packs whose writer is gone: another collector's (if
    this one is the `sole` collector running, all of them; else those begun
    longer ago than any repack takes), and a backup's that `writing` does not
    name (a crash's, or a late run's that lost its task). Only pending packs
    read before `writing` is asked: the backups it leaves out had ended by
    then, and a backup that ended never writes again."""
    begun_before = datetime.now(UTC) - ABANDONED_AFTER
    pending = repo.index.pending(repo.container)
    collectors = [p for p in pending if p.owner.startswith(_OWNER_PREFIX)]
    orphans = [p.pack_id for p in collectors if sole or p.begun_at < begun_before]
    if writing is not None:
        owners = {p.owner for p in pending} - {p.owner for p in collectors}
        alive = writing(owners) if owners else set()
        orphans += [p.pack_id for p in pending if p.owner in owners - alive]
    abandoned = repo.index.abandon_packs(repo.container, orphans)
    if abandoned:
        log.info("orphan packs abandoned container=%s packs=%d", repo.container, len(abandoned))
    return abandoned


class _Repack:
    """Copies live blobs into new packs of about the repository's pack size."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.owner = _OWNER_PREFIX + uuid.uuid4().hex  # a pending pack's owner, like a backup id
        self.retired = 0
        self.new_packs = 0
        self.copied = 0
        self.skipped: list[str] = []
        self._data = bytearray(HEADER)
        self._entries: list[PackEntry] = []
        self._sources: set[str] = set()

    def copy(self, pack_id: str, blobs: list[BlobLocation]) -> None:
        """Append the live blobs of old pack `pack_id` (verified) to new packs."""
        repo = self.repo
        try:
            data = repo.store.get(pack_key(repo.container, pack_id))
            payloads = [self._payload(pack_id, data, loc) for loc in blobs]
        except (CorruptData, ObjectNotFound) as e:
            log.error("pack not repacked pack_id=%s: %s", pack_id, e.message)
            self.skipped.append(pack_id)
            return
        for loc, payload in zip(blobs, payloads, strict=True):
            if self._entries and len(self._data) + len(payload) > repo.pack_size:
                self.flush()
            self._entries.append(
                PackEntry(
                    blob_id=loc.blob_id,
                    offset=len(self._data),
                    length=loc.length,
                    raw_length=loc.raw_length,
                    flags=loc.flags,
                    base_id=loc.base_id,
                )
            )
            self._data += payload
            self._sources.add(pack_id)
            self.copied += loc.length

    def flush(self) -> None:
        """Upload and commit the new pack being filled, if it holds anything."""
        if not self._entries:
            return
        repo = self.repo
        data = self._data + encode_trailer(self._entries, repo.codec.cipher)
        sealed = SealedPack(pack_id_of(data), memoryview(data), tuple(self._entries))
        sealed = begin_upload(repo.index, repo.container, sealed, self.owner, repo.codec)
        pack_id = sealed.pack_id
        repo.store.put(pack_key(repo.container, pack_id), sealed.data)
        retired = repo.index.commit_repack(
            repo.container,
            pack_id,
            len(sealed.data),
            [e.location(pack_id) for e in sealed.entries],
            sorted(self._sources),
        )
        log.debug(
            "pack repacked pack_id=%s blobs=%d from=%d retired=%d",
            pack_id,
            len(sealed.entries),
            len(self._sources),
            len(retired),
        )
        self.retired += len(retired)
        self.new_packs += 1
        self._data = bytearray(HEADER)
        self._entries = []
        self._sources = set()

    def _payload(self, pack_id: str, data: bytes, loc: BlobLocation) -> bytes:
        payload = data[loc.offset : loc.offset + loc.length]
        if len(payload) != loc.length:
            raise CorruptData(f"Blob {loc.blob_id.hex()} is cut short by pack {pack_id}'s end.")
        if not loc.flags & FLAG_DELTA:
            self.repo.codec.decode(loc.blob_id, payload, loc.flags, loc.raw_length)
        return payload
