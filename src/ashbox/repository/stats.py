"""Repository statistics: stored bytes, dedup and compression ratios, unique bytes.

Figures (docs/format.md, "Reclaiming space and checking"):

- *stored*: bytes of the live packs in the store (dead packs awaiting their
  grace period are counted apart);
- *logical*: bytes of the data blocks (not holes) of every backup's manifest,
  summed over backups: what the backups hold before dedup;
- *unique raw*: raw bytes of the referenced blobs, each counted once;
- dedup ratio = logical / unique raw; compression ratio = unique raw / the
  stored bytes of those blobs;
- a backup's *unique* bytes: stored bytes of the blobs only it references,
  about what deleting it alone would free.

The blob figures are sums the index computes (`Index.usage`); packs are listed
and manifests read one at a time, so memory is bounded by the number of packs
and backups and one manifest, not by the number of blobs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ashbox.errors import BackupNotFound, CorruptData
from ashbox.repository.index import ABANDONED, DEAD, LIVE
from ashbox.repository.manifest import Manifest, manifest_key
from ashbox.repository.repository import Repository


@dataclass(frozen=True, slots=True)
class BackupUsage:
    backup_id: str
    logical_size: int  # data bytes of its manifest; 0 if it has none (yet)
    unique_size: int  # stored bytes of the blobs only this backup references


@dataclass(frozen=True, slots=True)
class RepositoryStats:
    container: str
    packs: int
    stored_size: int
    dead_packs: int
    dead_size: int
    blobs: int
    raw_size: int  # raw bytes of the referenced blobs, each once
    blob_size: int  # stored bytes of the referenced blobs, each once
    logical_size: int
    backups: tuple[BackupUsage, ...]
    unreadable_manifests: tuple[str, ...] = ()

    @property
    def dedup_ratio(self) -> float:
        return self.logical_size / self.raw_size if self.raw_size else 1.0

    @property
    def compression_ratio(self) -> float:
        return self.raw_size / self.blob_size if self.blob_size else 1.0


def repository_stats(repo: Repository) -> RepositoryStats:
    """Stats of the repository from its index and its manifests."""
    index, container = repo.index, repo.container
    packs = index.packs(container)
    live = [p for p in packs if p.state == LIVE]
    dead = [p for p in packs if p.state in (DEAD, ABANDONED)]
    usage = index.usage(container)
    logical: dict[str, int] = {}
    unreadable: list[str] = []
    for backup_id in manifest_ids(repo):
        try:
            manifest = repo.read_manifest(backup_id)
        except BackupNotFound:
            continue  # deleted since the listing
        except CorruptData:
            unreadable.append(backup_id)
            continue
        logical[backup_id] = logical_size(manifest)
    usages = tuple(
        BackupUsage(
            backup_id=backup_id,
            logical_size=logical.get(backup_id, 0),
            unique_size=usage.unique_sizes.get(backup_id, 0),
        )
        for backup_id in sorted(set(logical) | set(usage.unique_sizes))
    )
    return RepositoryStats(
        container=container,
        packs=len(live),
        stored_size=sum(p.size for p in live),
        dead_packs=len(dead),
        dead_size=sum(p.size for p in dead),
        blobs=usage.blobs,
        raw_size=usage.raw_size,
        blob_size=usage.blob_size,
        logical_size=sum(logical.values()),
        backups=usages,
        unreadable_manifests=tuple(unreadable),
    )


def manifest_ids(repo: Repository) -> list[str]:
    """Ids of the backups whose manifests are in the store, sorted."""
    prefix = manifest_key(repo.container, "")
    return sorted(
        key[len(prefix) :] for key in repo.store.list(prefix) if "/" not in key[len(prefix) :]
    )


def logical_size(manifest: Manifest) -> int:
    """Bytes of the manifest's blocks that are not holes."""
    return sum(manifest.block_length(index) for index, _, _ in manifest.data_blocks())
