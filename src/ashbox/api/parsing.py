"""Request input refused before anything reads its meaning (docs/api.md, "Input limits").

Bodies: UTF-8 JSON, as Cinder's `jsonutils.loads` reads them, at most
MAX_JSON_DEPTH arrays and objects deep (counted on the bytes before the
parser recurses, so 100,000 `[` cost one pass, not a RecursionError), and
with no string, key or value, holding a lone surrogate (a `\\ud800` escape)
or NUL: neither can be stored (SQLite and psycopg encode strictly; PostgreSQL
text holds no NUL) nor be a path, and a surrogate cannot even be written back
in an error message, so it is refused by `parse_json`, before the schema; a
NUL by `refuse_nul`, after it, so that Cinder's schema messages come first.
URLs: a NUL in the path or the query string is refused too.
"""

from __future__ import annotations

import json
import re

from starlette.types import Scope

from ashbox.api.errors import ApiFault
from ashbox.errors import InvalidInput

MAX_JSON_DEPTH = 64
MALFORMED = "Malformed request body"

_STRUCTURE = b'[]{}"'
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in _STRUCTURE)
_STRING = re.compile(rb'"[^"]*"')
_OPENING = frozenset(b"[{")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NUL = re.compile("\x00")


def parse_json(raw: bytes) -> object:
    """The JSON value of `raw` (an empty body is `{}`); InvalidInput for anything else."""
    if not raw.strip():
        return {}
    if _nesting_exceeds(raw, MAX_JSON_DEPTH):
        raise InvalidInput(f"{MALFORMED}: JSON nested more than {MAX_JSON_DEPTH} levels deep.")
    try:
        value: object = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise InvalidInput(MALFORMED) from None
    _refuse(value, _SURROGATE, "A lone surrogate is not allowed.")
    return value


def refuse_nul(value: object) -> None:
    """InvalidInput if any string in a parsed body, key or value, holds a NUL."""
    _refuse(value, _NUL, "A NUL character is not allowed.")


def url_fault(scope: Scope) -> ApiFault | None:
    """A 400 for a request whose path or query string holds a NUL (`%00`)."""
    if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
        return ApiFault(400, "Invalid input received: a URL may not contain NUL (%00).")
    return None


def _nesting_exceeds(raw: bytes, limit: int) -> bool:
    """Whether `raw`'s arrays and objects nest deeper than `limit`, brackets inside
    strings aside. Exact for valid UTF-8 JSON (no byte of a multi-byte character
    is ASCII); invalid JSON may count wrong, but is refused either way."""
    # Escaped backslashes first, so `\\"` still ends its string; then escaped quotes.
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = _STRING.sub(b"", unescaped.translate(None, _NOT_STRUCTURE))
    depth = 0
    for byte in skeleton:
        if byte in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _refuse(value: object, pattern: re.Pattern[str], reason: str) -> None:
    """InvalidInput, in the words of a schema error, naming the first string of
    `value` that `pattern` finds in and the field holding it; the string is
    shown escaped (`repr`), so the message itself can be encoded."""
    pending: list[tuple[object, str | None]] = [(value, None)]
    while pending:
        item, field = pending.pop()
        if isinstance(item, str):
            if pattern.search(item) is None:
                continue
            if field is None:
                raise InvalidInput(f"Invalid input received: {item!r}. {reason}")
            raise InvalidInput(
                f"Invalid input for field/attribute {field}. Value: {item!r}. {reason}"
            )
        if isinstance(item, dict):
            for key, inner in item.items():
                pending += [(inner, key), (key, field)]  # the key first: it names the value
        elif isinstance(item, list):
            pending += [(inner, field) for inner in item]


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
