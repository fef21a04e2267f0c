"""The seam between the API and the backup service (`ashbox.backups.service.Service`).

The API depends on this Protocol only, so tests can run it over an in-memory
fake and `api/` never imports the concrete service.
"""

from __future__ import annotations

from typing import Protocol

from ashbox.backups.records import (
    BackupRecord,
    ListQuery,
    RequestContext,
    RestoreRecord,
    VolumeRecord,
)


class BackupService(Protocol):
    def create_volume(
        self,
        ctx: RequestContext,
        *,
        size: int,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        availability_zone: str | None = None,
    ) -> VolumeRecord: ...

    def import_volume(
        self,
        ctx: RequestContext,
        *,
        path: str,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> VolumeRecord: ...

    def get_volume(self, ctx: RequestContext, volume_id: str) -> VolumeRecord: ...

    def list_volumes(
        self, ctx: RequestContext, query: ListQuery
    ) -> tuple[list[VolumeRecord], int]: ...

    def delete_volume(self, ctx: RequestContext, volume_id: str) -> None: ...

    def create_backup(
        self,
        ctx: RequestContext,
        *,
        volume_id: str,
        name: str | None = None,
        description: str | None = None,
        container: str | None = None,
        incremental: bool = False,
        force: bool = False,
        snapshot_id: str | None = None,
        metadata: dict[str, str] | None = None,
        availability_zone: str | None = None,
    ) -> BackupRecord: ...

    def get_backup(self, ctx: RequestContext, backup_id: str) -> BackupRecord: ...

    def list_backups(
        self, ctx: RequestContext, query: ListQuery
    ) -> tuple[list[BackupRecord], int]: ...

    def delete_backup(
        self, ctx: RequestContext, backup_id: str, *, force: bool = False
    ) -> None: ...

    def restore_backup(
        self,
        ctx: RequestContext,
        backup_id: str,
        *,
        volume_id: str | None = None,
        name: str | None = None,
    ) -> RestoreRecord: ...
