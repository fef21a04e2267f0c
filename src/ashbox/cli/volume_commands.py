"""`ashbox volume create|import|show|list|delete|reset-status` (docs/cli.md, "Volumes")."""

from __future__ import annotations

import argparse
import os

from ashbox.cli.client import Volume
from ashbox.cli.context import Context
from ashbox.cli.exit_codes import ExitCode
from ashbox.cli.output import (
    VOLUME_COLUMNS,
    VOLUME_FIELDS,
    Format,
    render_list,
    render_object,
    volume_view,
)
from ashbox.statuses import VolumeStatus

_BUSY = frozenset({VolumeStatus.CREATING})
_FAILED = frozenset({VolumeStatus.ERROR, VolumeStatus.ERROR_RESTORING})


def create(ctx: Context, args: argparse.Namespace) -> ExitCode:
    volume = ctx.client.create_volume(args.size, args.name)
    return _show_new(ctx, volume, args)


def import_(ctx: Context, args: argparse.Namespace) -> ExitCode:
    volume = ctx.client.import_volume(os.path.abspath(args.path), args.name)
    return _show_new(ctx, volume, args)


def show(ctx: Context, args: argparse.Namespace) -> ExitCode:
    volume = ctx.client.find_volume(args.volume)
    ctx.print(render_object(volume_view(volume), Format(args.format), VOLUME_FIELDS))
    return ExitCode.OK


def list_(ctx: Context, args: argparse.Namespace) -> ExitCode:
    volumes = [volume_view(v) for v in ctx.client.list_volumes()]
    ctx.print(render_list(volumes, Format(args.format), VOLUME_COLUMNS))
    return ExitCode.OK


def delete(ctx: Context, args: argparse.Namespace) -> ExitCode:
    ctx.client.delete_volume(ctx.client.find_volume(args.volume)["id"])
    return ExitCode.OK


def reset_status(ctx: Context, args: argparse.Namespace) -> ExitCode:
    volume_id = ctx.client.find_volume(args.volume)["id"]
    ctx.client.volume_action(volume_id, "os-reset_status", {"status": args.state})
    return ExitCode.OK


def wait_for_volume(ctx: Context, volume: Volume) -> Volume:
    """The volume once it has left `creating`: asked as `wait_for_backup` asks."""
    held = True  # the first GET goes at once
    while volume["status"] in _BUSY:
        if not held:
            ctx.sleep(ctx.poll_seconds)
        volume, held = ctx.client.wait_volume(volume["id"], ctx.wait_seconds)
    return volume


def check_volume(ctx: Context, volume: Volume) -> ExitCode:
    """FAILED, with a message, when the volume ended in an error status."""
    if volume["status"] in _FAILED:
        ctx.error(f"volume {volume['id']} is in status {volume['status']}")
        return ExitCode.FAILED
    return ExitCode.OK


def _show_new(ctx: Context, volume: Volume, args: argparse.Namespace) -> ExitCode:
    if args.wait:
        volume = wait_for_volume(ctx, volume)
    ctx.print(render_object(volume_view(volume), Format(args.format), VOLUME_FIELDS))
    return check_volume(ctx, volume) if args.wait else ExitCode.OK
