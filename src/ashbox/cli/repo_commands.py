"""`ashbox repo stats|check|rebuild-index|gc` and `ashbox backup verify`
(docs/cli.md, "Repository maintenance").

These run in this process against the database and the store (`ashbox.cli.local`),
not through the service: they are an operator's tools, and must work when
the service is down or its database index is lost.
"""

from __future__ import annotations

import argparse
import json

from ashbox.cli.exit_codes import ExitCode
from ashbox.cli.local import Local
from ashbox.cli.output import Format
from ashbox.repository.stats import RepositoryStats, repository_stats


def stats(local: Local, args: argparse.Namespace) -> ExitCode:
    result = repository_stats(local.repository())
    if args.format == Format.JSON:
        local.print(json.dumps(stats_document(result), indent=2))
        return ExitCode.OK
    local.print(f"container          {result.container}")
    local.print(f"stored             {_bytes(result.stored_size)} in {result.packs} packs")
    if result.dead_packs:
        local.print(
            f"awaiting deletion  {_bytes(result.dead_size)} in {result.dead_packs} dead packs"
        )
    local.print(f"blobs              {result.blobs} ({_bytes(result.raw_size)} raw)")
    local.print(
        f"logical            {_bytes(result.logical_size)} in {len(result.backups)} backups"
    )
    local.print(f"dedup ratio        {result.dedup_ratio:.2f}")
    local.print(f"compression ratio  {result.compression_ratio:.2f}")
    for backup_id in result.unreadable_manifests:
        local.error(f"the manifest of backup {backup_id} cannot be read: ashbox repo check")
    if result.backups:
        local.print("")
        local.print(f"{'backup':<36}  {'logical':>12}  {'unique':>12}")
        for usage in result.backups:
            local.print(
                f"{usage.backup_id:<36}  {_bytes(usage.logical_size):>12}  "
                f"{_bytes(usage.unique_size):>12}"
            )
    return ExitCode.OK


def stats_document(result: RepositoryStats) -> dict[str, object]:
    return {
        "container": result.container,
        "packs": result.packs,
        "stored_size": result.stored_size,
        "dead_packs": result.dead_packs,
        "dead_size": result.dead_size,
        "blobs": result.blobs,
        "raw_size": result.raw_size,
        "blob_size": result.blob_size,
        "logical_size": result.logical_size,
        "dedup_ratio": round(result.dedup_ratio, 4),
        "compression_ratio": round(result.compression_ratio, 4),
        "unreadable_manifests": list(result.unreadable_manifests),
        "backups": [
            {
                "id": u.backup_id,
                "logical_size": u.logical_size,
                "unique_size": u.unique_size,
            }
            for u in result.backups
        ],
    }


def _bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
