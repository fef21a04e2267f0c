"""Volumes as the backup API manages them: create, manage (import in place), list, delete.

The API records a request and queues its task; only a worker creates, probes
or removes a volume's file (ashbox.manager.volume). A created volume is
`creating` until its worker made its sparse file; a managed one is `managing`
(shown as `creating`, as Cinder shows it) until its worker checked and
measured it (docs/states.md).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from ashbox.backups.access import scope
from ashbox.backups.placement import host_of_request, service_can_run
from ashbox.backups.volume_types import type_for_volume
from ashbox.config import Settings
from ashbox.db import lifecycle, quotas
from ashbox.db import snapshots as snapshot_rows
from ashbox.db import tasks as task_rows
from ashbox.db import volume_types as type_rows
from ashbox.db import volumes as volume_rows
from ashbox.db.engine import Database
from ashbox.db.models import Volume, VolumeType
from ashbox.errors import InvalidInput, InvalidVolume, InvalidVolumeState, VolumeNotFound
from ashbox.records import ListQuery, RequestContext, VolumeRecord
from ashbox.statuses import ResourceType, TaskKind
from ashbox.transitions import VOLUME
from ashbox.volume_type_specs import backend_capabilities, unmet
from ashbox.volumes.paths import holding_host, manageable_path

log = logging.getLogger(__name__)

VOLUME_RESET_RULE = "volume_extension:volume_admin_actions:reset_status"
VOLUME_FORCE_DELETE_RULE = "volume_extension:volume_admin_actions:force_delete"
# Every status Cinder's reset accepts (CINDER-CONTRACT §1.7); ashbox sets those
# its transitions declare and says so for the others.
CINDER_VOLUME_STATUSES = (
    "creating", "available", "deleting", "error", "error_deleting", "error_managing",
    "managing", "attaching", "in-use", "detaching", "maintenance", "restoring-backup",
    "error_restoring", "reserved", "awaiting-transfer", "backing-up", "error_backing-up",
    "error_extending", "downloading", "uploading", "retyping", "extending",
)  # fmt: skip


def _nothing() -> None:
    return None


class VolumeOps:
    def __init__(
        self, db: Database, settings: Settings, *, task_queued: Callable[[], None] = _nothing
    ) -> None:
        self.db = db
        self.settings = settings
        self._task_queued = task_queued

    def create_volume(
        self,
        ctx: RequestContext,
        *,
        size: int,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        availability_zone: str | None = None,
        volume_type: str | None = None,
    ) -> VolumeRecord:
        """A new volume of `volume_type` (an id or a name; default: the default
        type). A type whose extra specs ashbox's backend does not meet leaves
        the volume in `error`, with a user message, as Cinder's scheduler does."""
        ctx.authorize("volume:create")
        if size < 1:
            raise InvalidInput(f"Invalid input received: Volume size {size} must be >= 1.")
        with self.db.transaction() as s:
            type_row = type_for_volume(s, ctx, self.settings, volume_type)
            volume = self.new_volume_row(
                s,
                ctx,
                size=size,
                name=name,
                description=description,
                metadata=metadata,
                availability_zone=availability_zone,
                volume_type=type_row,
            )
            capabilities = backend_capabilities(self.settings.volume_backend_name)
            missing = unmet(type_row.extra_specs, capabilities) if type_row is not None else None
            if missing is not None:
                reason = f"No valid backend was found: the backend does not meet {missing}."
                lifecycle.apply(s, VOLUME["schedule_failed"], volume.id, reason=reason)
                s.refresh(volume)
                log.info("volume not placed volume_id=%s reason=%s", volume.id, reason)
            else:
                self._queue(
                    s,
                    TaskKind.CREATE_VOLUME,
                    ResourceType.VOLUME,
                    volume.id,
                    zone=volume.availability_zone,
                )
                log.info("volume requested volume_id=%s size=%d", volume.id, size)
            record = volume_record(volume)
        self._task_queued()
        return record

    def new_volume_row(
        self,
        s: Session,
        ctx: RequestContext,
        *,
        size: int,
        name: str | None,
        description: str | None,
        metadata: dict[str, str] | None = None,
        availability_zone: str | None = None,
        volume_type: VolumeType | None = None,
    ) -> Volume:
        """Insert a `creating` volume whose file a worker will make under
        `volumes_dir`; QuotaExceeded if the project may not hold it."""
        quotas.reserve_volume(s, self.settings, ctx.project_id, size, volume_type)
        volume_id = str(uuid.uuid4())
        path = self.settings.resolved_volumes_dir / f"volume-{volume_id}.raw"
        volume = Volume(
            id=volume_id,
            project_id=ctx.project_id,
            user_id=ctx.user_id,
            display_name=name,
            display_description=description,
            size=size,
            path=str(path),
            managed_file=True,
            availability_zone=availability_zone or self.settings.availability_zone,
            bootable=False,
            volume_metadata=dict(metadata or {}),
            volume_type_id=volume_type.id if volume_type is not None else None,
            created_at=datetime.now(UTC),
        )
        lifecycle.insert(s, VOLUME["create"], volume)
        return volume

    def import_volume(
        self,
        ctx: RequestContext,
        *,
        path: str,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        host: str | None = None,
        volume_type: str | None = None,
    ) -> VolumeRecord:
        """Manage an existing file or device in place (Cinder's manage). The path is
        checked here against `volume_roots` and again, resolved, by the worker of
        the host that holds it: `host` (Cinder's `host@backend#pool` form), else
        this process's own, unless the path lies under `shared_volume_roots`."""
        ctx.authorize("volume_extension:volume_manage")
        settings = self.settings
        real = manageable_path(
            path, roots=settings.resolved_volume_roots, reserved=settings.reserved_paths
        )
        holder = holding_host(
            real,
            host_of_request(host) or settings.resolved_worker_name,
            shared=settings.resolved_shared_volume_roots,
        )
        with self.db.transaction() as s:
            if not service_can_run(s, settings, host=holder, zone=settings.availability_zone):
                raise InvalidInput(
                    f"Invalid input received: no backup service is up on host {holder} to "
                    f"manage {real}; name the host that holds it, or manage a path under "
                    "shared_volume_roots."
                    if holder is not None
                    else f"Invalid input received: no backup service is up to manage {real}."
                )
            existing = volume_rows.volume_with_path(s, str(real))
            if existing is not None:
                raise InvalidVolume(f"{real} is already managed as volume {existing.id}.")
            # Its size is known once its worker has looked: counted from then on.
            type_row = type_for_volume(s, ctx, settings, volume_type)
            if type_row is not None and type_rows.encryption_of(s, type_row.id) is not None:
                raise InvalidInput(
                    f"Invalid input received: volume type {type_row.name} is encrypted; a "
                    "volume managed in place would have no key in ashbox's key manager."
                )
            quotas.reserve_volume(s, settings, ctx.project_id, 0, type_row)
            volume = Volume(
                id=str(uuid.uuid4()),
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                display_name=name,
                display_description=description,
                size=0,
                path=str(real),
                managed_file=False,
                availability_zone=settings.availability_zone,
                host=holder,
                bootable=False,
                volume_metadata=dict(metadata or {}),
                volume_type_id=type_row.id if type_row is not None else None,
                created_at=datetime.now(UTC),
            )
            lifecycle.insert(s, VOLUME["manage"], volume)
            self._queue(s, TaskKind.MANAGE_VOLUME, ResourceType.VOLUME, volume.id, host=holder)
            log.info("volume manage requested volume_id=%s path=%s", volume.id, real)
            record = volume_record(volume)
        self._task_queued()
        return record

    def get_volume(self, ctx: RequestContext, volume_id: str) -> VolumeRecord:
        ctx.authorize("volume:get")
        with self.db.reading() as s:
            return volume_record(load_volume(s, ctx, volume_id))

    def list_volumes(self, ctx: RequestContext, query: ListQuery) -> tuple[list[VolumeRecord], int]:
        ctx.authorize("volume:get_all")
        with self.db.reading() as s:
            marker = load_volume(s, ctx, query.marker) if query.marker is not None else None
            project = None if (ctx.is_admin and query.all_tenants) else ctx.project_id
            rows, total = volume_rows.list_volumes(s, project, query, marker)
            return [volume_record(v) for v in rows], total

    def delete_volume(self, ctx: RequestContext, volume_id: str, *, force: bool = False) -> None:
        """Delete a volume; a worker removes its file if ashbox created it. Backups stay.
        With `force` (an admin's os-force_delete) also one in `error_deleting` or
        `error_backing-up`."""
        ctx.authorize(VOLUME_FORCE_DELETE_RULE if force else "volume:delete")
        with self.db.transaction() as s:
            volume = load_volume(s, ctx, volume_id, lock=True)
            has_snapshots = bool(snapshot_rows.snapshots_of_volume(s, volume_id))
            event = VOLUME["force_delete" if force else "delete"]
            if has_snapshots or not lifecycle.apply(s, event, volume_id):
                raise InvalidVolumeState(
                    "Volume status must be available or error or error_restoring or "
                    "error_extending or error_managing and must not be migrating, attached, "
                    "belong to a group, have snapshots, awaiting a transfer, or be "
                    "disassociated from snapshots after volume transfer."
                )
            self._queue(s, TaskKind.DELETE_VOLUME, ResourceType.VOLUME, volume_id, host=volume.host)
            log.info("volume delete requested volume_id=%s", volume_id)
        self._task_queued()

    def attach_volume(self, ctx: RequestContext, volume_id: str) -> None:
        """Mark the volume attached (`in-use`), as a hypervisor's attach does."""
        ctx.authorize("volume_extension:volume_actions:attach")
        with self.db.transaction() as s:
            volume = load_volume(s, ctx, volume_id, lock=True)
            if not lifecycle.apply(s, VOLUME["attach"], volume_id):
                raise InvalidVolumeState(
                    f"Volume status must be available to attach, but the status is {volume.status}."
                )

    def detach_volume(self, ctx: RequestContext, volume_id: str) -> None:
        ctx.authorize("volume_extension:volume_actions:detach")
        with self.db.transaction() as s:
            load_volume(s, ctx, volume_id, lock=True)
            if not lifecycle.apply(s, VOLUME["detach"], volume_id):
                raise InvalidVolumeState(
                    "Unable to detach volume. Volume status must be 'in-use' and "
                    "attach_status must be 'attached' to detach."
                )

    def reset_volume_status(self, ctx: RequestContext, volume_id: str, status: str) -> None:
        """An admin's reset (also of a volume a failed restore left `error_restoring`)."""
        ctx.authorize(VOLUME_RESET_RULE)
        if status not in CINDER_VOLUME_STATUSES:
            raise InvalidInput(
                f"Volume status: {status} is invalid, valid statuses are: {CINDER_VOLUME_STATUSES}."
            )
        try:
            transition = VOLUME.reset_to(status)
        except KeyError:
            targets = ", ".join(t.target for t in VOLUME if t.event.startswith("reset_"))
            raise InvalidVolume(
                f"ashbox resets a volume to one of {targets}; not to {status}."
            ) from None
        with self.db.transaction() as s:
            volume = load_volume(s, ctx, volume_id, lock=True)
            if not lifecycle.apply(s, transition, volume_id, reason="reset by an admin"):
                raise InvalidVolumeState(f"Volume status {volume.status} cannot be reset.")
        log.info("volume reset volume_id=%s from=%s to=%s", volume_id, volume.status, status)

    def _queue(
        self,
        s: Session,
        kind: TaskKind,
        resource_type: ResourceType,
        resource_id: str,
        *,
        payload: Mapping[str, Any] | None = None,
        host: str | None = None,
        zone: str | None = None,
    ) -> None:
        """Queue a task, pinned to run on a worker of `host` and `zone` (None: any)."""
        task_rows.add_task(
            s,
            kind,
            resource_type,
            resource_id,
            max_attempts=self.settings.max_attempts,
            payload=payload,
            pinned_host=host,
            pinned_zone=zone,
        )


def load_volume(s: Session, ctx: RequestContext, volume_id: str, *, lock: bool = False) -> Volume:
    """The volume the request may see (locked with `lock`); VolumeNotFound otherwise."""
    find = volume_rows.lock_volume if lock else volume_rows.get_volume
    volume = find(s, volume_id)
    if volume is None or scope(ctx) not in (None, volume.project_id):
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
        volume_type_id=v.volume_type_id,
        volume_type_name=v.volume_type.name if v.volume_type is not None else None,
        encryption_key_id=v.encryption_key_id,
    )
