"""delete_backup: drop a backup's references and reclaim its storage (rows D2, D5)."""

from __future__ import annotations

import logging

from ashbox import faults
from ashbox.db import backups as backup_rows
from ashbox.db import lifecycle
from ashbox.manager.job import Job
from ashbox.transitions import BACKUP

log = logging.getLogger(__name__)


def run_delete(job: Job) -> None:
    backup_id = job.resource_id
    with job.transaction() as s:
        backup = backup_rows.get_backup(s, backup_id)
        if not job.proceeds(s, backup):
            return
        assert backup is not None
        container = backup.container or job.settings.default_container
        parent_id, key_id = backup.parent_id, backup.encryption_key_id
    job.repository(container).delete(backup_id)
    if key_id is not None:
        job.keys.delete(key_id)  # its clone of its volume's key goes with it (§3.9)
    faults.point("delete.data_deleted")
    with job.transaction() as s:
        if lifecycle.apply(s, BACKUP["delete_done"], backup_id) and parent_id is not None:
            backup_rows.change_dependents(s, parent_id, -1)
        job.finish(s)
    log.info("backup deleted backup_id=%s", backup_id)


def fail_delete(job: Job, reason: str) -> None:
    """D5: the backup goes to error with the reason; it can be deleted again."""
    with job.transaction() as s:
        lifecycle.apply(s, BACKUP["delete_failed"], job.resource_id, reason=reason)
        job.finish(s, failed=reason)
    log.info("backup delete failed backup_id=%s reason=%s", job.resource_id, reason)
