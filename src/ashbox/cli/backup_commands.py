"""`ashbox backup create|show|list|restore|delete|update|reset-status|force-delete|
export|import` (docs/cli.md, "Backups").

`--wait` asks for the backup until its status leaves creating, restoring or
deleting, and draws the progress of its task. The service holds each GET
while the backup is busy, up to `Context.wait_seconds` (`X-Ashbox-Wait`,
docs/api.md), so the command ends as the task does; a service that answers
at once is asked again every `Context.poll_seconds`.
"""

from __future__ import annotations

import argparse

from ashbox.cli.client import ApiError, Backup
from ashbox.cli.context import Context
from ashbox.cli.exit_codes import ExitCode
from ashbox.cli.output import (
    BACKUP_COLUMNS,
    BACKUP_FIELDS,
    VOLUME_FIELDS,
    Format,
    backup_view,
    render_list,
    render_object,
    volume_view,
)
from ashbox.cli.progress import ProgressBar
from ashbox.cli.volume_commands import check_volume, wait_for_volume
from ashbox.statuses import BackupStatus

_FAILED = frozenset({BackupStatus.ERROR, BackupStatus.ERROR_DELETING})


class StoppedWaiting(Exception):
    """Ctrl-C while waiting: the operation goes on in the service."""

    def __init__(self, backup_id: str) -> None:
        super().__init__(f"stopped waiting; the operation goes on: ashbox backup show {backup_id}")
        self.backup_id = backup_id


def create(ctx: Context, args: argparse.Namespace) -> ExitCode:
    volume = ctx.client.find_volume(args.volume)
    snapshot_id = ctx.client.find_snapshot(args.snapshot)["id"] if args.snapshot else None
    backup_id = ctx.client.create_backup(
        volume["id"],
        name=args.name,
        container=args.container,
        incremental=args.incremental,
        force=args.force,
        snapshot_id=snapshot_id,
    )
    if args.wait:
        backup = wait_for_backup(ctx, backup_id, BackupStatus.CREATING)
        if backup is None:
            raise ApiError(404, f"Backup {backup_id} could not be found.")
    else:
        backup = ctx.client.get_backup(backup_id)
    ctx.print(render_object(backup_view(backup), Format(args.format), BACKUP_FIELDS))
    return _check_backup(ctx, backup) if args.wait else ExitCode.OK


def show(ctx: Context, args: argparse.Namespace) -> ExitCode:
    backup = ctx.client.find_backup(args.backup)
    ctx.print(render_object(backup_view(backup), Format(args.format), BACKUP_FIELDS))
    return ExitCode.OK


def list_(ctx: Context, args: argparse.Namespace) -> ExitCode:
    backups = [backup_view(b) for b in ctx.client.list_backups()]
    ctx.print(render_list(backups, Format(args.format), BACKUP_COLUMNS))
    return ExitCode.OK


def restore(ctx: Context, args: argparse.Namespace) -> ExitCode:
    """Restores, then shows the target volume (new or given), which has the `id` and `path`."""
    backup_id = ctx.client.find_backup(args.backup)["id"]
    volume_id = ctx.client.find_volume(args.volume)["id"] if args.volume else None
    restore = ctx.client.restore_backup(backup_id, volume_id=volume_id, name=args.name)
    code = ExitCode.OK
    if args.wait:
        backup = wait_for_backup(ctx, backup_id, BackupStatus.RESTORING)
        if backup is not None and backup["status"] in _FAILED:
            code = _check_backup(ctx, backup)
    volume = ctx.client.get_volume(restore["volume_id"])
    if args.wait:
        volume = wait_for_volume(ctx, volume)
    ctx.print(render_object(volume_view(volume), Format(args.format), VOLUME_FIELDS))
    if args.wait and code is ExitCode.OK:
        code = check_volume(ctx, volume)
        if code is not ExitCode.OK:
            reason = ctx.client.get_backup(backup_id).get("fail_reason") or "no reason given"
            ctx.error(f"the restore of backup {backup_id} failed: {reason}")
    return code


def delete(ctx: Context, args: argparse.Namespace) -> ExitCode:
    backup_id = ctx.client.find_backup(args.backup)["id"]
    ctx.client.delete_backup(backup_id)
    if not args.wait:
        return ExitCode.OK
    backup = wait_for_backup(ctx, backup_id, BackupStatus.DELETING)
    if backup is None or backup["status"] == BackupStatus.DELETED:
        return ExitCode.OK
    return _check_backup(ctx, backup)


def update(ctx: Context, args: argparse.Namespace) -> ExitCode:
    backup_id = ctx.client.find_backup(args.backup)["id"]
    changes: dict[str, object] = {}
    if args.name is not None:
        changes["name"] = args.name
    if args.description is not None:
        changes["description"] = args.description
    if args.metadata is not None:
        changes["metadata"] = dict(args.metadata)
    if not changes:
        ctx.error("give --name, --description or --metadata")
        return ExitCode.USAGE
    ctx.client.update_backup(backup_id, changes)
    backup = ctx.client.get_backup(backup_id)
    ctx.print(render_object(backup_view(backup), Format(args.format), BACKUP_FIELDS))
    return ExitCode.OK


def reset_status(ctx: Context, args: argparse.Namespace) -> ExitCode:
    backup_id = ctx.client.find_backup(args.backup)["id"]
    ctx.client.backup_action(backup_id, "os-reset_status", {"status": args.state})
    return ExitCode.OK


def force_delete(ctx: Context, args: argparse.Namespace) -> ExitCode:
    backup_id = ctx.client.find_backup(args.backup)["id"]
    ctx.client.backup_action(backup_id, "os-force_delete", {})
    if args.wait:
        backup = wait_for_backup(ctx, backup_id, BackupStatus.DELETING)
        if backup is not None and backup["status"] != BackupStatus.DELETED:
            return _check_backup(ctx, backup)
    return ExitCode.OK


def export(ctx: Context, args: argparse.Namespace) -> ExitCode:
    record = ctx.client.export_backup(ctx.client.find_backup(args.backup)["id"])
    ctx.print(render_object(record, Format(args.format), ("backup_service", "backup_url")))
    return ExitCode.OK


def import_(ctx: Context, args: argparse.Namespace) -> ExitCode:
    backup_id = ctx.client.import_backup(args.backup_service, args.backup_url)
    if args.wait:
        backup = wait_for_backup(ctx, backup_id, BackupStatus.CREATING)
        if backup is None:
            raise ApiError(404, f"Backup {backup_id} could not be found.")
    else:
        backup = ctx.client.get_backup(backup_id)
    ctx.print(render_object(backup_view(backup), Format(args.format), BACKUP_FIELDS))
    return _check_backup(ctx, backup) if args.wait else ExitCode.OK


def wait_for_backup(ctx: Context, backup_id: str, busy: BackupStatus) -> Backup | None:
    """The backup once its status is no longer `busy`; None once it is gone (404)."""
    bar = ProgressBar(ctx.stderr, interactive=ctx.interactive, clock=ctx.clock)
    try:
        while True:
            try:
                backup, held = ctx.client.wait_backup(backup_id, ctx.wait_seconds)
            except ApiError as exc:
                if exc.status_code == 404 and busy is BackupStatus.DELETING:
                    bar.finish(BackupStatus.DELETED, complete=True)
                    return None
                raise
            status = backup["status"]
            if status != busy:
                bar.finish(status, complete=status not in _FAILED)
                return backup
            done_bytes = backup.get("os-backup-progress:done_bytes")
            shown = f"{status} (queued)" if backup.get("os-backup-progress:queued") else status
            bar.update(shown, done_bytes, backup.get("os-backup-progress:total_bytes"))
            if not held:
                ctx.sleep(ctx.poll_seconds)
    except KeyboardInterrupt:
        ctx.stderr.write("\n")
        raise StoppedWaiting(backup_id) from None


def _check_backup(ctx: Context, backup: Backup) -> ExitCode:
    if backup["status"] in _FAILED:
        reason = backup.get("fail_reason") or "no reason given"
        ctx.error(f"backup {backup['id']} ended in status {backup['status']}: {reason}")
        return ExitCode.FAILED
    return ExitCode.OK
