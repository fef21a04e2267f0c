"""Snapshots as the API manages them (CINDER-CONTRACT §1.7): create, show, list,
update, delete, reset. A snapshot's file is made and removed by a worker
(ashbox.manager.snapshot); a backup can be made of a snapshot (`snapshot_id`)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from ashbox.backups.access import scope
from ashbox.backups.common import UNCHANGED, display_fields
from ashbox.backups.hosts import HostOps
from ashbox.backups.volumes import load_volume
from ashbox.db import lifecycle, quotas
from ashbox.db import snapshots as snapshot_rows
from ashbox.db.models import Snapshot
from ashbox.errors import InvalidInput, InvalidSnapshotState, InvalidVolumeState, SnapshotNotFound
from ashbox.records import ListQuery, RequestContext, SnapshotRecord
from ashbox.statuses import ResourceType, TaskKind, VolumeStatus
from ashbox.transitions import SNAPSHOT

log = logging.getLogger(__name__)

SNAPSHOT_RESET_RULE = "volume_extension:snapshot_admin_actions:reset_status"
SNAPSHOT_FORCE_DELETE_RULE = "volume_extension:snapshot_admin_actions:force_delete"


class SnapshotOps(HostOps):
    def create_snapshot(
        self,
        ctx: RequestContext,
        *,
        volume_id: str,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        force: bool = False,
    ) -> SnapshotRecord:
        """A snapshot of an `available` volume (`in-use` too with `force`)."""
        ctx.authorize("volume:create_snapshot")
        with self.db.transaction() as s:
            volume = load_volume(s, ctx, volume_id, lock=True)
            allowed = [VolumeStatus.AVAILABLE] + ([VolumeStatus.IN_USE] if force else [])
            if volume.status not in allowed:
                raise InvalidVolumeState(
                    f"Volume {volume_id} status must be {', '.join(allowed)}, "
                    f"but current status is: {volume.status}."
                )
            quotas.reserve_snapshot(
                s, self.settings, ctx.project_id, volume.size, volume.volume_type
            )
            snapshot_id = str(uuid.uuid4())
            snapshot = Snapshot(
                id=snapshot_id,
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                volume_id=volume_id,
                display_name=name,
                display_description=description,
                size=volume.size,
                path=str(self.settings.resolved_volumes_dir / f"snapshot-{snapshot_id}.raw"),
                snapshot_metadata=dict(metadata or {}),
                created_at=datetime.now(UTC),
            )
            lifecycle.insert(s, SNAPSHOT["create"], snapshot)
            self._queue(
                s, TaskKind.CREATE_SNAPSHOT, ResourceType.SNAPSHOT, snapshot_id, host=volume.host
            )
            log.info("snapshot requested snapshot_id=%s volume_id=%s", snapshot_id, volume_id)
            record = snapshot_record(snapshot)
        self._task_queued()
        return record

    def get_snapshot(self, ctx: RequestContext, snapshot_id: str) -> SnapshotRecord:
        ctx.authorize("volume:get_snapshot")
        with self.db.reading() as s:
            return snapshot_record(load_snapshot(s, ctx, snapshot_id))

    def list_snapshots(
        self, ctx: RequestContext, query: ListQuery
    ) -> tuple[list[SnapshotRecord], int]:
        ctx.authorize("volume:get_all_snapshots")
        with self.db.reading() as s:
            marker = load_snapshot(s, ctx, query.marker) if query.marker is not None else None
            project = None if (ctx.is_admin and query.all_tenants) else ctx.project_id
            rows, total = snapshot_rows.list_snapshots(s, project, query, marker)
            return [snapshot_record(r) for r in rows], total

    def update_snapshot(
        self,
        ctx: RequestContext,
        snapshot_id: str,
        *,
        name: str | object | None = UNCHANGED,
        description: str | object | None = UNCHANGED,
    ) -> SnapshotRecord:
        ctx.authorize("volume:update_snapshot")
        fields = display_fields(name=name, description=description)
        with self.db.transaction() as s:
            load_snapshot(s, ctx, snapshot_id, lock=True)
            if fields:
                snapshot_rows.set_snapshot_fields(s, snapshot_id, **fields)
            s.expire_all()
            return snapshot_record(load_snapshot(s, ctx, snapshot_id))

    def delete_snapshot(
        self, ctx: RequestContext, snapshot_id: str, *, force: bool = False
    ) -> None:
        """Delete an `available` or `error` snapshot; with `force` (admin) any other."""
        ctx.authorize(SNAPSHOT_FORCE_DELETE_RULE if force else "volume:delete_snapshot")
        with self.db.transaction() as s:
            load_snapshot(s, ctx, snapshot_id, lock=True)
            event = "force_delete" if force else "delete"
            if not lifecycle.apply(s, SNAPSHOT[event], snapshot_id):
                raise InvalidSnapshotState(
                    "Snapshot status must be available or error and must not be part of a group."
                )
            self._queue(
                s,
                TaskKind.DELETE_SNAPSHOT,
                ResourceType.SNAPSHOT,
                snapshot_id,
                host=snapshot_rows.host_of(s, snapshot_id),
            )
            log.info("snapshot delete requested snapshot_id=%s", snapshot_id)
        self._task_queued()

    def reset_snapshot_status(self, ctx: RequestContext, snapshot_id: str, status: str) -> None:
        ctx.authorize(SNAPSHOT_RESET_RULE)
        try:
            transition = SNAPSHOT.reset_to(status)
        except KeyError:
            targets = [t.target for t in SNAPSHOT if t.event.startswith("reset_")]
            raise InvalidInput(
                f"Snapshot status: {status} is invalid, valid statuses are: {tuple(targets)}."
            ) from None
        with self.db.transaction() as s:
            snapshot = load_snapshot(s, ctx, snapshot_id, lock=True)
            if not lifecycle.apply(s, transition, snapshot_id, reason="reset by an admin"):
                raise InvalidSnapshotState(f"Snapshot status {snapshot.status} cannot be reset.")


def load_snapshot(
    s: Session, ctx: RequestContext, snapshot_id: str, *, lock: bool = False
) -> Snapshot:
    """The snapshot the request may see (locked with `lock`); SnapshotNotFound otherwise."""
    snapshot = snapshot_rows.get_snapshot(s, snapshot_id, lock=lock)
    if snapshot is None or scope(ctx) not in (None, snapshot.project_id):
        raise SnapshotNotFound(snapshot_id)
    return snapshot


def snapshot_record(snapshot: Snapshot) -> SnapshotRecord:
    return SnapshotRecord(
        id=snapshot.id,
        project_id=snapshot.project_id,
        user_id=snapshot.user_id,
        volume_id=snapshot.volume_id,
        name=snapshot.display_name,
        description=snapshot.display_description,
        size=snapshot.size,
        status=snapshot.status,
        metadata=dict(snapshot.snapshot_metadata or {}),
        created_at=snapshot.created_at,
        updated_at=snapshot.updated_at,
    )
