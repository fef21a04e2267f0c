"""delete_backup: drop a backup's references and reclaim its storage (rows D2, D3, D5)."""

from __future__ import annotations

import logging

from ashbox.db import backups as backup_rows
from ashbox.manager.job import Job
from ashbox.statuses import BackupStatus

log = logging.getLogger(__name__)


def run_delete(job: Job) -> None:
    with job.db.transaction() as s:
        backup = backup_rows.get_backup(s, job.backup_id)
        if backup is None:
            return
        if backup.status != BackupStatus.DELETING:
            # D3
            backup_rows.swap_backup_status(
                s,
                job.backup_id,
                [backup.status],
                BackupStatus.ERROR,
                fail_reason=f"Backup status must be deleting, but it is {backup.status}.",
            )
            return
        container = backup.container or job.settings.default_container
        parent_id = backup.parent_id
    repo = job.repository(container)
    repo.discard_incomplete(job.backup_id)
    repo.delete(job.backup_id)
    with job.db.transaction() as s:
        backup_rows.mark_backup_deleted(s, job.backup_id)
        if parent_id is not None:
            backup_rows.change_dependents(s, parent_id, -1)
    log.info("backup deleted backup_id=%s", job.backup_id)


def fail_delete(job: Job, reason: str) -> None:
    """D5: the backup goes to error with the reason; it can be deleted again."""
    with job.db.transaction() as s:
        backup_rows.swap_backup_status(
            s,
            job.backup_id,
            [BackupStatus.DELETING],
            BackupStatus.ERROR,
            fail_reason=reason[:255],
        )
    log.info("backup delete failed backup_id=%s reason=%s", job.backup_id, reason)
