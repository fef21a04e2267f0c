"""`ashbox snapshot create|show|list|update|delete|reset-status` (docs/cli.md, "Snapshots")."""

from __future__ import annotations

import argparse

from ashbox.cli.client import Snapshot
from ashbox.cli.context import Context
from ashbox.cli.exit_codes import ExitCode
from ashbox.cli.output import Format, render_list, render_object

SNAPSHOT_FIELDS = ("id", "name", "status", "volume_id", "size", "created_at")
SNAPSHOT_COLUMNS = (
    ("ID", "id"),
    ("Name", "name"),
    ("Status", "status"),
    ("Size", "size"),
    ("Volume ID", "volume_id"),
    ("Created At", "created_at"),
)
_BUSY = frozenset({"creating", "deleting"})


def create(ctx: Context, args: argparse.Namespace) -> ExitCode:
    volume = ctx.client.find_volume(args.volume)
    snapshot = ctx.client.create_snapshot(volume["id"], args.name, force=args.force)
    return _show(ctx, _waited(ctx, snapshot) if args.wait else snapshot, args, check=args.wait)


def show(ctx: Context, args: argparse.Namespace) -> ExitCode:
    return _show(ctx, ctx.client.find_snapshot(args.snapshot), args)


def list_(ctx: Context, args: argparse.Namespace) -> ExitCode:
    snapshots = [dict(s) for s in ctx.client.list_snapshots()]
    ctx.print(render_list(snapshots, Format(args.format), SNAPSHOT_COLUMNS))
    return ExitCode.OK


def update(ctx: Context, args: argparse.Namespace) -> ExitCode:
    snapshot_id = ctx.client.find_snapshot(args.snapshot)["id"]
    changes = {k: v for k, v in (("name", args.name), ("description", args.description)) if v}
    if not changes:
        ctx.error("give --name or --description")
        return ExitCode.USAGE
    return _show(ctx, ctx.client.update_snapshot(snapshot_id, changes), args)


def delete(ctx: Context, args: argparse.Namespace) -> ExitCode:
    snapshot = ctx.client.find_snapshot(args.snapshot)
    ctx.client.delete_snapshot(snapshot["id"])
    return ExitCode.OK


def reset_status(ctx: Context, args: argparse.Namespace) -> ExitCode:
    snapshot = ctx.client.find_snapshot(args.snapshot)
    ctx.client.snapshot_action(snapshot["id"], "os-reset_status", {"status": args.state})
    return ExitCode.OK


def _waited(ctx: Context, snapshot: Snapshot) -> Snapshot:
    held = True
    while snapshot["status"] in _BUSY:
        if not held:
            ctx.sleep(ctx.poll_seconds)
        snapshot, held = ctx.client.wait_snapshot(snapshot["id"], ctx.wait_seconds)
    return snapshot


def _show(
    ctx: Context, snapshot: Snapshot, args: argparse.Namespace, *, check: bool = False
) -> ExitCode:
    ctx.print(render_object(dict(snapshot), Format(args.format), SNAPSHOT_FIELDS))
    if check and snapshot["status"] == "error":
        ctx.error(f"snapshot {snapshot['id']} is in status error")
        return ExitCode.FAILED
    return ExitCode.OK
