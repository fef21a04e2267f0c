"""The `ashbox` command: its parser, and the one place errors become exit codes.

Commands: docs/cli.md. `main` returns the exit code (`ashbox.cli.exit_codes`).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from ashbox import __version__
from ashbox.cli import (
    backup_commands,
    key_commands,
    local,
    message_commands,
    quota_commands,
    repo_commands,
    snapshot_commands,
    token_commands,
    volume_commands,
)
from ashbox.cli.client import DEFAULT_URL, ApiError, CinderClient, ServerUnreachable
from ashbox.cli.context import Context
from ashbox.cli.exit_codes import ExitCode, exit_code_for_error, exit_code_for_status
from ashbox.cli.output import Format
from ashbox.errors import AshboxError
from ashbox.quota_resources import QUOTA_RESOURCES

Command = Callable[[Context, argparse.Namespace], ExitCode]


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Runs one command; its exit code. The keywords let tests replace the outside world."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or bad usage (argparse printed why)
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    try:
        process: str | None = getattr(args, "process", None)
        if process is not None:
            return _run_process(process, args)
        if args.command == "token":
            return int(args.token_run(args, out))
        local_run: local.LocalCommand | None = getattr(args, "local_run", None)
        if local_run is not None:
            return local.run_local(local_run, args, out, err)
        client = CinderClient.from_environment(args.url, args.token)
        try:
            run: Command = args.run
            return run(Context(client, out, err, sleep=sleep, clock=clock), args)
        finally:
            client.close()
    except ServerUnreachable as exc:
        return _fail(err, exc.message, ExitCode.UNREACHABLE)
    except ApiError as exc:
        return _fail(err, exc.message, exit_code_for_status(exc.status_code))
    except backup_commands.StoppedWaiting as exc:
        return _fail(err, str(exc), ExitCode.FAILED)
    except AshboxError as exc:
        return _fail(err, exc.message, exit_code_for_error(exc))
    except KeyboardInterrupt:
        return _fail(err, "interrupted", ExitCode.FAILED)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ashbox",
        description="Back up and restore volumes through an ashbox service (Cinder v3 API).",
    )
    parser.add_argument("--version", action="version", version=f"ashbox {__version__}")
    _connection_flags(parser, default=None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_volume_parsers(commands.add_parser("volume", help="create, import and list volumes"))
    _add_snapshot_parsers(commands.add_parser("snapshot", help="snapshot volumes"))
    _add_backup_parsers(commands.add_parser("backup", help="back up, restore, delete"))
    _add_quota_parsers(commands.add_parser("quota", help="a project's limits and usage"))
    _add_message_parsers(commands.add_parser("message", help="why an operation failed"))
    limits = commands.add_parser(
        "limits", help="your project's limits and usage", description="your project's limits"
    )
    limits.set_defaults(run=quota_commands.limits)
    _connection_flags(limits, default=argparse.SUPPRESS)
    _format_flag(limits)
    _add_serve_parser(commands.add_parser("serve", help="run the API and a worker"), "serve")
    _add_serve_parser(commands.add_parser("api", help="run the API alone (with workers)"), "api")
    _add_worker_parser(commands.add_parser("worker", help="run a worker alone (no HTTP)"))
    db = commands.add_parser("db", help="the database schema of a deployment")
    db_actions = db.add_subparsers(dest="action", metavar="ACTION", required=True)
    upgrade = db_actions.add_parser("upgrade", help="migrate the schema to this version's")
    _process_flags(upgrade, "db upgrade", store=False)
    token_commands.add_token_parsers(
        commands.add_parser("token", help="make static API tokens (auth_strategy token)")
    )
    add_repo_parsers(
        commands.add_parser("repo", help="check, repair and reclaim a repository (local)")
    )
    return parser


def add_repo_parsers(parser: argparse.ArgumentParser) -> None:
    """`ashbox repo ...`: local commands on the database and store (cli/local.py)."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = local_action(sub, "stats", repo_commands.stats, "stored bytes, dedup, unique bytes")
    _format_flag(p)
    p = local_action(sub, "check", repo_commands.check, "check the store against the index")
    p.add_argument(
        "--read-data", action="store_true", help="also read every pack and check every blob"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show each pack as it is checked")
    p = local_action(
        sub, "rebuild-index", repo_commands.rebuild, "rebuild the index from packs and manifests"
    )
    p.add_argument(
        "--known-backups",
        action="store_true",
        help="reference only the backups the database knows (default: every manifest)",
    )
    local_action(sub, "gc", repo_commands.gc, "delete dead packs and repack mostly dead ones")
    p = local_action(
        sub,
        "recover",
        repo_commands.recover,
        "bring back every backup whose manifest is in the store (the database was lost)",
    )
    p.set_defaults(local_new_database=True)
    p.add_argument(
        "--project",
        default="admin",
        help="the project of backups that have no record in the store (default: admin)",
    )
    _format_flag(p)
    key_commands.add_key_parsers(
        sub.add_parser("key", help="add, list and remove the keys of an encrypted repository")
    )


def local_action(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    run: local.LocalCommand,
    help_text: str,
    *,
    container: bool = True,
) -> argparse.ArgumentParser:
    """A command run in this process on the database and store (`ashbox.cli.local`),
    with the flags --config, --data-dir, --store (and --container)."""
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(local_run=run)
    local.add_local_flags(parser, container=container)
    return parser


def _add_volume_parsers(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _action(sub, "create", volume_commands.create, "create an empty (sparse) volume")
    p.add_argument("--size", type=_positive_int, required=True, help="size in GiB")
    p.add_argument("--name")
    _wait_flag(p, "until the volume is available")
    _format_flag(p)
    p = _action(sub, "import", volume_commands.import_, "manage an existing image or device")
    p.add_argument("path", metavar="PATH", help="raw image file or block device, used in place")
    p.add_argument("--name")
    _wait_flag(p, "until the volume is available")
    _format_flag(p)
    p = _action(sub, "show", volume_commands.show, "show a volume, with its path")
    p.add_argument("volume", metavar="VOLUME", help="id or name")
    _format_flag(p)
    p = _action(sub, "list", volume_commands.list_, "list volumes")
    _format_flag(p)
    p = _action(sub, "delete", volume_commands.delete, "delete a volume")
    p.add_argument("volume", metavar="VOLUME", help="id or name")
    p = _action(sub, "reset-status", volume_commands.reset_status, "set a volume's status (admin)")
    p.add_argument("volume", metavar="VOLUME", help="id or name")
    p.add_argument(
        "--state",
        required=True,
        choices=["available", "in-use", "error", "error_deleting", "error_restoring"],
    )


def _add_quota_parsers(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _action(sub, "show", quota_commands.show, "a project's limits and usage")
    p.add_argument("project", metavar="PROJECT", help="the project's id")
    _format_flag(p)
    # Cinder's `cinder-manage quota sync` fixes stored usage; ashbox stores none,
    # so sync is the recount show makes, under the name operators' scripts use.
    p = _action(sub, "sync", quota_commands.show, "recount a project's usage from its rows")
    p.add_argument("project", metavar="PROJECT", help="the project's id")
    _format_flag(p)
    p = _action(
        sub, "defaults", quota_commands.defaults, "the limits of a project with none of its own"
    )
    p.add_argument("project", metavar="PROJECT", help="the project's id")
    _format_flag(p)
    p = _action(
        sub, "update", quota_commands.update, "set some of a project's limits (admin; -1: none)"
    )
    p.add_argument("project", metavar="PROJECT", help="the project's id")
    for resource in QUOTA_RESOURCES:
        p.add_argument(f"--{resource.replace('_', '-')}", dest=resource, type=int, metavar="N")
    _format_flag(p)
    p = _action(
        sub, "delete", quota_commands.delete, "give a project the default limits again (admin)"
    )
    p.add_argument("project", metavar="PROJECT", help="the project's id")


def _add_message_parsers(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _action(sub, "list", message_commands.list_, "list the user messages")
    p.add_argument("--resource-uuid", metavar="ID", help="of this volume, snapshot or backup")
    p.add_argument(
        "--resource-type", choices=["VOLUME", "VOLUME_SNAPSHOT", "VOLUME_BACKUP"], help="of these"
    )
    p.add_argument("--event-id", metavar="EVENT", help="e.g. VOLUME_VOLUME_BACKUP_013_020")
    p.add_argument("--request-id", metavar="REQUEST", help="written for this request")
    p.add_argument("--level", choices=["ERROR", "WARNING", "INFO"], help="of this level")
    _format_flag(p)
    p = _action(sub, "show", message_commands.show, "show a user message")
    p.add_argument("message", metavar="MESSAGE", help="its id")
    _format_flag(p)
    p = _action(sub, "delete", message_commands.delete, "delete a user message")
    p.add_argument("message", metavar="MESSAGE", help="its id")


def _add_snapshot_parsers(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _action(sub, "create", snapshot_commands.create, "snapshot a volume")
    p.add_argument("volume", metavar="VOLUME", help="id or name of the volume")
    p.add_argument("--name")
    p.add_argument("--force", action="store_true", help="snapshot an in-use volume")
    _wait_flag(p, "until the snapshot is available")
    _format_flag(p)
    p = _action(sub, "show", snapshot_commands.show, "show a snapshot")
    p.add_argument("snapshot", metavar="SNAPSHOT", help="id or name")
    _format_flag(p)
    p = _action(sub, "list", snapshot_commands.list_, "list snapshots")
    _format_flag(p)
    p = _action(sub, "update", snapshot_commands.update, "rename or describe a snapshot")
    p.add_argument("snapshot", metavar="SNAPSHOT", help="id or name")
    p.add_argument("--name")
    p.add_argument("--description")
    _format_flag(p)
    p = _action(sub, "delete", snapshot_commands.delete, "delete a snapshot")
    p.add_argument("snapshot", metavar="SNAPSHOT", help="id or name")
    p = _action(
        sub, "reset-status", snapshot_commands.reset_status, "set a snapshot's status (admin)"
    )
    p.add_argument("snapshot", metavar="SNAPSHOT", help="id or name")
    p.add_argument("--state", required=True, choices=["available", "error", "error_deleting"])


def _add_backup_parsers(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _action(sub, "create", backup_commands.create, "back up a volume")
    p.add_argument("volume", metavar="VOLUME", help="id or name of the volume")
    p.add_argument(
        "--incremental", action="store_true", help="only what changed since the last backup"
    )
    p.add_argument("--name")
    p.add_argument("--container", help="the repository to store into (default: volumebackups)")
    p.add_argument("--force", action="store_true", help="back up an in-use volume")
    p.add_argument("--snapshot", help="back up this snapshot (id or name) of the volume")
    _wait_flag(p, "until the backup ends, with a progress bar; exit 1 if it fails")
    _format_flag(p)
    p = _action(sub, "show", backup_commands.show, "show a backup")
    p.add_argument("backup", metavar="BACKUP", help="id or name")
    _format_flag(p)
    p = _action(sub, "list", backup_commands.list_, "list backups")
    _format_flag(p)
    p = _action(sub, "restore", backup_commands.restore, "restore a backup to a volume")
    p.add_argument("backup", metavar="BACKUP", help="id or name")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--volume", help="an existing volume (id or name) to overwrite")
    target.add_argument("--name", help="name of the new volume (default restore_backup_<id>)")
    _wait_flag(p, "until the restore ends, with a progress bar; exit 1 if it fails")
    _format_flag(p)
    p = _action(sub, "delete", backup_commands.delete, "delete a backup")
    p.add_argument("backup", metavar="BACKUP", help="id or name")
    _wait_flag(p, "until the backup is gone; exit 1 if the delete fails")
    p = _action(sub, "update", backup_commands.update, "rename, describe or tag a backup")
    p.add_argument("backup", metavar="BACKUP", help="id or name")
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument(
        "--metadata",
        type=_key_value,
        nargs="*",
        metavar="KEY=VALUE",
        help="replace the metadata with these pairs (none: clear it)",
    )
    _format_flag(p)
    p = _action(sub, "reset-status", backup_commands.reset_status, "set a backup's status (admin)")
    p.add_argument("backup", metavar="BACKUP", help="id or name")
    p.add_argument("--state", required=True, choices=["available", "error"])
    p = _action(sub, "force-delete", backup_commands.force_delete, "delete in any status (admin)")
    p.add_argument("backup", metavar="BACKUP", help="id or name")
    _wait_flag(p, "until the backup is gone")
    p = _action(sub, "export", backup_commands.export, "print a backup's record (admin)")
    p.add_argument("backup", metavar="BACKUP", help="id or name")
    _format_flag(p)
    p = _action(sub, "import", backup_commands.import_, "make a backup of a record (admin)")
    p.add_argument("backup_service", metavar="BACKUP_SERVICE")
    p.add_argument("backup_url", metavar="BACKUP_URL")
    _wait_flag(p, "until the imported backup is available")
    _format_flag(p)
    p = local_action(sub, "verify", repo_commands.verify, "read and check a backup (local)")
    p.add_argument("backup", metavar="BACKUP", help="id or name")


def _add_serve_parser(parser: argparse.ArgumentParser, process: str) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, help="port to listen on (default 8776)")
    _process_flags(parser, process)


def _add_worker_parser(parser: argparse.ArgumentParser) -> None:
    _process_flags(parser, "worker")


def _process_flags(parser: argparse.ArgumentParser, process: str, *, store: bool = True) -> None:
    """The flags of the service's own processes; `process` names what runs."""
    parser.add_argument("--data-dir", help="state directory (default ./ashbox-data)")
    if store:
        parser.add_argument("--store", help="backup store URL (default file://<data-dir>/store)")
    parser.add_argument("--config", help="TOML configuration file (default $ASHBOX_CONFIG)")
    parser.set_defaults(process=process)


def _run_process(process: str, args: argparse.Namespace) -> int:
    """One of the service's processes; each imports its settings, logging and signals."""
    if process == "worker":
        from ashbox.cli import worker_command

        return worker_command.worker(args)
    if process == "db upgrade":
        from ashbox.cli import db_command

        return db_command.upgrade(args)
    from ashbox.cli import serve_command

    return serve_command.serve(args) if process == "serve" else serve_command.api(args)


def _action(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    run: Command,
    help_text: str,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(run=run)
    # Also after the command (`ashbox backup list --url U`); given there, it wins.
    _connection_flags(parser, default=argparse.SUPPRESS)
    return parser


def _connection_flags(parser: argparse.ArgumentParser, *, default: object) -> None:
    parser.add_argument(
        "--url",
        default=default,
        help=f"the service's address (default: $ASHBOX_URL, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token",
        default=default,
        help="the API token: a static or Keystone token, or user:project under noauth "
        "(default: $ASHBOX_TOKEN, else admin:admin)",
    )


def _format_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--format",
        choices=[f.value for f in Format],
        default=Format.TABLE.value,
        help="table for people (default), json for scripts",
    )


def _wait_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--wait", action="store_true", help=f"wait {what}")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {text}")
    return key, value


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def _port(text: str) -> int:
    value = _int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"not a port number: {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text}") from None


def _fail(stderr: TextIO, message: str, code: ExitCode) -> int:
    stderr.write(f"error: {message}\n")
    stderr.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
