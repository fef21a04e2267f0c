"""The services table: each host's workers as one `cinder-backup` service.

A worker process reports on its host's row at start and at every heartbeat
(`report_alive`); the row is up while its last report is younger than
`service_down_seconds`. Disabling a row stops its workers claiming tasks
(`ashbox.db.tasks.claim_task`) and takes the host out of placement (`can_run`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ashbox.db.models import Service

BACKUP_BINARY = "cinder-backup"


def report_alive(
    s: Session,
    host: str,
    zone: str,
    *,
    store_error: str | None = None,
    binary: str = BACKUP_BINARY,
) -> None:
    """Record that a worker of `host` in `zone` is alive now, and how it last found
    the store (`store_error`: None if it answered); the row is inserted once."""
    now = datetime.now(UTC)
    store_error = store_error[:255] if store_error is not None else None
    changed = s.execute(
        update(Service)
        .where(Service.host == host, Service.binary == binary)
        .values(updated_at=now, availability_zone=zone, store_error=store_error)
    )
    if changed.rowcount:  # type: ignore[attr-defined]
        return
    # Two processes of a new host may both get here: the second insert fails on
    # the unique (host, binary) and its caller's next heartbeat updates instead.
    s.add(
        Service(
            host=host,
            binary=binary,
            availability_zone=zone,
            disabled=False,
            created_at=now,
            updated_at=now,
            store_error=store_error,
        )
    )


def list_services(
    s: Session, *, host: str | None = None, binary: str | None = None
) -> list[Service]:
    stmt = select(Service).order_by(Service.host, Service.binary)
    if host is not None:
        stmt = stmt.where(Service.host == host)
    if binary is not None:
        stmt = stmt.where(Service.binary == binary)
    return list(s.scalars(stmt))


def get_service(s: Session, host: str, binary: str) -> Service | None:
    return s.scalar(
        select(Service).where(Service.host == host, Service.binary == binary).with_for_update()
    )


def set_disabled(s: Session, service: Service, disabled: bool, reason: str | None) -> None:
    service.disabled = disabled
    service.disabled_reason = reason
    service.modified_at = datetime.now(UTC)


def is_up(service: Service, down_seconds: float, now: datetime | None = None) -> bool:
    now = now or datetime.now(UTC)
    return abs((now - service.updated_at).total_seconds()) <= down_seconds


def can_run(s: Session, *, host: str | None, zone: str | None, down_seconds: float) -> bool:
    """Whether an enabled, up backup service could take a task pinned to `host`
    and `zone` (None: any)."""
    stmt = select(Service).where(
        Service.binary == BACKUP_BINARY,
        Service.disabled.is_(False),
        Service.updated_at >= datetime.now(UTC) - timedelta(seconds=down_seconds),
    )
    if host is not None:
        stmt = stmt.where(Service.host == host)
    if zone is not None:
        stmt = stmt.where(Service.availability_zone == zone)
    return s.scalar(stmt.limit(1)) is not None
