"""Which files and devices may be managed as volumes (docs/configuration.md, `volume_roots`).

A volume is managed in place: ashbox reads it for backups and overwrites it
on restore. So a path is accepted only under a configured root, never in
the service's own files (data directory, database, store, configuration),
nor in /proc, /sys or /etc; a device under /dev only where a root under
/dev names it. Symbolic links are resolved first, so a link cannot lead out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ashbox.errors import InvalidVolume

NEVER = (Path("/proc"), Path("/sys"), Path("/etc"))
DEVICES = Path("/dev")


def manageable_path(path: str, *, roots: Sequence[Path], reserved: Sequence[Path]) -> Path:
    """`path` resolved, if a volume may be managed from it; InvalidVolume, saying
    why, otherwise. The file need not exist yet (the worker probes it)."""
    if "\0" in path:
        raise InvalidVolume(f"{path!r} contains a NUL character, which no path can.")
    if not os.path.isabs(path):
        raise InvalidVolume(f"{path!r} is not an absolute path.")
    real = Path(os.path.realpath(path))
    for forbidden in (*NEVER, *reserved):
        if _under(real, forbidden):
            raise InvalidVolume(f"{path} is not a path a volume may be managed from.")
    root = next((r for r in roots if _under(real, r)), None)
    if root is None:
        shown = ", ".join(str(r) for r in roots)
        raise InvalidVolume(f"{path} is outside the volume roots ({shown}).")
    if _under(real, DEVICES) and not _under(root, DEVICES):
        raise InvalidVolume(f"{path} is a device that no volume root under /dev allows.")
    return real


def _under(path: Path, top: Path) -> bool:
    return path == top or top in path.parents


def holding_host(path: Path | str, host: str, *, shared: Sequence[Path]) -> str | None:
    """The host whose files hold `path` when `host` made or manages it; None when the
    path lies under one of the `shared` roots, which every worker mounts."""
    real = Path(os.path.realpath(path))
    if any(real == root or real.is_relative_to(root) for root in shared):
        return None
    return host
