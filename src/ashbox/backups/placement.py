"""Where work may run: the host whose files hold a volume, and whether a live
worker can take a task pinned to a host and zone (CINDER-CONTRACT §2.2).

A volume's file belongs to the host whose worker made or manages it, unless it
lies under `shared_volume_roots` (a path every worker mounts): then any worker
reaches it. Work on the volume (backup, restore, snapshot, delete of its file)
is pinned to its host; work on the store alone (delete of a backup, import,
gc) runs on any worker. Creates and restores are pinned to a zone as Cinder
pins them: the requested one, else the volume's (create) or the backup's
(restore).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ashbox.config import Settings
from ashbox.db import services as service_rows
from ashbox.errors import ServiceNotFound

NO_SERVICE_FOR_CREATE = "Service not found for creating backup."


def host_of_request(given: str | None) -> str | None:
    """The worker name in Cinder's `host@backend#pool` form of a manage request."""
    if given is None:
        return None
    return given.split("@", 1)[0].split("#", 1)[0] or None


def service_can_run(s: Session, settings: Settings, *, host: str | None, zone: str | None) -> bool:
    return service_rows.can_run(s, host=host, zone=zone, down_seconds=settings.service_down_seconds)


def require_service(s: Session, settings: Settings, *, host: str | None, zone: str | None) -> None:
    """ServiceNotFound (404, as Cinder's API answers) unless a live worker can take
    a task pinned to `host` and `zone`."""
    if not service_can_run(s, settings, host=host, zone=zone):
        raise ServiceNotFound(service_rows.BACKUP_BINARY, host)
