"""Checking a repository against its index: `ashbox repo check [--read-data]`.

docs/format.md, "Reclaiming space and checking". Without `read_data`, every
live pack's object must exist with the indexed size, and its trailer must
decode and list every blob the index places in it, at the same place. With
`read_data`, every live pack is read whole: its bytes must hash to its id and
every whole blob must decode to its id (a delta's bytes are covered by the
pack hash; `Repository.verify` rebuilds its block). Then every manifest in
the store must decode and every blob it needs, and the bases of its deltas,
must be indexed in a live pack. The report lists every backup a damaged or
missing pack touches, through the manifests. An object the store could not
read (a `StoreError`: unreachable, timing out, refusing) is reported as
unreadable, "could not read <key>: <reason>", apart from damage: its bytes
were not seen, so they are not known to be wrong.

Memory: the index is asked for one pack's blobs at a time (`Index.pack_blobs`)
and manifests are read one at a time, so a check holds one pack (read whole
with `read_data`), one manifest's blob ids and the list of packs, never a row
per blob of the repository.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ashbox.errors import BackupNotFound, CorruptData, ObjectNotFound, StoreError
from ashbox.repository.blob import FLAG_DELTA
from ashbox.repository.index import LIVE, BlobLocation
from ashbox.repository.manifest import manifest_key
from ashbox.repository.pack import (
    FOOTER_SIZE,
    PackEntry,
    decode_pack,
    decode_trailer,
    pack_id_of,
    pack_key,
    trailer_length,
)
from ashbox.repository.repository import Repository
from ashbox.repository.stats import manifest_ids

log = logging.getLogger(__name__)

_LOCATE_BATCH = 4096


@dataclass(frozen=True, slots=True)
class Damage:
    """One thing found wrong: in a pack (`pack_id`) or a backup's manifest;
    `unreadable` when the store failed to read it (not known to be damaged)."""

    message: str
    pack_id: str | None = None
    backup_id: str | None = None
    unreadable: bool = False


@dataclass(frozen=True, slots=True)
class CheckReport:
    container: str
    read_data: bool
    packs_checked: int
    blobs_checked: int
    manifests_checked: int
    damages: tuple[Damage, ...]
    damaged_packs: tuple[str, ...]  # not those only unreadable
    affected_backups: tuple[str, ...]  # backups that cannot be restored whole

    @property
    def ok(self) -> bool:
        return not self.damages


def check_repository(
    repo: Repository,
    *,
    read_data: bool = False,
    progress: Callable[[str], None] | None = None,
) -> CheckReport:
    """Check the repository; the report, never an exception for damage found."""
    container = repo.container
    damages: list[Damage] = []
    live = [p for p in repo.index.packs(container) if p.state == LIVE]
    blobs_checked = 0
    for number, info in enumerate(live, 1):
        if progress is not None:
            progress(f"pack {number}/{len(live)} {info.pack_id}")
        indexed = repo.index.pack_blobs(container, info.pack_id)
        found, checked = _check_pack(repo, info.pack_id, info.size, indexed, read_data)
        damages.extend(found)
        blobs_checked += checked
    damaged_packs = {d.pack_id for d in damages if d.pack_id is not None and not d.unreadable}
    live_ids = {p.pack_id for p in live}

    affected: set[str] = set()
    backups: list[str] = []
    for backup_id in manifest_ids(repo):
        if progress is not None:
            progress(f"manifest {backup_id}")
        of_backup = _check_manifest(repo, backup_id, live_ids, damaged_packs)
        if of_backup is None:
            continue  # deleted since the listing (or listed by a store whose listing lags)
        backups.append(backup_id)
        damages.extend(of_backup)
        if any(not d.unreadable for d in of_backup):
            affected.add(backup_id)
    report = CheckReport(
        container=container,
        read_data=read_data,
        packs_checked=len(live),
        blobs_checked=blobs_checked,
        manifests_checked=len(backups),
        damages=tuple(damages),
        damaged_packs=tuple(sorted(damaged_packs)),
        affected_backups=tuple(sorted(affected)),
    )
    log.info(
        "repository checked container=%s packs=%d blobs=%d manifests=%d damages=%d",
        container,
        report.packs_checked,
        report.blobs_checked,
        report.manifests_checked,
        len(report.damages),
    )
    return report


def _check_pack(
    repo: Repository, pack_id: str, size: int, indexed: list[BlobLocation], read_data: bool
) -> tuple[list[Damage], int]:
    """Damages of one live pack, and how many blobs were decoded."""
    key = pack_key(repo.container, pack_id)
    cipher = repo.codec.cipher
    try:
        stored = repo.store.size(key)
    except ObjectNotFound:
        return [Damage(f"Pack {pack_id} is missing from the store.", pack_id=pack_id)], 0
    except StoreError as e:
        return [_unreadable(key, e, pack_id=pack_id)], 0
    if stored != size:
        return [
            Damage(f"Pack {pack_id} holds {stored} bytes, the index says {size}.", pack_id=pack_id)
        ], 0
    data: bytes | None = None
    try:
        if read_data:
            data = repo.store.get(key)
            entries = decode_pack(data, cipher)
        else:
            footer = repo.store.get(key, max(0, stored - FOOTER_SIZE), FOOTER_SIZE)
            length = trailer_length(footer)
            tail = repo.store.get(key, max(0, stored - length), length)
            entries = decode_trailer(tail, stored, cipher)
    except ObjectNotFound:
        return [Damage(f"Pack {pack_id} is missing from the store.", pack_id=pack_id)], 0
    except CorruptData as e:
        return [Damage(f"Pack {pack_id} is corrupt: {e.message}", pack_id=pack_id)], 0
    except StoreError as e:
        return [_unreadable(key, e, pack_id=pack_id)], 0
    damages = [
        Damage(message, pack_id=pack_id) for message in _mismatches(pack_id, entries, indexed)
    ]
    checked = 0
    if data is not None:
        if pack_id_of(data) != pack_id:
            damages.append(
                Damage(f"Pack {pack_id}'s bytes do not hash to its id.", pack_id=pack_id)
            )
        for loc in indexed:
            if loc.flags & FLAG_DELTA:
                continue
            payload = memoryview(data)[loc.offset : loc.offset + loc.length]
            try:
                repo.codec.decode(loc.blob_id, payload, loc.flags, loc.raw_length)
            except CorruptData as e:
                damages.append(
                    Damage(f"Pack {pack_id} at {loc.offset}: {e.message}", pack_id=pack_id)
                )
            checked += 1
    return damages, checked


def _unreadable(
    key: str, e: StoreError, *, pack_id: str | None = None, backup_id: str | None = None
) -> Damage:
    return Damage(
        f"could not read {key}: {e.message}", pack_id=pack_id, backup_id=backup_id, unreadable=True
    )


def _mismatches(
    pack_id: str, entries: Iterable[PackEntry], indexed: list[BlobLocation]
) -> Iterable[str]:
    in_trailer = {e.blob_id: e.location(pack_id) for e in entries}
    for loc in indexed:
        listed = in_trailer.get(loc.blob_id)
        if listed is None:
            yield f"Pack {pack_id}'s trailer does not list blob {loc.blob_id.hex()}."
        elif listed != loc:
            yield (
                f"Pack {pack_id}'s trailer places blob {loc.blob_id.hex()} at "
                f"{listed.offset}+{listed.length}, the index at {loc.offset}+{loc.length}."
            )


def _check_manifest(
    repo: Repository, backup_id: str, live: set[str], damaged: set[str]
) -> list[Damage] | None:
    """The damages of one listed backup; None if its manifest is gone."""
    try:
        manifest = repo.read_manifest(backup_id)
    except BackupNotFound:
        return None
    except CorruptData as e:
        return [Damage(f"Backup {backup_id}: {e.message}", backup_id=backup_id)]
    except StoreError as e:
        return [_unreadable(manifest_key(repo.container, backup_id), e, backup_id=backup_id)]
    damages: list[Damage] = []
    reported: set[str] = set()  # one damage per pack the backup needs
    first_block: dict[bytes, int] = {}
    for index, blob_id, _ in manifest.data_blocks():
        first_block.setdefault(blob_id, index * manifest.block_size)
    needed = sorted(first_block)
    seen: set[bytes] = set(needed)
    while needed:
        located: dict[bytes, BlobLocation] = {}
        for start in range(0, len(needed), _LOCATE_BATCH):
            located.update(repo.index.locate(repo.container, needed[start : start + _LOCATE_BATCH]))
        bases: list[bytes] = []
        for blob_id in needed:
            where = first_block.get(blob_id)
            block = f"the block at offset {where}" if where is not None else "a delta"
            loc = located.get(blob_id)
            if loc is None:
                damages.append(
                    Damage(
                        f"Backup {backup_id}: {block} needs blob {blob_id.hex()}, "
                        "which the repository index does not hold.",
                        backup_id=backup_id,
                    )
                )
                continue
            if (loc.pack_id in damaged or loc.pack_id not in live) and loc.pack_id not in reported:
                reported.add(loc.pack_id)
                state = "damaged" if loc.pack_id in damaged else "not live"
                damages.append(
                    Damage(
                        f"Backup {backup_id}: {block} needs blob {blob_id.hex()} in pack "
                        f"{loc.pack_id}, which is {state}.",
                        pack_id=loc.pack_id,
                        backup_id=backup_id,
                    )
                )
            if loc.base_id is not None and loc.base_id not in seen:
                seen.add(loc.base_id)
                bases.append(loc.base_id)
        needed = sorted(bases)
    return damages
