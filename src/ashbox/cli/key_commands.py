"""`ashbox repo key add|list|remove`: the key slots of an encrypted repository
(docs/cli.md, "Repository keys"; the slots: docs/format.md §10).

Local commands (`ashbox.cli.local`): they read and rewrite `<container>/config`
in the store directly. The key that proves the caller may change the keys is
`--key-file`, else the `key_file` setting, else a passphrase typed at the
terminal; a new key comes from `--new-key-file` or is typed twice.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ashbox.cli import local
from ashbox.cli.exit_codes import ExitCode
from ashbox.cli.local import Local
from ashbox.cli.output import Format
from ashbox.errors import InvalidInput, KeyRequired

# Each command imports what it runs (cryptography among it), so `ashbox` starts fast.
if TYPE_CHECKING:
    from ashbox.repository.crypto import KeySlot


def add_key_parsers(parser: argparse.ArgumentParser) -> None:
    """`repo key ACTION`, each a local command with the flags of `ashbox.cli.local`."""
    sub = parser.add_subparsers(dest="key_action", metavar="ACTION", required=True)
    p = _action(sub, "list", list_, "list the key slots of the repository")
    p.add_argument(
        "-f",
        "--format",
        choices=[f.value for f in Format],
        default=Format.TABLE.value,
        help="table for people (default), json for scripts",
    )
    p = _action(sub, "add", add, "add a passphrase or key file that opens the repository")
    _key_file_flag(p)
    p.add_argument(
        "--new-key-file",
        metavar="FILE",
        help="file holding the new passphrase or key (default: type it twice)",
    )
    p = _action(sub, "remove", remove, "remove a key slot (never the last one)")
    p.add_argument("slot_id", metavar="SLOT_ID", help="as `repo key list` shows it")
    _key_file_flag(p)


def list_(local: Local, args: argparse.Namespace) -> ExitCode:
    from ashbox.repository.keys import list_keys

    slots = list_keys(local.store, local.container)
    if args.format == Format.JSON:
        local.print(json.dumps([slot_document(s) for s in slots], indent=2))
        return ExitCode.OK
    if not slots:
        local.print(f"repository {local.container} is not encrypted: it has no keys")
        return ExitCode.OK
    local.print(f"{'slot':<10}  {'created_at':<32}  kdf")
    for slot in slots:
        local.print(f"{slot.slot_id:<10}  {slot.created_at.isoformat():<32}  {_kdf(slot)}")
    return ExitCode.OK


def add(local: Local, args: argparse.Namespace) -> ExitCode:
    from ashbox.db.containers import container_locked
    from ashbox.repository.keys import add_key, read_secret

    secret = current_secret(local, args)
    if args.new_key_file:
        new_secret = read_secret(Path(args.new_key_file))
    else:
        new_secret = _typed_twice(f"New passphrase of repository {local.container}: ")
    with container_locked(local.db, local.container):
        slot = add_key(local.store, local.container, secret, new_secret)
    local.print(f"added key slot {slot.slot_id} to repository {local.container}")
    return ExitCode.OK


def remove(local: Local, args: argparse.Namespace) -> ExitCode:
    from ashbox.db.containers import container_locked
    from ashbox.repository.keys import remove_key

    secret = current_secret(local, args)
    with container_locked(local.db, local.container):
        remove_key(local.store, local.container, secret, args.slot_id)
    local.print(f"removed key slot {args.slot_id} from repository {local.container}")
    return ExitCode.OK


def slot_document(slot: KeySlot) -> dict[str, object]:
    """What `repo key list -f json` shows of a slot: never its salt or wrapped key."""
    return {
        "id": slot.slot_id,
        "created_at": slot.created_at.isoformat(),
        "kdf": "argon2id",
        "memory_kib": slot.kdf.memory_kib,
        "iterations": slot.kdf.iterations,
        "lanes": slot.kdf.lanes,
    }


def current_secret(local: Local, args: argparse.Namespace) -> bytes:
    """The key that opens the repository now: --key-file, the key_file setting,
    else typed at a terminal; KeyRequired when there is no way to get one."""
    from ashbox.repository.keys import read_secret

    path = args.key_file or local.settings.key_file
    if path:
        return read_secret(Path(path))
    if not sys.stdin.isatty():
        raise KeyRequired(local.container)
    return _typed(f"Passphrase of repository {local.container}: ")


def _action(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    run: local.LocalCommand,
    help_text: str,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(local_run=run)
    local.add_local_flags(parser)
    return parser


def _key_file_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key-file",
        metavar="FILE",
        help="file holding a passphrase or key that opens the repository now "
        "(default: the key_file setting, else typed)",
    )


def _typed(prompt: str) -> bytes:
    typed = getpass.getpass(prompt).encode()
    if not typed:
        raise InvalidInput("An empty passphrase is not a key.")
    return typed


def _typed_twice(prompt: str) -> bytes:
    if not sys.stdin.isatty():
        raise InvalidInput("Give the new key with --new-key-file, or run at a terminal.")
    first = _typed(prompt)
    if _typed("Again: ") != first:
        raise InvalidInput("The two passphrases differ; no key was added.")
    return first


def _kdf(slot: KeySlot) -> str:
    k = slot.kdf
    return f"argon2id m={k.memory_kib} KiB t={k.iterations} p={k.lanes}"
