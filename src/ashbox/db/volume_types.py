"""SQL for volume types and their encryption. Callers own the transaction."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ashbox.db.models import Volume, VolumeType, VolumeTypeEncryption


def get_type(s: Session, type_id: str) -> VolumeType | None:
    return s.get(VolumeType, type_id)


def type_named(s: Session, name: str) -> VolumeType | None:
    return s.scalar(select(VolumeType).where(VolumeType.name == name))


def list_types(s: Session, *, public: bool | None) -> list[VolumeType]:
    """Every type, or only the public (True) or private (False) ones; by name."""
    stmt = select(VolumeType)
    if public is not None:
        stmt = stmt.where(VolumeType.is_public.is_(public))
    return list(s.scalars(stmt.order_by(VolumeType.name, VolumeType.id)))


def in_use(s: Session, type_id: str) -> bool:
    """A live volume has the type."""
    stmt = select(func.count()).where(Volume.volume_type_id == type_id, Volume.deleted.is_(False))
    return bool(s.scalar(stmt))


def encryption_of(s: Session, type_id: str) -> VolumeTypeEncryption | None:
    return s.scalar(
        select(VolumeTypeEncryption).where(VolumeTypeEncryption.volume_type_id == type_id)
    )
