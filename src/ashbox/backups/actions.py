"""The backup actions beside create, restore and delete: update and reset status
(CINDER-CONTRACT §1.2 rows 5 and 10, §2.5).

A reset is never a silent no-op (Cinder's X1 can be): a reset to `available`
is refused with the reason unless the backup's manifest is in the store and
every blob it names is in the index; a reset that moves a running create or
restore away from its status cancels it (B6, R4), and its volume's status is
settled in the same transaction.
"""

from __future__ import annotations

import logging

from ashbox.backups.common import (
    UNCHANGED,
    backup_record,
    display_fields,
    load_backup,
    settle_cancelled,
)
from ashbox.backups.records import RecordOps
from ashbox.db import backups as backup_rows
from ashbox.db import lifecycle
from ashbox.errors import AshboxError, InvalidBackup, InvalidBackupState
from ashbox.records import BackupRecord, RequestContext
from ashbox.statuses import BackupStatus
from ashbox.transitions import BACKUP

log = logging.getLogger(__name__)

RESET_RULE = "volume_extension:backup_admin_actions:reset_status"
FORCE_DELETE_RULE = "volume_extension:backup_admin_actions:force_delete"
RESET_STATUSES = (BackupStatus.AVAILABLE, BackupStatus.ERROR)


class BackupActions(RecordOps):
    def update_backup(
        self,
        ctx: RequestContext,
        backup_id: str,
        *,
        name: str | object | None = UNCHANGED,
        description: str | object | None = UNCHANGED,
        metadata: dict[str, str] | None = None,
    ) -> BackupRecord:
        """Rename, describe, or replace the metadata of a backup in any status."""
        ctx.authorize("backup:update")
        fields = display_fields(name=name, description=description)
        with self.db.transaction() as s:
            load_backup(s, ctx, backup_id, lock=True)
            if fields:
                backup_rows.set_backup_fields(s, backup_id, **fields)
            if metadata is not None:
                backup_rows.set_metadata(s, backup_id, metadata)
            s.expire_all()
            return backup_record(s, load_backup(s, ctx, backup_id))

    def reset_backup_status(self, ctx: RequestContext, backup_id: str, status: str) -> None:
        ctx.authorize(RESET_RULE)
        if status not in RESET_STATUSES:
            raise InvalidBackup(
                f"Backup status: {status} is invalid, valid statuses are: "
                f"{[str(s) for s in RESET_STATUSES]}."
            )
        with self.db.reading() as s:
            backup = load_backup(s, ctx, backup_id)
            container = backup.container or self.settings.default_container
        if status == BackupStatus.AVAILABLE:
            reason = self._incomplete(container, backup_id)
            if reason is not None:
                raise InvalidBackupState(
                    f"Backup {backup_id} cannot be available: {reason.rstrip('.')}."
                )
        with self.db.transaction() as s:
            backup = load_backup(s, ctx, backup_id, lock=True)
            transition = BACKUP.reset_to(status)
            if backup.status not in transition.source:
                raise InvalidBackupState(
                    f"Backup status {backup.status} cannot be reset: its delete is under way."
                )
            lifecycle.apply(s, transition, backup_id, reason=f"reset to {status} by an admin")
            settle_cancelled(s, backup, new_status=status, max_attempts=self.settings.max_attempts)
            if (
                backup.status == BackupStatus.CREATING
                and status == BackupStatus.AVAILABLE
                and backup.parent_id is not None
            ):
                backup_rows.change_dependents(s, backup.parent_id, +1)
        log.info("backup reset backup_id=%s from=%s to=%s", backup_id, backup.status, status)

    def _incomplete(self, container: str, backup_id: str) -> str | None:
        try:
            return self.repository(container).incomplete(backup_id)
        except AshboxError as e:
            return e.message
