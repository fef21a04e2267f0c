"""SQL for volume types and their encryption. Callers own the transaction."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ashbox.db.models import Volume, VolumeType, VolumeTypeEncryption

Lock = Literal["share", "update"] | None


def get_type(s: Session, type_id: str, *, lock: Lock = None) -> VolumeType | None:
    """The type; `lock` "share" (a volume is being given it) or "update" (it
    changes in a way its volumes must not see half-done) holds its row to the
    end of the transaction (PostgreSQL; SQLite's writers are serial already)."""
    return s.scalar(_locked(select(VolumeType).where(VolumeType.id == type_id), lock))


def type_named(s: Session, name: str, *, lock: Lock = None) -> VolumeType | None:
    return s.scalar(_locked(select(VolumeType).where(VolumeType.name == name), lock))


def _locked(stmt: Select[VolumeType], lock: Lock) -> Select[VolumeType]:
    if lock is None:
        return stmt
    return stmt.with_for_update(read=lock == "share").execution_options(populate_existing=True)


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
