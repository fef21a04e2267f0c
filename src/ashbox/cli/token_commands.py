"""`ashbox token create`: a static API token for `auth_strategy = "token"` (docs/auth.md).

The token is printed once; only its SHA-256 is written, appended to the tokens
file (created with mode 0600). The running service reads the file again when
it changes, so a new token works at once.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

from ashbox.cli.exit_codes import ExitCode


def add_token_parsers(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser(
        "create",
        help="make a token for a user in a project, with roles",
        description="Make a random token, append its hash to the tokens file, print it once.",
    )
    p.add_argument("--user", required=True, help="the user id the token stands for")
    p.add_argument("--project", required=True, help="the project id the token works in")
    p.add_argument(
        "--role",
        action="append",
        dest="roles",
        default=None,
        help="a role (repeatable; default member): reader, member or admin, "
        "or any role your policy file names",
    )
    p.add_argument(
        "--tokens-file", help="the tokens file (default: the configuration's tokens_file)"
    )
    p.add_argument("--config", help="TOML configuration file (default $ASHBOX_CONFIG)")
    p.add_argument("-f", "--format", choices=["table", "json"], default="table")
    p.set_defaults(token_run=create)


def create(args: argparse.Namespace, out: TextIO) -> int:
    from ashbox.config import load_settings  # imported by this command only: start-up time
    from ashbox.errors import InvalidInput
    from ashbox.tokens import add_token

    path = args.tokens_file
    if not path:
        path = load_settings(Path(args.config) if args.config else None).tokens_file
    if not path:
        raise InvalidInput("No tokens file: give --tokens-file, or set tokens_file")
    roles = args.roles or ["member"]
    token = add_token(Path(path), args.user, args.project, roles)
    if args.format == "json":
        fields = {"token": token, "user_id": args.user, "project_id": args.project}
        out.write(json.dumps({**fields, "roles": roles, "tokens_file": str(path)}) + "\n")
    else:
        out.write(f"{token}\n")
    return ExitCode.OK
