"""Volumes as the backup API manages them: create, import (manage in place), list, delete.

A created volume is a sparse raw file under `volumes_dir`; an imported one is
an existing file or block device that ashbox reads and writes in place and
never removes. Creating a sparse file is instant, so a created volume is
`available` when the request returns (docs/states.md).
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from ashbox.config import Settings
from ashbox.db import volumes as volume_rows
from ashbox.db.engine import Database
from ashbox.db.models import Volume
from ashbox.errors import InvalidInput, InvalidVolume, VolumeNotFound
from ashbox.records import ListQuery, RequestContext, VolumeRecord
from ashbox.statuses import VolumeStatus
from ashbox.volumes.file import create_volume_file, probe_size, remove_volume_file

log = logging.getLogger(__name__)

GiB = 1024**3

_DELETABLE = (VolumeStatus.AVAILABLE, VolumeStatus.ERROR, VolumeStatus.ERROR_RESTORING)


class VolumeOps:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def create_volume(
        self,
        ctx: RequestContext,
        *,
        size: int,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        availability_zone: str | None = None,
    ) -> VolumeRecord:
        if size < 1:
            raise InvalidInput(f"Invalid input received: Volume size {size} must be >= 1.")
        with self.db.transaction() as s:
            volume = self.new_volume_row(
                s,
                ctx,
                size=size,
                name=name,
                description=description,
                metadata=metadata,
                availability_zone=availability_zone,
                status=VolumeStatus.AVAILABLE,
            )
            log.info("volume created volume_id=%s size=%d", volume.id, size)
            return volume_record(volume)

    def new_volume_row(
        self,
        s: Session,
        ctx: RequestContext,
        *,
        size: int,
        name: str | None,
        description: str | None,
        status: VolumeStatus,
        metadata: dict[str, str] | None = None,
        availability_zone: str | None = None,
    ) -> Volume:
        """Insert a volume and create its sparse file; the file goes if the row does not."""
        volume_id = str(uuid.uuid4())
        path = self.settings.resolved_volumes_dir / f"volume-{volume_id}.raw"
        path.parent.mkdir(parents=True, exist_ok=True)
        create_volume_file(path, size * GiB)
        try:
            return volume_rows.add_volume(
                s,
                id=volume_id,
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                display_name=name,
                display_description=description,
                size=size,
                status=status,
                path=str(path),
                managed_file=True,
                availability_zone=availability_zone or self.settings.availability_zone,
                bootable=False,
                volume_metadata=dict(metadata or {}),
                created_at=datetime.now(UTC),
            )
        except BaseException:
            remove_volume_file(path)
            raise

    def import_volume(
        self,
        ctx: RequestContext,
        *,
        path: str,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> VolumeRecord:
        if not os.path.isabs(path):
            raise InvalidInput(f"Invalid input received: {path} is not an absolute path.")
        real = str(Path(path).resolve())
        size_bytes = probe_size(Path(real))
        with self.db.transaction() as s:
            existing = volume_rows.volume_with_path(s, real)
            if existing is not None:
                raise InvalidInput(
                    f"Invalid input received: {real} is already managed as volume {existing.id}."
                )
            volume = volume_rows.add_volume(
                s,
                id=str(uuid.uuid4()),
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                display_name=name,
                display_description=description,
                size=max(1, math.ceil(size_bytes / GiB)),
                status=VolumeStatus.AVAILABLE,
                path=real,
                managed_file=False,
                availability_zone=self.settings.availability_zone,
                bootable=False,
                volume_metadata=dict(metadata or {}),
                created_at=datetime.now(UTC),
            )
            log.info("volume imported volume_id=%s path=%s", volume.id, real)
            return volume_record(volume)

    def get_volume(self, ctx: RequestContext, volume_id: str) -> VolumeRecord:
        with self.db.reading() as s:
            return volume_record(self._load(s, ctx, volume_id))

    def list_volumes(self, ctx: RequestContext, query: ListQuery) -> tuple[list[VolumeRecord], int]:
        with self.db.reading() as s:
            marker = self._load(s, ctx, query.marker) if query.marker is not None else None
            project = None if (ctx.is_admin and query.all_tenants) else ctx.project_id
            rows, total = volume_rows.list_volumes(s, project, query, marker)
            return [volume_record(v) for v in rows], total

    def delete_volume(self, ctx: RequestContext, volume_id: str) -> None:
        """Delete a volume; its file goes only if ashbox created it. Backups stay."""
        with self.db.transaction() as s:
            volume = self._load(s, ctx, volume_id)
            if volume.status not in _DELETABLE:
                raise InvalidVolume(
                    "Volume status must be available or error or error_restoring or "
                    "error_extending or error_managing and must not be migrating, attached, "
                    "belong to a group, have snapshots, awaiting a transfer, or be "
                    "disassociated from snapshots after volume transfer."
                )
            if not volume_rows.swap_volume_status(s, volume_id, _DELETABLE, VolumeStatus.DELETING):
                raise InvalidVolume(f"Volume {volume_id} changed status meanwhile.")
            volume_rows.mark_volume_deleted(s, volume_id)
        if volume.managed_file:
            remove_volume_file(Path(volume.path))
        log.info("volume deleted volume_id=%s", volume_id)

    def _load(self, s: Session, ctx: RequestContext, volume_id: str) -> Volume:
        volume = volume_rows.get_volume(s, volume_id, None if ctx.is_admin else ctx.project_id)
        if volume is None:
            raise VolumeNotFound(volume_id)
        return volume


def volume_record(v: Volume) -> VolumeRecord:
    return VolumeRecord(
        id=v.id,
        project_id=v.project_id,
        user_id=v.user_id,
        name=v.display_name,
        description=v.display_description,
        size=v.size,
        status=v.status,
        previous_status=v.previous_status,
        path=v.path,
        managed_file=v.managed_file,
        availability_zone=v.availability_zone,
        bootable=v.bootable,
        metadata=dict(v.volume_metadata or {}),
        created_at=v.created_at,
        updated_at=v.updated_at,
    )
