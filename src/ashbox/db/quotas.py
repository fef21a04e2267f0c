"""Quotas (CINDER-CONTRACT §1.8): each project's limits, and its usage as its rows say.

A limit is the project's own (`quotas`, set by an admin), else the `default`
quota class's (`quota_classes`), else the configuration's `quota_<resource>`;
-1 is unlimited. Usage is not stored: it is counted from the volume,
snapshot and backup rows that are not deleted, in the very transaction that
adds one, after taking the project's quota lock (`reserve`). Cinder reserves
and at once commits at the API; here the row is the reservation and its
commit, so no crash can leave usage out of step with the rows, and
`reserved` is always 0. A backup counts its volume's size in
`backup_gigabytes`, incrementals too, and keeps counting in `error` until it
is deleted, as in Cinder. The temporary snapshot of an in-use volume's
backup is ashbox's own and counts in no quota. Each volume type has its own
`volumes_<type>`, `gigabytes_<type>` and `snapshots_<type>` (unlimited unless
set), counted beside the totals.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from sqlalchemy import Select, delete, func, select, text, update
from sqlalchemy.orm import Session

from ashbox.config import Settings
from ashbox.db.models import Backup, ProjectQuota, QuotaClass, Snapshot, Volume, VolumeType
from ashbox.errors import QuotaExceeded

DEFAULT_CLASS = "default"
UNLIMITED = -1


# Each volume type has these three of its own (Cinder's per-type quotas),
# named `<resource>_<type name>`, unlimited unless set.
TYPE_RESOURCES = ("volumes", "gigabytes", "snapshots")


def type_resources(type_name: str) -> tuple[str, ...]:
    return tuple(f"{resource}_{type_name}" for resource in TYPE_RESOURCES)


def configured_defaults(s: Session, settings: Settings) -> dict[str, int]:
    """Every resource's limit from the configuration; a type's are unlimited."""
    types = s.scalars(select(VolumeType.name).order_by(VolumeType.name))
    per_type = {key: UNLIMITED for name in types for key in type_resources(name)}
    return {
        "volumes": settings.quota_volumes,
        "snapshots": settings.quota_snapshots,
        "gigabytes": settings.quota_gigabytes,
        "backups": settings.quota_backups,
        "backup_gigabytes": settings.quota_backup_gigabytes,
        "groups": settings.quota_groups,
        "per_volume_gigabytes": settings.per_volume_size_limit,
        **per_type,
    }


def class_limits(s: Session, settings: Settings, class_name: str = DEFAULT_CLASS) -> dict[str, int]:
    """A quota class's limits: its own, else the default class's, else the configuration's."""
    limits = configured_defaults(s, settings)
    for name in dict.fromkeys([DEFAULT_CLASS, class_name]):
        rows = s.scalars(select(QuotaClass).where(QuotaClass.class_name == name))
        limits.update({r.resource: r.hard_limit for r in rows if r.resource in limits})
    return limits


def project_limits(s: Session, settings: Settings, project_id: str) -> dict[str, int]:
    """The project's limits: its own, else the default class's, else the configuration's."""
    limits = class_limits(s, settings)
    rows = s.scalars(select(ProjectQuota).where(ProjectQuota.project_id == project_id))
    limits.update({r.resource: r.hard_limit for r in rows if r.resource in limits})
    return limits


def usage(s: Session, project_id: str) -> dict[str, int]:
    """What the project's rows that are not deleted hold, per resource."""
    temporary = select(Backup.temp_snapshot_id).where(Backup.temp_snapshot_id.is_not(None))
    volumes, volume_gb = s.execute(
        select(func.count(), func.coalesce(func.sum(Volume.size), 0)).where(
            Volume.project_id == project_id, Volume.deleted.is_(False)
        )
    ).one()
    snapshots, snapshot_gb = s.execute(
        select(func.count(), func.coalesce(func.sum(Snapshot.size), 0)).where(
            Snapshot.project_id == project_id,
            Snapshot.deleted.is_(False),
            Snapshot.id.not_in(temporary),
        )
    ).one()
    backups, backup_gb = s.execute(
        select(func.count(), func.coalesce(func.sum(Backup.size), 0)).where(
            Backup.project_id == project_id, Backup.deleted.is_(False)
        )
    ).one()
    used = {
        "volumes": volumes,
        "snapshots": snapshots,
        "gigabytes": volume_gb + snapshot_gb,
        "backups": backups,
        "backup_gigabytes": backup_gb,
        "groups": 0,
        "per_volume_gigabytes": 0,
    }
    used.update(_usage_by_type(s, project_id, temporary))
    return used


def _usage_by_type(s: Session, project_id: str, temporary: Select[str | None]) -> dict[str, int]:
    """`volumes_<type>`, `gigabytes_<type>` (its volumes' and their snapshots'
    sizes) and `snapshots_<type>` of every type."""
    used = {key: 0 for name in s.scalars(select(VolumeType.name)) for key in type_resources(name)}
    live_volumes = (Volume.project_id == project_id, Volume.deleted.is_(False))
    volumes = s.execute(
        select(VolumeType.name, func.count(), func.coalesce(func.sum(Volume.size), 0))
        .join(Volume, Volume.volume_type_id == VolumeType.id)
        .where(*live_volumes)
        .group_by(VolumeType.name)
    )
    for name, count, size in volumes:
        used[f"volumes_{name}"] += count
        used[f"gigabytes_{name}"] += size
    snapshots = s.execute(
        select(VolumeType.name, func.count(), func.coalesce(func.sum(Snapshot.size), 0))
        .join(Volume, Volume.volume_type_id == VolumeType.id)
        .join(Snapshot, Snapshot.volume_id == Volume.id)
        .where(
            Snapshot.project_id == project_id,
            Snapshot.deleted.is_(False),
            Snapshot.id.not_in(temporary),
        )
        .group_by(VolumeType.name)
    )
    for name, count, size in snapshots:
        used[f"snapshots_{name}"] += count
        used[f"gigabytes_{name}"] += size
    return used


def rename_type(s: Session, old: str, new: str) -> None:
    """A renamed type keeps its limits: their rows follow its name."""
    for old_key, new_key in zip(type_resources(old), type_resources(new), strict=True):
        for model in (ProjectQuota, QuotaClass):
            s.execute(update(model).where(model.resource == old_key).values(resource=new_key))


def set_project_limits(s: Session, project_id: str, limits: Mapping[str, int]) -> None:
    """Set some of the project's own limits (the caller holds `lock(s, project_id)`)."""
    for resource, limit in limits.items():
        s.merge(ProjectQuota(project_id=project_id, resource=resource, hard_limit=limit))


def set_class_limits(s: Session, class_name: str, limits: Mapping[str, int]) -> None:
    """Set some of a class's limits."""
    lock(s, f"class:{class_name}")
    for resource, limit in limits.items():
        s.merge(QuotaClass(class_name=class_name, resource=resource, hard_limit=limit))


def forget_project_limits(s: Session, project_id: str) -> None:
    """The project's limits become the default class's again."""
    s.execute(delete(ProjectQuota).where(ProjectQuota.project_id == project_id))


def lock(s: Session, project_id: str) -> None:
    """Hold the project's quota lock to the end of the transaction, so two
    requests cannot both count the same free unit, nor an admin lower a limit
    under a usage being added. SQLite's BEGIN IMMEDIATE holds the whole
    database already."""
    if s.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"quota:{project_id}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def reserve_backup(s: Session, settings: Settings, project_id: str, size: int) -> None:
    """Check that the project may hold one more backup of `size` GiB; QuotaExceeded
    (Cinder's messages) if not. The caller inserts the row in the same transaction."""
    limits, used = _locked(s, settings, project_id)
    allowed = limits["backups"]
    if _over(allowed, used["backups"] + 1):
        raise QuotaExceeded(
            f"BackupLimitExceeded: Maximum number of backups allowed ({allowed}) exceeded"
        )
    quota = limits["backup_gigabytes"]
    if _over(quota, used["backup_gigabytes"] + size):
        raise QuotaExceeded(
            "VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup "
            f"gigabytes quota. Requested {size}G, quota is {quota}G and "
            f"{used['backup_gigabytes']}G has been consumed."
        )


def reserve_volume(
    s: Session, settings: Settings, project_id: str, size: int, kind: VolumeType | None = None
) -> None:
    """As reserve_backup, for one more volume of `size` GiB, of type `kind`."""
    limits, used = _locked(s, settings, project_id)
    largest = limits["per_volume_gigabytes"]
    if _over(largest, size):
        raise QuotaExceeded(
            f"VolumeSizeExceedsLimit: Requested volume size {size}G is larger than maximum "
            f"allowed limit {largest}G."
        )
    for suffix in _scopes(kind):
        _check_gigabytes(limits, used, size, f"gigabytes{suffix}")
        _check_one_more(
            limits,
            used,
            f"volumes{suffix}",
            "VolumeLimitExceeded: Maximum number of volumes allowed ({allowed}) exceeded "
            "for quota '{name}'.",
        )


def reserve_snapshot(
    s: Session, settings: Settings, project_id: str, size: int, kind: VolumeType | None = None
) -> None:
    """As reserve_backup, for one more snapshot of `size` GiB (counted in
    `gigabytes`) of a volume of type `kind`."""
    limits, used = _locked(s, settings, project_id)
    for suffix in _scopes(kind):
        _check_gigabytes(limits, used, size, f"gigabytes{suffix}")
        _check_one_more(
            limits,
            used,
            f"snapshots{suffix}",
            "SnapshotLimitExceeded: Maximum number of snapshots allowed ({allowed}) exceeded",
        )


def _scopes(kind: VolumeType | None) -> tuple[str, ...]:
    """The suffixes of the resources a new volume or snapshot counts in: the
    totals', and its type's."""
    return ("",) if kind is None else ("", f"_{kind.name}")


def _check_one_more(
    limits: Mapping[str, int], used: Mapping[str, int], name: str, refusal: str
) -> None:
    """QuotaExceeded with `refusal` (its {allowed} and {name} filled) unless one
    more `name` fits."""
    allowed = limits.get(name, UNLIMITED)
    if _over(allowed, used.get(name, 0) + 1):
        raise QuotaExceeded(refusal.format(allowed=allowed, name=name))


def _locked(
    s: Session, settings: Settings, project_id: str
) -> tuple[dict[str, int], dict[str, int]]:
    """The project's limits and usage, under its quota lock."""
    lock(s, project_id)
    return project_limits(s, settings, project_id), usage(s, project_id)


def _check_gigabytes(
    limits: Mapping[str, int], used: Mapping[str, int], size: int, name: str
) -> None:
    quota, consumed = limits.get(name, UNLIMITED), used.get(name, 0)
    if _over(quota, consumed + size):
        raise QuotaExceeded(
            "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
            f"{name} quota. Requested {size}G, quota is {quota}G and "
            f"{consumed}G has been consumed."
        )


def _over(limit: int, wanted: int) -> bool:
    return limit != UNLIMITED and wanted > limit
