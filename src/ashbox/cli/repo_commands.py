"""`ashbox repo stats|check|rebuild-index|gc` and `ashbox backup verify`
(docs/cli.md, "Repository maintenance").

These run in this process against the database and the store (`ashbox.cli.local`),
not through the service: they are an operator's tools, and must work when
the service is down or its database index is lost.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from ashbox.cli.exit_codes import ExitCode
from ashbox.cli.local import Local
from ashbox.cli.output import Format

# Each command imports what it runs, so `ashbox` starts fast for the HTTP commands.
if TYPE_CHECKING:
    from ashbox.repository.stats import RepositoryStats


def stats(local: Local, args: argparse.Namespace) -> ExitCode:
    from ashbox.repository.stats import repository_stats

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


def check(local: Local, args: argparse.Namespace) -> ExitCode:
    from ashbox.repository.check import check_repository

    progress = local.error if args.verbose else None
    report = check_repository(local.repository(), read_data=args.read_data, progress=progress)
    what = "packs, blobs and manifests" if args.read_data else "packs and manifests"
    local.print(
        f"checked {what} of {report.container}: {report.packs_checked} packs, "
        f"{report.blobs_checked} blobs read, {report.manifests_checked} manifests"
    )
    for damage in report.damages:
        local.print(f"{'unreadable' if damage.unreadable else 'damaged'}: {damage.message}")
    if report.ok:
        local.print("no damage found")
        return ExitCode.OK
    if report.damaged_packs:
        local.print(f"damaged packs: {' '.join(report.damaged_packs)}")
    if any(not d.unreadable for d in report.damages):
        local.print(f"backups that cannot be restored whole: {' '.join(report.affected_backups)}")
    if any(d.unreadable for d in report.damages):
        local.print("the store could not read everything: check again once it answers")
    return ExitCode.FAILED


def rebuild(local: Local, args: argparse.Namespace) -> ExitCode:
    from ashbox.db.backups import backup_ids_in_container
    from ashbox.repository.rebuild import rebuild_index

    known: set[str] | None = None
    if args.known_backups:
        default = local.container == local.settings.default_container
        with local.db.transaction() as s:
            known = backup_ids_in_container(s, local.container, or_unset=default)
    report = rebuild_index(local.repository(), backup_ids=known)
    local.print(
        f"index of {report.container} rebuilt: {report.packs} packs, {report.blobs} blobs, "
        f"{report.backups} backups"
    )
    for pack_id in report.unreadable_packs:
        local.error(f"pack {pack_id} is unreadable; its blobs are not indexed")
    for backup_id in report.unreadable_manifests:
        local.error(f"the manifest of backup {backup_id} is unreadable; it references nothing")
    damaged = report.unreadable_packs or report.unreadable_manifests
    return ExitCode.FAILED if damaged else ExitCode.OK


def gc(local: Local, args: argparse.Namespace) -> ExitCode:
    from ashbox.manager.garbage import collect

    report = collect(local.db, local.repository(), local.settings.gc_repack_live_fraction)
    if report is None:
        local.error("another gc is running (a worker's, or another repo gc); try again later")
        return ExitCode.FAILED
    local.print(
        f"gc of {report.container}: {report.abandoned_packs} unfinished uploads abandoned, "
        f"{report.swept_packs} packs found dead, "
        f"{report.repacked_packs} repacked into {report.new_packs} "
        f"({_bytes(report.copied_size)} copied), {report.deleted_packs} deleted "
        f"({_bytes(report.freed_size)} freed)"
    )
    for pack_id in report.skipped_packs:
        local.error(f"pack {pack_id} is unreadable and was not repacked: ashbox repo check")
    return ExitCode.FAILED if report.skipped_packs else ExitCode.OK


def verify(local: Local, args: argparse.Namespace) -> ExitCode:
    """Verify the backup BACKUP names: an id, or the name of exactly one backup
    the database knows (an id it does not know is looked for in the store)."""
    from ashbox.db.backups import backups_named, get_backup
    from ashbox.errors import InvalidInput

    with local.db.reading() as s:
        row = get_backup(s, args.backup)
        if row is None:
            named = backups_named(s, args.backup)
            if len(named) > 1:
                raise InvalidInput(
                    f"{len(named)} backups are named {args.backup}: give the id of one."
                )
            row = named[0] if named else None
        backup_id = row.id if row is not None else args.backup
        container = args.container or (row.container if row is not None else None)
    local.repository(container or local.container).verify(backup_id)
    local.print(f"backup {backup_id} verified: every block reads back and matches its id")
    return ExitCode.OK


def recover(local: Local, args: argparse.Namespace) -> ExitCode:
    from ashbox.backups.recovery import recover_backups

    report = recover_backups(local.db, local.settings, local.repository(), project_id=args.project)
    rebuilt = report.rebuild
    document = {
        "container": report.container,
        "recovered_from_records": report.from_records,
        "recovered_from_manifests": report.from_manifests,
        "already_known": report.already_known,
        "unreadable": report.unreadable,
        "packs_indexed": rebuilt.packs if rebuilt else 0,
        "blobs_indexed": rebuilt.blobs if rebuilt else 0,
    }
    if args.format == Format.JSON:
        local.print(json.dumps(document, indent=2))
    else:
        local.print(f"container         {report.container}")
        local.print(f"from records      {len(report.from_records)} backups")
        local.print(f"from manifests    {len(report.from_manifests)} backups (no record)")
        local.print(f"already known     {report.already_known} backups")
        local.print(
            f"index             {document['packs_indexed']} packs, "
            f"{document['blobs_indexed']} blobs"
        )
    for backup_id in report.unreadable:
        local.error(
            f"backup {backup_id} could not be recovered: its manifest or record is unreadable"
        )
    return ExitCode.FAILED if report.unreadable else ExitCode.OK
