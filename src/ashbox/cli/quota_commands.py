"""`ashbox quota show|defaults|update|delete` and `ashbox limits` (docs/cli.md, "Quotas")."""

from __future__ import annotations

import argparse

from ashbox.cli.context import Context
from ashbox.cli.exit_codes import ExitCode
from ashbox.cli.output import Format, render_list, render_object
from ashbox.quota_resources import QUOTA_RESOURCES

_USAGE_COLUMNS = (("Resource", "resource"), ("Limit", "limit"), ("In Use", "in_use"))
_LIMIT_COLUMNS = (("Resource", "resource"), ("Limit", "limit"))
_LIMITS_FIELDS = (
    "maxTotalBackups",
    "totalBackupsUsed",
    "maxTotalBackupGigabytes",
    "totalBackupGigabytesUsed",
    "os-backup-stats:totalBackupStoredBytesUsed",
)


def show(ctx: Context, args: argparse.Namespace) -> ExitCode:
    quota_set = ctx.client.quota_set(args.project, usage=True)
    rows = []
    for resource in QUOTA_RESOURCES:
        usage = quota_set.get(resource)
        if isinstance(usage, dict):
            rows.append({"resource": resource, **usage})
    ctx.print(render_list(rows, Format(args.format), _USAGE_COLUMNS))
    return ExitCode.OK


def defaults(ctx: Context, args: argparse.Namespace) -> ExitCode:
    return _limits(ctx, ctx.client.default_quota_set(args.project), args)


def update(ctx: Context, args: argparse.Namespace) -> ExitCode:
    wanted = {r: getattr(args, r) for r in QUOTA_RESOURCES if getattr(args, r) is not None}
    if not wanted:
        ctx.error(
            "give at least one of " + ", ".join("--" + r.replace("_", "-") for r in QUOTA_RESOURCES)
        )
        return ExitCode.USAGE
    return _limits(ctx, ctx.client.update_quota_set(args.project, wanted), args)


def delete(ctx: Context, args: argparse.Namespace) -> ExitCode:
    ctx.client.delete_quota_set(args.project)
    return ExitCode.OK


def limits(ctx: Context, args: argparse.Namespace) -> ExitCode:
    ctx.print(render_object(ctx.client.limits(), Format(args.format), _LIMITS_FIELDS))
    return ExitCode.OK


def _limits(ctx: Context, quota_set: dict[str, object], args: argparse.Namespace) -> ExitCode:
    rows = [{"resource": r, "limit": quota_set[r]} for r in QUOTA_RESOURCES if r in quota_set]
    ctx.print(render_list(rows, Format(args.format), _LIMIT_COLUMNS))
    return ExitCode.OK
