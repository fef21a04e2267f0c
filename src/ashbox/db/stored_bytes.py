"""What backups occupy in the store after dedup and compression, counted within
their project only.

Blocks are shared across every backup of a container, whoever owns it. A
figure that counted only the bytes a backup added to the store would tell its
owner whether another project already held the same data (a backup of it
would add nothing): a cross-tenant side channel. So a backup's stored size is
what it holds that no other backup of its own project holds, and a project's
stored bytes are what all its backups hold, each blob once, as if no other
project shared any of it.
"""

from __future__ import annotations

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from ashbox.db.models import Backup, Blob, BlobRef


def of_backup(s: Session, backup_id: str, project_id: str) -> int:
    """The stored bytes of the blobs `backup_id` references that no other live
    backup of `project_id` references."""
    other = aliased(BlobRef)
    shared = (
        select(other.blob_id)
        .join(Backup, Backup.id == other.backup_id)
        .where(
            other.container == BlobRef.container,
            other.blob_id == BlobRef.blob_id,
            other.backup_id != backup_id,
            Backup.project_id == project_id,
            Backup.deleted.is_(False),
        )
    )
    stmt = (
        select(func.coalesce(func.sum(Blob.length), 0))
        .select_from(BlobRef)
        .join(Blob, and_(Blob.container == BlobRef.container, Blob.blob_id == BlobRef.blob_id))
        .where(BlobRef.backup_id == backup_id, ~exists(shared))
    )
    return int(s.scalar(stmt) or 0)


def of_project(s: Session, project_id: str) -> int:
    """The stored bytes of every blob the live backups of `project_id` reference, each once."""
    held = (
        select(BlobRef.container, BlobRef.blob_id)
        .join(Backup, Backup.id == BlobRef.backup_id)
        .where(Backup.project_id == project_id, Backup.deleted.is_(False))
        .distinct()
        .subquery()
    )
    stmt = select(func.coalesce(func.sum(Blob.length), 0)).join_from(
        held, Blob, and_(Blob.container == held.c.container, Blob.blob_id == held.c.blob_id)
    )
    return int(s.scalar(stmt) or 0)
