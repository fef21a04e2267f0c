"""Export and import of backup records (CINDER-CONTRACT §3.8, §1.6).

`backup_url` is Cinder's shape: base64 of the JSON of the backup's fields
(datetimes at second precision with a `Z`), with a `driver_info` that names
where the data is: the container and the id its manifest is stored under.
An import is checked here, in full, before anything changes (the record
decodes, has an `id` and a `size`, names no live backup, and its manifest is
in the store); the worker then takes the backup's references, copying the
manifest when the id changed, and marks it `available`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import datetime
from typing import Any

from ashbox.backups.common import backup_record, load_backup
from ashbox.backups.placement import require_service
from ashbox.backups.snapshots import SnapshotOps
from ashbox.containers import check_container, open_repository
from ashbox.db import backups as backup_rows
from ashbox.db import lifecycle, quotas
from ashbox.db.models import Backup
from ashbox.errors import (
    AshboxError,
    DatabaseUnavailable,
    InvalidBackup,
    InvalidBackupState,
    InvalidInput,
    StoreError,
)
from ashbox.records import BackupRecord, RequestContext
from ashbox.repository.repository import Repository
from ashbox.statuses import BackupStatus, ResourceType, TaskKind
from ashbox.storage import StoreOptions, open_store
from ashbox.storage.base import Store
from ashbox.transitions import BACKUP

log = logging.getLogger(__name__)

EXPORT_IMPORT_RULE = "backup:export-import"
IMPORT_RULE = "backup:backup-import"
BACKUP_SERVICE = "cinder.backup.drivers.ashbox.AshboxBackupDriver"
SERVICE_PREFIX = "cinder.backup.drivers.ashbox"
IMPORTING_VOLUME_ID = "00000000-0000-0000-0000-000000000000"


class RecordOps(SnapshotOps):
    _store: Store | None = None

    def repository(self, container: str) -> Repository:
        """The container's repository, to read (RepositoryNotFound if there is none)."""
        if self._store is None:
            self._store = open_store(self.settings.resolved_store, StoreOptions.of(self.settings))
        return open_repository(self.settings, self._store, self.db, container, create=False)

    def export_record(self, ctx: RequestContext, backup_id: str) -> tuple[str, str]:
        """(backup_service, backup_url) of an available backup."""
        ctx.authorize(EXPORT_IMPORT_RULE)
        with self.db.reading() as s:
            backup = load_backup(s, ctx, backup_id)
            if backup.status != BackupStatus.AVAILABLE:
                raise InvalidBackupState(
                    f"Backup status must be available and not {backup.status}."
                )
            metadata = backup_rows.metadata_of(s, [backup_id])[backup_id]
            fields = _exported_fields(backup, metadata, self.settings.default_container)
        url = base64.b64encode(json.dumps(fields).encode()).decode()
        return BACKUP_SERVICE, url

    def import_record(
        self, ctx: RequestContext, backup_service: str, backup_url: str
    ) -> BackupRecord:
        ctx.authorize(IMPORT_RULE)
        if not backup_service.startswith(SERVICE_PREFIX):
            raise InvalidInput(
                f"Invalid input received: Backup service {backup_service} is not "
                f"{SERVICE_PREFIX}; ashbox imports its own records only."
            )
        record = _decoded(backup_url)
        backup_id, container, source_id = _where(record, self.settings.default_container)
        try:
            self.repository(container).read_manifest(source_id)
        except (StoreError, DatabaseUnavailable):
            raise  # not the record's fault: 503, and the client may try again
        except AshboxError as e:
            raise InvalidBackup(
                f"The manifest of backup record {backup_id} cannot be read from container "
                f"{container}: {e.message}"
            ) from e
        with self.db.transaction() as s:
            require_service(s, self.settings, host=None, zone=None)
            existing = backup_rows.get_backup_row(s, backup_id)
            if existing is not None and not existing.deleted:
                raise InvalidBackupState("Backup already exists in database.")
            quotas.reserve_backup(s, self.settings, ctx.project_id, record["size"])
            values: dict[str, Any] = {
                "project_id": ctx.project_id,
                "user_id": ctx.user_id,
                "volume_id": IMPORTING_VOLUME_ID,
                "size": record["size"],
                "container": container,
                "display_name": None,
                "display_description": None,
                "parent_id": None,
                "fail_reason": None,
            }
            if existing is None:
                backup = Backup(
                    id=backup_id, object_count=0, num_dependent_backups=0, stored_size=0, **values
                )
                lifecycle.insert(s, BACKUP["import"], backup)
            else:
                lifecycle.apply(s, BACKUP["import"], backup_id, values=values)
            backup_rows.set_metadata(s, backup_id, {})
            self._queue(
                s,
                TaskKind.IMPORT_BACKUP,
                ResourceType.BACKUP,
                backup_id,
                payload={"record": record, "source_id": source_id},
            )
            log.info("backup import requested backup_id=%s source=%s", backup_id, source_id)
            s.expire_all()
            imported = backup_record(s, load_backup(s, ctx, backup_id))
        self._task_queued()
        return imported


def _exported_fields(backup: Backup, metadata: dict[str, str], default: str) -> dict[str, Any]:
    container = backup.container or default
    return {
        # ashbox's own, where Cinder's record has its driver's: read back by an import.
        "driver_info": {
            "container": container,
            "backup_id": backup.id,
            "volume_type_id": backup.volume_type_id,
        },
        "id": backup.id,
        "user_id": backup.user_id,
        "project_id": backup.project_id,
        "volume_id": backup.volume_id,
        "host": backup.host,
        "availability_zone": backup.availability_zone,
        "container": container,
        "parent_id": backup.parent_id,
        "status": backup.status,
        "fail_reason": backup.fail_reason,
        "size": backup.size,
        "display_name": backup.display_name,
        "display_description": backup.display_description,
        "service_metadata": backup.service_metadata,
        "service": BACKUP_SERVICE,
        "object_count": backup.object_count,
        "temp_volume_id": backup.temp_volume_id,
        "temp_snapshot_id": backup.temp_snapshot_id,
        "num_dependent_backups": backup.num_dependent_backups,
        "snapshot_id": backup.snapshot_id,
        "data_timestamp": _isotime(backup.data_timestamp),
        "restore_volume_id": backup.restore_volume_id,
        "metadata": metadata,
        "encryption_key_id": backup.encryption_key_id,
        "created_at": _isotime(backup.created_at),
        "updated_at": _isotime(backup.updated_at),
        "deleted_at": None,
        "deleted": False,
    }


def _isotime(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def _decoded(backup_url: str) -> dict[str, Any]:
    try:
        raw = base64.b64decode(backup_url.encode(), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise InvalidInput("Invalid input received: Can't decode backup record.") from None
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("Invalid input received: Can't parse backup record.") from None
    if not isinstance(record, dict):
        raise InvalidInput("Invalid input received: Can't parse backup record.")
    if "id" not in record:
        raise InvalidInput("Invalid input received: Provided backup record is missing an id")
    if "size" not in record:
        raise InvalidInput(
            "Invalid input received: Provided backup record is missing size attribute"
        )
    return record


def _where(record: dict[str, Any], default: str) -> tuple[str, str, str]:
    """The record's (backup id, container, id its manifest is stored under)."""
    backup_id = record["id"]
    info = record.get("driver_info") or {}
    size = record["size"]
    container = (
        info.get("container") or record.get("container") or default
        if isinstance(info, dict)
        else None
    )
    source_id = info.get("backup_id", backup_id) if isinstance(info, dict) else None
    if not (
        _is_name(backup_id)
        and _is_name(source_id)
        and isinstance(container, str)
        and container
        and isinstance(size, int)
        and not isinstance(size, bool)
        and size >= 0
    ):
        raise InvalidInput("Invalid input received: Can't parse backup record.")
    assert isinstance(source_id, str)
    check_container(container)
    return backup_id, container, source_id


def _is_name(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= 36
        and "/" not in value
        and "\0" not in value
        and not value.startswith(".")
    )
