"""Bringing backups back from the store alone, after the database was lost:
`ashbox repo recover` (docs/cli.md, "Repository maintenance").

Every backup whose manifest is in a container and which the database does
not know comes back `available`: from its record (docs/format.md, "Backup
record") where there is one, else from its manifest alone (owner
`--project`, name `recovered-<id>`). The index is then rebuilt from the
packs for the backups the database knows, so each one holds its blobs again.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC

from ashbox.config import Settings
from ashbox.containers import SERVICE
from ashbox.db import backups as backup_rows
from ashbox.db import lifecycle
from ashbox.db.backup_records import metadata_of_record, row_values
from ashbox.db.engine import Database
from ashbox.db.models import Backup
from ashbox.errors import CorruptData, NotFound
from ashbox.repository.rebuild import RebuildReport, rebuild_index
from ashbox.repository.repository import Repository
from ashbox.repository.stats import manifest_ids
from ashbox.transitions import BACKUP

log = logging.getLogger(__name__)

GiB = 1024**3
UNKNOWN_VOLUME = "00000000-0000-0000-0000-000000000000"


@dataclass
class RecoveryReport:
    container: str
    from_records: list[str] = field(default_factory=list)
    from_manifests: list[str] = field(default_factory=list)
    already_known: int = 0
    unreadable: list[str] = field(default_factory=list)
    rebuild: RebuildReport | None = None


def recover_backups(
    db: Database, settings: Settings, repo: Repository, *, project_id: str
) -> RecoveryReport:
    container = repo.container
    report = RecoveryReport(container)
    records = set(repo.record_ids())
    for backup_id in manifest_ids(repo):
        with db.transaction() as s:
            if backup_rows.get_backup_row(s, backup_id) is not None:
                report.already_known += 1
                continue
        try:
            backup, metadata = _from_record_or_manifest(
                repo, backup_id, records, settings, project_id
            )
        except (CorruptData, NotFound) as e:
            log.warning("backup not recovered backup_id=%s: %s", backup_id, e.message)
            report.unreadable.append(backup_id)
            continue
        with db.transaction() as s:
            lifecycle.insert(s, BACKUP["recover"], backup)
            backup_rows.set_metadata(s, backup_id, metadata)
        kind = report.from_records if backup_id in records else report.from_manifests
        kind.append(backup_id)
    with db.transaction() as s:
        for backup_id in report.from_records + report.from_manifests:
            row = backup_rows.get_backup(s, backup_id)
            parent_id = row.parent_id if row is not None else None
            if parent_id is not None and backup_rows.get_backup(s, parent_id) is not None:
                backup_rows.change_dependents(s, parent_id, +1)
        known = backup_rows.backup_ids_in_container(
            s, container, or_unset=container == settings.default_container
        )
    report.rebuild = rebuild_index(repo, backup_ids=known)
    log.info(
        "backups recovered container=%s from_records=%d from_manifests=%d",
        container,
        len(report.from_records),
        len(report.from_manifests),
    )
    return report


def _from_record_or_manifest(
    repo: Repository,
    backup_id: str,
    records: set[str],
    settings: Settings,
    project_id: str,
) -> tuple[Backup, dict[str, str]]:
    common = {
        "id": backup_id,
        "container": repo.container,
        "service": SERVICE,
        "service_metadata": f"backups/{backup_id}",
        "num_dependent_backups": 0,
        "host": settings.resolved_worker_name,
    }
    if backup_id in records:
        record = repo.read_record(backup_id)
        values = row_values(record)
        values["container"] = repo.container
        values["availability_zone"] = values["availability_zone"] or settings.availability_zone
        return Backup(**{**values, **common}), metadata_of_record(record)
    manifest = repo.read_manifest(backup_id)
    backup = Backup(
        **common,
        project_id=project_id,
        user_id=project_id,
        volume_id=UNKNOWN_VOLUME,
        display_name=f"recovered-{backup_id}",
        display_description="recovered from its manifest; its record was not in the store",
        parent_id=manifest.parent_id,
        size=max(1, math.ceil(manifest.volume_size / GiB)),
        availability_zone=settings.availability_zone,
        object_count=0,
        stored_size=0,
        created_at=manifest.created_at.astimezone(UTC),
        data_timestamp=manifest.created_at,
    )
    return backup, {}
