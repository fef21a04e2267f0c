"""Response bodies of backups, restores, volumes and messages (CINDER-CONTRACT §1.4,
§1.7, §1.9).

Cinder's `cinder/api/views/backups.py`, `cinder/api/v3/views/backups.py`,
`cinder/api/v3/views/volumes.py` and `cinder/api/v3/views/messages.py`.
ashbox's own keys (`os-backup-progress:done_bytes`/`total_bytes`,
`os-backup-stats:stored_size` on backup detail, and `os-vol-ashbox-attr:path`
on volume detail for admins) are added only for a request that sends
`X-Ashbox-Extras: true`: clients that validate Cinder's schemas (Tempest)
reject any other key. Every item of a list carries the same key set, but for
a message's optional resource keys, which Cinder leaves out when empty.
"""

from __future__ import annotations

from starlette.requests import Request

from ashbox.api import microversion as mv
from ashbox.api.links import format_time, resource_links
from ashbox.records import (
    BackupRecord,
    MessageRecord,
    RequestContext,
    RestoreRecord,
    SnapshotRecord,
    VolumeRecord,
)

JSONDict = dict[str, object]

FIXED_KEY_ID = "00000000-0000-0000-0000-000000000000"
# Cinder's volume view shows its manage statuses as these (CINDER-CONTRACT §1.7).
_SHOWN_VOLUME_STATUS = {"managing": "creating", "error_managing": "error"}
BACKUPS = "backups"
VOLUMES = "volumes"
MESSAGES = "messages"
EXTRAS_HEADER = "X-Ashbox-Extras"


def wants_extras(request: Request) -> bool:
    """Whether the request opted in to ashbox's own keys (docs/api.md, "Extras")."""
    return request.headers.get(EXTRAS_HEADER, "").lower() in ("1", "true", "yes")


def backup_summary(request: Request, backup: BackupRecord) -> JSONDict:
    return {
        "id": backup.id,
        "name": backup.name,
        "links": resource_links(request, BACKUPS, backup.id),
    }


def backup_detail(
    request: Request, backup: BackupRecord, ctx: RequestContext, version: mv.APIVersion
) -> JSONDict:
    progress = backup.progress
    body: JSONDict = {
        "id": backup.id,
        "status": backup.status,
        "size": backup.size,
        "object_count": backup.object_count,
        "availability_zone": backup.availability_zone,
        "container": backup.container,
        "created_at": format_time(backup.created_at),
        "updated_at": format_time(backup.updated_at),
        "name": backup.name,
        "description": backup.description,
        "fail_reason": backup.fail_reason,
        "volume_id": backup.volume_id,
        "links": resource_links(request, BACKUPS, backup.id),
        "is_incremental": backup.is_incremental,
        "has_dependent_backups": backup.has_dependent_backups,
        "snapshot_id": backup.snapshot_id,
        "data_timestamp": format_time(backup.data_timestamp),
    }
    if wants_extras(request):
        body["os-backup-progress:done_bytes"] = progress.done_bytes if progress else None
        body["os-backup-progress:total_bytes"] = progress.total_bytes if progress else None
        body["os-backup-progress:queued"] = backup.queued
        body["os-backup-stats:stored_size"] = backup.stored_size
    if version.at_least(mv.BACKUP_METADATA):
        body["metadata"] = dict(backup.metadata)
    key_id = backup.encryption_key_id
    if version.at_least(mv.ENCRYPTION_KEY_ID_IN_DETAILS) and key_id and key_id != FIXED_KEY_ID:
        body["encryption_key_id"] = key_id
    if version.at_least(mv.BACKUP_PROJECT) and ctx.allows(
        "backup:backup_project_attribute", backup.project_id
    ):
        body["os-backup-project-attr:project_id"] = backup.project_id
        if version.at_least(mv.BACKUP_PROJECT_USER_ID):
            body["user_id"] = backup.user_id
    return body


def restore_view(restore: RestoreRecord) -> JSONDict:
    return {
        "backup_id": restore.backup_id,
        "volume_id": restore.volume_id,
        "volume_name": restore.volume_name,
    }


def snapshot_view(
    snapshot: SnapshotRecord, ctx: RequestContext, version: mv.APIVersion, *, extended: bool
) -> JSONDict:
    """A snapshot: Cinder's nine keys, those of `version`, and with `extended`
    (show and list detail) the two os-extended-snapshot-attributes keys."""
    body: JSONDict = {
        "id": snapshot.id,
        "created_at": format_time(snapshot.created_at),
        "updated_at": format_time(snapshot.updated_at),
        "name": snapshot.name,
        "description": snapshot.description,
        "volume_id": snapshot.volume_id,
        "status": snapshot.status,
        "size": snapshot.size,
        "metadata": dict(snapshot.metadata),
    }
    if version.at_least(mv.GROUP_SNAPSHOTS):
        body["group_snapshot_id"] = None
    if version.at_least(mv.SNAPSHOT_LIST_USER_ID):
        body["user_id"] = snapshot.user_id
    if version.at_least(mv.VOLUME_CONSUMES_QUOTA):
        body["consumes_quota"] = True
    if extended:
        done = snapshot.status not in ("creating", "error")
        body["os-extended-snapshot-attributes:progress"] = "100%" if done else "0%"
        body["os-extended-snapshot-attributes:project_id"] = snapshot.project_id
    return body


def volume_summary(request: Request, volume: VolumeRecord) -> JSONDict:
    return {
        "id": volume.id,
        "name": volume.name,
        "links": resource_links(request, VOLUMES, volume.id),
    }


def volume_detail(
    request: Request,
    volume: VolumeRecord,
    ctx: RequestContext,
    version: mv.APIVersion,
    *,
    extended: bool = True,
) -> JSONDict:
    """A volume as show and list/detail give it; `extended` False: as create and
    manage answer, without the `os-vol-*-attr` keys (Cinder adds those to show and
    detail only)."""
    body: JSONDict = {
        "id": volume.id,
        "status": _SHOWN_VOLUME_STATUS.get(volume.status, volume.status),
        "size": volume.size,
        "availability_zone": volume.availability_zone,
        "created_at": format_time(volume.created_at),
        "updated_at": format_time(volume.updated_at),
        "name": volume.name,
        "description": volume.description,
        "volume_type": volume.volume_type_name,
        "snapshot_id": None,
        "source_volid": None,
        "metadata": dict(volume.metadata),
        "links": resource_links(request, VOLUMES, volume.id),
        "user_id": volume.user_id,
        "bootable": "true" if volume.bootable else "false",
        "encrypted": volume.encryption_key_id is not None,
        "replication_status": "disabled",
        "consistencygroup_id": None,
        "multiattach": False,
        "attachments": [],
    }
    if ctx.is_admin:
        body["migration_status"] = None
        if wants_extras(request):
            body["os-vol-ashbox-attr:path"] = volume.path
    if extended:
        body.update(_extended_attributes(volume, ctx))
    if version.at_least(mv.VOLUME_GROUP):
        body["group_id"] = None
    if ctx.is_admin and version.at_least(mv.VOLUME_PROVIDER_ID):
        body["provider_id"] = None
    if version.at_least(mv.VOLUME_SHARED_TARGETS):
        body["shared_targets"] = False
        body["service_uuid"] = None
    if ctx.is_admin and version.at_least(mv.VOLUME_CLUSTER_NAME):
        body["cluster_name"] = None
    if version.at_least(mv.VOLUME_TYPE_ID_IN_DETAILS):
        body["volume_type_id"] = volume.volume_type_id
    if version.at_least(mv.ENCRYPTION_KEY_ID_IN_DETAILS):
        body["encryption_key_id"] = volume.encryption_key_id
    if version.at_least(mv.VOLUME_CONSUMES_QUOTA):
        body["consumes_quota"] = True
    return body


def message_view(request: Request, message: MessageRecord) -> JSONDict:
    """A message, in show and list alike; `resource_type` and `resource_uuid`
    only when set, as Cinder leaves them out."""
    body: JSONDict = {
        "id": message.id,
        "event_id": message.event_id,
        "user_message": message.user_message,
        "message_level": message.message_level,
        "created_at": format_time(message.created_at),
        "guaranteed_until": format_time(message.guaranteed_until),
        "request_id": message.request_id,
        "links": resource_links(request, MESSAGES, message.id),
    }
    if message.resource_type:
        body["resource_type"] = message.resource_type
    if message.resource_uuid:
        body["resource_uuid"] = message.resource_uuid
    return body


def _extended_attributes(volume: VolumeRecord, ctx: RequestContext) -> JSONDict:
    """The `os-vol-*-attr` keys this caller's policy lets it see."""
    body: JSONDict = {}
    if ctx.allows("volume_extension:volume_host_attribute", volume.project_id):
        body["os-vol-host-attr:host"] = None
    if ctx.allows("volume_extension:volume_mig_status_attribute", volume.project_id):
        body["os-vol-mig-status-attr:migstat"] = None
        body["os-vol-mig-status-attr:name_id"] = None
    if ctx.allows("volume_extension:volume_tenant_attribute", volume.project_id):
        body["os-vol-tenant-attr:tenant_id"] = volume.project_id
    return body
