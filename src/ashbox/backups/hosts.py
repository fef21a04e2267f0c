"""The backup services as admins see and switch them (Cinder's os-services):
every host whose workers reported is one `cinder-backup` service, up while
its heartbeat is recent, and an admin can disable it (its workers then claim
nothing, and placement passes it by) and enable it again."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from ashbox.backups.quotas import QuotaOps
from ashbox.db import services as service_rows
from ashbox.db.models import Service
from ashbox.errors import ServiceNotFound
from ashbox.records import RequestContext, ServiceRecord

log = logging.getLogger(__name__)

SERVICES_INDEX_RULE = "volume_extension:services:index"
SERVICES_UPDATE_RULE = "volume_extension:services:update"


class HostOps(QuotaOps):
    def list_services(
        self, ctx: RequestContext, *, host: str | None = None, binary: str | None = None
    ) -> list[ServiceRecord]:
        ctx.authorize(SERVICES_INDEX_RULE)
        with self.db.reading() as s:
            rows = service_rows.list_services(s, host=host, binary=binary)
            now = datetime.now(UTC)
            return [self._record(r, now) for r in rows]

    def set_service_disabled(
        self,
        ctx: RequestContext,
        *,
        host: str,
        binary: str,
        disabled: bool,
        reason: str | None = None,
    ) -> ServiceRecord:
        """Disable (with an optional reason) or enable the service; enabling clears
        the reason. ServiceNotFound if no worker of `binary` ever reported on `host`."""
        ctx.authorize(SERVICES_UPDATE_RULE)
        with self.db.transaction() as s:
            row = service_rows.get_service(s, host, binary)
            if row is None:
                raise ServiceNotFound(binary, host)
            service_rows.set_disabled(s, row, disabled, reason if disabled else None)
            log.info(
                "service %s host=%s binary=%s reason=%s",
                "disabled" if disabled else "enabled",
                host,
                binary,
                reason,
            )
            return self._record(row, datetime.now(UTC))

    def _record(self, row: Service, now: datetime) -> ServiceRecord:
        return ServiceRecord(
            binary=row.binary,
            host=row.host,
            zone=row.availability_zone,
            disabled=row.disabled,
            disabled_reason=row.disabled_reason,
            updated_at=row.updated_at,
            up=service_rows.is_up(row, self.settings.service_down_seconds, now),
            store_error=row.store_error,
        )
