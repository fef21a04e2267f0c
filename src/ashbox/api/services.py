"""Backup services (`os-services`): list, enable, disable, disable with a reason.

Cinder's `cinder/api/v3/services.py` for its `cinder-backup` binary: every
host running ashbox workers is one service; the list's `state` is `up` while
the host's heartbeat is younger than `service_down_seconds`. Cinder's volume
replication actions (freeze, thaw, failover_host) name a `cinder-volume`
service, which ashbox has none of: they answer as Cinder does for a host
without one. Its log-level actions do not exist here.
"""

from __future__ import annotations

import functools
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ashbox.api import microversion as mv
from ashbox.api import schemas
from ashbox.api.auth import request_context
from ashbox.api.bodies import accepts, body_of
from ashbox.api.links import format_time
from ashbox.api.middleware import api_version
from ashbox.api.views import wants_extras
from ashbox.backups.hosts import SERVICES_UPDATE_RULE
from ashbox.backups.service import Service
from ashbox.errors import InvalidInput
from ashbox.records import ServiceRecord

_NAME: schemas.Schema = {"type": "string", "minLength": 1, "maxLength": 255}
# Cinder's `cinder_host`: hostname, hostname@backend, hostname@backend#pool.
_HOST: schemas.Schema = {
    "type": ["string", "null"],
    "minLength": 1,
    "maxLength": 255,
    "pattern": r"^[a-zA-Z0-9-._#@:/+\[\]]*$",
}
_SWITCH: schemas.Schema = {
    **schemas.obj(
        {"binary": _NAME, "host": _HOST, "cluster": schemas.STRING_OR_NULL, "service": _NAME}
    ),
    "anyOf": [{"required": ["binary"]}, {"required": ["service"]}],
}
_FREEZE: schemas.Schema = schemas.obj({"host": _HOST, "cluster": schemas.STRING_OR_NULL})
_FAILOVER: schemas.Schema = schemas.obj(
    {**_FREEZE["properties"], "backend_id": schemas.STRING_OR_NULL}
)
_SWITCH_WITH_REASON: schemas.Schema = {
    **_SWITCH,
    "properties": {
        **_SWITCH["properties"],
        "disabled_reason": {**_NAME, "format": "disabled_reason"},
    },
}


class ServicesController:
    def __init__(self, service: Service) -> None:
        self.service = service

    async def index(self, request: Request) -> Response:
        ctx = request_context(request)
        listed = await run_in_threadpool(
            functools.partial(
                self.service.list_services,
                ctx,
                host=request.query_params.get("host"),
                binary=request.query_params.get("binary"),
            )
        )
        with_cluster = api_version(request).at_least(mv.CLUSTER_SUPPORT)
        extras = wants_extras(request)
        return JSONResponse({"services": [_view(s, with_cluster, extras) for s in listed]})

    @accepts(_SWITCH)
    async def enable(self, request: Request) -> Response:
        body = await self._switch(request, disabled=False)
        return JSONResponse(
            {**body, "status": "enabled", "disabled": False, "disabled_reason": None}
        )

    @accepts(_SWITCH)
    async def disable(self, request: Request) -> Response:
        body = await self._switch(request, disabled=True)
        return JSONResponse({**body, "status": "disabled", "disabled": True})

    @accepts(_SWITCH_WITH_REASON)
    async def disable_log_reason(self, request: Request) -> Response:
        reason = body_of(request).get("disabled_reason")
        body = await self._switch(request, disabled=True, reason=reason)
        return JSONResponse(
            {**body, "status": "disabled", "disabled": True, "disabled_reason": reason}
        )

    @accepts(_FREEZE)
    async def freeze_or_thaw(self, request: Request) -> Response:
        return self._no_volume_backend(request)

    @accepts(_FAILOVER)
    async def failover_host(self, request: Request) -> Response:
        return self._no_volume_backend(request)

    def _no_volume_backend(self, request: Request) -> Response:
        """freeze, thaw and failover_host: there is no volume back end to act on."""
        request_context(request).authorize(SERVICES_UPDATE_RULE)
        body = body_of(request)
        host, cluster = body.get("host"), body.get("cluster")
        if api_version(request).at_least(mv.REPLICATION_CLUSTER):
            if bool(host) == bool(cluster):
                raise InvalidInput(
                    "Invalid input received: One and only one of cluster and host must be set."
                )
        elif not host:
            raise InvalidInput("Invalid input received: Host field is missing.")
        where = f"host={host}" if host else f"cluster={cluster}"
        raise InvalidInput(f"Invalid input received: No service found with {where}")

    async def _switch(
        self, request: Request, *, disabled: bool, reason: str | None = None
    ) -> dict[str, Any]:
        """The service the body names switched; the keys of Cinder's answer that echo it."""
        ctx = request_context(request)
        body = body_of(request)
        host = body.get("host")
        if not host:
            raise InvalidInput("Invalid input received: Host field is missing.")
        service, binary = body.get("service", ""), body.get("binary", "")
        await run_in_threadpool(
            functools.partial(
                self.service.set_service_disabled,
                ctx,
                host=host,
                binary=binary or service,
                disabled=disabled,
                reason=reason,
            )
        )
        return {"host": host, "service": service, "binary": binary}


def _view(service: ServiceRecord, with_cluster: bool, extras: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "binary": service.binary,
        "host": service.host,
        "zone": service.zone,
        "status": "disabled" if service.disabled else "enabled",
        "state": "up" if service.up else "down",
        "updated_at": format_time(service.updated_at),
        "disabled_reason": service.disabled_reason,
    }
    if with_cluster:
        view["cluster"] = None
    if extras:
        view["os-ashbox-service:store_state"] = "down" if service.store_error else "up"
        view["os-ashbox-service:store_error"] = service.store_error
    return view
