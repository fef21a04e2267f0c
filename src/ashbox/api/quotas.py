"""Quotas and limits: `os-quota-sets`, `os-quota-class-sets` and `limits`
(CINDER-CONTRACT §1.8), answered as Cinder answers them.

ashbox has no volume types and no groups: a quota set holds Cinder's
project-wide resources only (`groups` is shown, unused), and a key of a
volume type is a bad key, as Cinder says of a type it does not know.
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
from ashbox.api.middleware import api_version
from ashbox.api.views import wants_extras
from ashbox.backups.quotas import QuotaUsage
from ashbox.backups.service import Service

# Cinder validates the keys and values itself, with its own messages.
_QUOTA_SET = schemas.envelope("quota_set", {"type": "object"})
_QUOTA_CLASS_SET = schemas.envelope("quota_class_set", {"type": "object"})

# An extra of limits: the project's backups' bytes in the store, within the project.
STORED_BYTES_KEY = "os-backup-stats:totalBackupStoredBytesUsed"
# limits' absolute keys: (limit key, usage key) of each resource shown.
_ABSOLUTE = {
    "volumes": ("maxTotalVolumes", "totalVolumesUsed"),
    "snapshots": ("maxTotalSnapshots", "totalSnapshotsUsed"),
    "gigabytes": ("maxTotalVolumeGigabytes", "totalGigabytesUsed"),
    "backups": ("maxTotalBackups", "totalBackupsUsed"),
    "backup_gigabytes": ("maxTotalBackupGigabytes", "totalBackupGigabytesUsed"),
}


class QuotasController:
    def __init__(self, service: Service) -> None:
        self.service = service

    async def show(self, request: Request) -> Response:
        ctx = request_context(request)
        target = request.path_params["target"]
        shown = await run_in_threadpool(self.service.show_quotas, ctx, target)
        if _flag(request.query_params.get("usage")):
            body: dict[str, Any] = {r: _usage(u) for r, u in shown.items()}
        else:
            body = {r: u.limit for r, u in shown.items()}
        return JSONResponse({"quota_set": {"id": target, **body}})

    async def defaults(self, request: Request) -> Response:
        ctx = request_context(request)
        target = request.path_params["target"]
        limits = await run_in_threadpool(self.service.default_quotas, ctx, target)
        return JSONResponse({"quota_set": {"id": target, **limits}})

    @accepts(_QUOTA_SET)
    async def update(self, request: Request) -> Response:
        ctx = request_context(request)
        target = request.path_params["target"]
        wanted = body_of(request)["quota_set"]
        limits = await run_in_threadpool(self.service.update_quotas, ctx, target, wanted)
        return JSONResponse({"quota_set": limits})

    async def delete(self, request: Request) -> Response:
        ctx = request_context(request)
        await run_in_threadpool(self.service.delete_quotas, ctx, request.path_params["target"])
        return Response(status_code=200)

    async def show_class(self, request: Request) -> Response:
        ctx = request_context(request)
        name = request.path_params["class_name"]
        limits = await run_in_threadpool(self.service.show_quota_class, ctx, name)
        return JSONResponse({"quota_class_set": {"id": name, **limits}})

    @accepts(_QUOTA_CLASS_SET)
    async def update_class(self, request: Request) -> Response:
        ctx = request_context(request)
        name = request.path_params["class_name"]
        wanted = body_of(request)["quota_class_set"]
        limits = await run_in_threadpool(self.service.update_quota_class, ctx, name, wanted)
        return JSONResponse({"quota_class_set": limits})

    async def limits(self, request: Request) -> Response:
        ctx = request_context(request)
        project_id = None
        if api_version(request).at_least(mv.LIMITS_ADMIN_FILTER):
            project_id = request.query_params.get("project_id")
        shown = await run_in_threadpool(
            functools.partial(self.service.limits, ctx, project_id=project_id)
        )
        absolute: dict[str, int] = {}
        for resource, (limit_key, used_key) in _ABSOLUTE.items():
            absolute[limit_key] = shown[resource].limit
            absolute[used_key] = shown[resource].in_use
        if wants_extras(request):
            absolute[STORED_BYTES_KEY] = await run_in_threadpool(
                functools.partial(self.service.stored_bytes, ctx, project_id=project_id)
            )
        return JSONResponse({"limits": {"rate": [], "absolute": absolute}})


def _usage(usage: QuotaUsage) -> dict[str, int]:
    return {"limit": usage.limit, "in_use": usage.in_use, "reserved": usage.reserved}


def _flag(value: str | None) -> bool:
    """A query flag as Cinder reads one (oslo's bool_from_string: unknown is false)."""
    return value is not None and value.strip().lower() in schemas.TRUE_STRINGS
