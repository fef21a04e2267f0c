"""What the CLI prints: tables for people (`-f table`), JSON for scripts (`-f json`).

A shown object is a two-column Field/Value table, a list is one row per item
with chosen columns. JSON output is the object as the service sent it, except
that a volume's `os-vol-ashbox-attr:path` is called `path`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from ashbox.cli.client import PATH_KEY, Backup, Volume


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


VOLUME_FIELDS = (
    "id", "name", "status", "size", "volume_type", "encrypted", "path", "availability_zone",
    "created_at",
)  # fmt: skip
BACKUP_FIELDS = (
    "id",
    "name",
    "status",
    "volume_id",
    "size",
    "is_incremental",
    "container",
    "os-backup-stats:stored_size",
    "fail_reason",
    "created_at",
)
VOLUME_COLUMNS = (
    ("ID", "id"),
    ("Name", "name"),
    ("Status", "status"),
    ("Size", "size"),
    ("Path", "path"),
)
BACKUP_COLUMNS = (
    ("ID", "id"),
    ("Name", "name"),
    ("Status", "status"),
    ("Size", "size"),
    ("Volume ID", "volume_id"),
    ("Incremental", "is_incremental"),
    ("Stored", "os-backup-stats:stored_size"),
    ("Created At", "created_at"),
)
_HIDDEN = frozenset({"links"})


def volume_view(volume: Volume) -> dict[str, object]:
    """The volume as shown: the service's detail with its path under `path`."""
    view: dict[str, object] = {}
    for key, value in volume.items():
        if key == PATH_KEY:
            continue
        view[key] = value
        if key == "id":
            view["path"] = volume.get(PATH_KEY)
    view.setdefault("path", volume.get(PATH_KEY))
    return view


def backup_view(backup: Backup) -> dict[str, object]:
    return dict(backup.items())


def render_object(obj: Mapping[str, object], fmt: Format, first: Sequence[str] = ()) -> str:
    """One object: `first` fields in that order, then the others by name; no links."""
    if fmt is Format.JSON:
        return _json(obj)
    keys = [k for k in first if k in obj]
    keys += sorted(k for k in obj if k not in keys and k not in _HIDDEN)
    return render_table(("Field", "Value"), [(label(k), cell(k, obj[k])) for k in keys])


def render_list(
    items: Sequence[Mapping[str, object]], fmt: Format, columns: Sequence[tuple[str, str]]
) -> str:
    """Many objects: every key in JSON, the chosen `(header, key)` columns in a table."""
    if fmt is Format.JSON:
        return _json(list(items))
    rows = [[cell(key, item.get(key)) for _, key in columns] for item in items]
    return render_table([header for header, _ in columns], rows)


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A boxed table; the text has no trailing newline."""
    body = [list(r) for r in rows]
    widths = [len(h) for h in headers]
    for row in body:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([rule, line(headers), rule, *(line(r) for r in body), rule])


def label(key: str) -> str:
    """A field name for people: extension prefixes (`os-backup-stats:`) dropped."""
    return key.rsplit(":", 1)[-1]


def cell(key: str, value: object) -> str:
    """A value on one line: nothing for null, sizes in bytes also in binary units."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and key.endswith(("_bytes", "stored_size")):
        return f"{value} ({human_bytes(value)})"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return " ".join(str(value).splitlines())


def human_bytes(size: float) -> str:
    """`1536` → `1.5 KiB`."""
    if abs(size) < 1024:
        return f"{size:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if abs(size) < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} TiB"


def _json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
