"""Static API tokens for sites without Keystone (`auth_strategy = "token"`).

The file (`tokens_file`, TOML) holds one `[[token]]` table per token: the
SHA-256 of the secret, never the secret, and who it stands for:

    [[token]]
    sha256 = "9f86d0..."
    user_id = "alice"
    project_id = "p1"
    roles = ["member"]

A token is 32 random bytes, so a plain hash is as strong as a slow one here.
Roles are expanded as Keystone expands them (admin: member, reader).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ashbox.errors import InvalidInput

_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,255}")


@dataclass(frozen=True, slots=True)
class TokenEntry:
    user_id: str
    project_id: str
    roles: tuple[str, ...]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def load_tokens(path: Path) -> dict[str, TokenEntry]:
    """The entries of a tokens file by digest; InvalidInput, naming the fault, if malformed."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"Cannot read tokens file {path}: {exc}") from exc
    tables = data.get("token", [])
    if not isinstance(tables, list):
        raise InvalidInput(f"Tokens file {path}: [[token]] tables expected")
    entries: dict[str, TokenEntry] = {}
    for number, table in enumerate(tables, 1):
        where = f"Tokens file {path}, token {number}"
        if not isinstance(table, dict):
            raise InvalidInput(f"{where}: a table expected")
        sha = table.get("sha256")
        if not isinstance(sha, str) or not _HEX64.fullmatch(sha):
            raise InvalidInput(f"{where}: sha256 must be 64 lowercase hex digits")
        names = [table.get("user_id"), table.get("project_id")]
        if not all(isinstance(n, str) and _NAME.fullmatch(n) for n in names):
            raise InvalidInput(f"{where}: user_id and project_id must be plain names")
        roles = table.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
            raise InvalidInput(f"{where}: roles must be a list of role names")
        entries[sha] = TokenEntry(str(names[0]), str(names[1]), tuple(roles))
    return entries


def add_token(path: Path, user_id: str, project_id: str, roles: list[str]) -> str:
    """A new token for `user_id` in `project_id`, appended (hashed) to `path`."""
    for what, name in (("user id", user_id), ("project id", project_id)):
        if not _NAME.fullmatch(name):
            raise InvalidInput(f"Bad {what} {name!r}: letters, digits and _.@- only")
    for role in roles:
        if not _NAME.fullmatch(role):
            raise InvalidInput(f"Bad role {role!r}: letters, digits and _.@- only")
    if path.exists():
        load_tokens(path)  # never append to a file that does not parse
    token = new_token()
    listed = ", ".join(f'"{role}"' for role in roles)
    entry = (
        f'\n[[token]]\nsha256 = "{digest(token)}"\nuser_id = "{user_id}"\n'
        f'project_id = "{project_id}"\nroles = [{listed}]\n'
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(entry)
    return token
