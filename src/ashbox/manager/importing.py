"""import_backup: make an imported record a backup of this deployment (row I1).

The record's manifest is in the store (the API checked). If this
deployment's index lacks its blobs (the record comes from another deployment
with its own database), the container's index is rebuilt from its packs,
for the backups this database knows. The backup then takes references on
its blobs; under a new id its manifest is copied first, so the two backups
share the data and either can be deleted first.
"""

from __future__ import annotations

import logging
from typing import Any

from ashbox import faults
from ashbox.containers import SERVICE
from ashbox.db import backups as backup_rows
from ashbox.db import lifecycle, stored_bytes
from ashbox.db.backup_records import record_of
from ashbox.manager.job import Job
from ashbox.repository.rebuild import rebuild_index
from ashbox.transitions import BACKUP

log = logging.getLogger(__name__)


def run_import(job: Job) -> None:
    backup_id = job.resource_id
    record: dict[str, Any] = dict(job.payload["record"])
    source_id = str(job.payload["source_id"])
    with job.transaction() as s:
        backup = backup_rows.get_backup(s, backup_id)
        if not job.proceeds(s, backup):
            return
        assert backup is not None
        container = backup.container or job.settings.default_container
        known = backup_rows.backup_ids_in_container(
            s, container, or_unset=container == job.settings.default_container
        )
    repo = job.repository(container)
    manifest = repo.read_manifest(source_id)
    ids = sorted(manifest.blob_ids())
    if len(repo.index.locate(container, ids)) < len(ids):
        report = rebuild_index(repo, backup_ids=known)
        log.info("index rebuilt for an import backup_id=%s packs=%d", backup_id, report.packs)
    if source_id != backup_id:
        repo.copy_manifest(source_id, backup_id)
    else:
        repo.reference(backup_id, manifest)
    faults.point("import.referenced")
    # The copy holds a key of its own (§3.9): deleting either must leave the other's.
    source_key = record.get("encryption_key_id")
    key_id = job.keys.clone(source_key) if isinstance(source_key, str) else None
    with job.transaction() as s:
        parent_id = record.get("parent_id")
        parent = backup_rows.get_backup(s, parent_id) if isinstance(parent_id, str) else None
        known_parent = parent.id if parent is not None else None  # rows expire below
        values: dict[str, Any] = {
            "volume_id": str(record.get("volume_id") or backup.volume_id),
            "display_name": record.get("display_name"),
            "display_description": record.get("display_description"),
            "parent_id": known_parent,
            "snapshot_id": record.get("snapshot_id"),
            "availability_zone": record.get("availability_zone") or job.settings.availability_zone,
            "object_count": int(record.get("object_count") or 0),
            "host": job.worker_host,
            "service": SERVICE,
            "service_metadata": f"backups/{backup_id}",
            # Counted here, within the project: the record's figure is the exporter's.
            "stored_size": stored_bytes.of_backup(s, backup_id, backup.project_id),
            "encryption_key_id": key_id,
            "volume_type_id": _source_type(record),
        }
        backup_rows.set_backup_fields(s, backup_id, **values)
        metadata = record.get("metadata")
        if isinstance(metadata, dict):
            backup_rows.set_metadata(s, backup_id, {str(k): str(v) for k, v in metadata.items()})
        s.expire_all()
        row = backup_rows.get_backup(s, backup_id)
        stored = record_of(s, row) if row is not None else None
    if stored is not None:
        repo.put_record(stored)
    with job.transaction() as s:
        if lifecycle.apply(s, BACKUP["import_done"], backup_id) and known_parent is not None:
            backup_rows.change_dependents(s, known_parent, +1)
        job.finish(s)
    log.info("backup imported backup_id=%s source=%s", backup_id, source_id)


def fail_import(job: Job, reason: str) -> None:
    with job.transaction() as s:
        lifecycle.apply(s, BACKUP["import_failed"], job.resource_id, reason=reason)
        job.finish(s, failed=reason)
    log.info("backup import failed backup_id=%s reason=%s", job.resource_id, reason)


def _source_type(record: dict[str, Any]) -> str | None:
    """The type the exported backup's volume had (§3.9), if the record names it."""
    info = record.get("driver_info")
    found = info.get("volume_type_id") if isinstance(info, dict) else None
    return found if isinstance(found, str) else None
