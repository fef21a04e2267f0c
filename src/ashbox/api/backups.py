"""Backup endpoints: create, list, list detail, show, update, delete, restore, actions.

CINDER-CONTRACT §1.2 rows 1-7, 10 and 11, with the bodies of §1.3 and §1.4 and
the list semantics of §1.5. Validation happens here, the rules (state,
quota, policy) in the service.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ashbox.api import microversion as mv
from ashbox.api import schemas
from ashbox.api.auth import request_context
from ashbox.api.bodies import accepts, accepts_action, action_of, body_of
from ashbox.api.listing import Resource, list_response
from ashbox.api.middleware import api_version
from ashbox.api.views import JSONDict, backup_detail, backup_summary, restore_view
from ashbox.api.waiting import read_maybe_held
from ashbox.backups.service import Service
from ashbox.changes import Changes
from ashbox.records import BackupRecord, RequestContext
from ashbox.statuses import TRANSITIONAL_BACKUP

BACKUP_LIST = Resource(
    public_filters=frozenset({"name", "status", "volume_id"}),
    fields=frozenset(f.name for f in dataclasses.fields(BackupRecord)) - {"metadata", "progress"},
)


_IMPORT = schemas.envelope(
    "backup-record",
    schemas.obj(
        {
            "backup_service": {"type": "string", "minLength": 0, "maxLength": 255},
            "backup_url": {"type": "string", "minLength": 1},
        },
        required=["backup_service", "backup_url"],
    ),
)
_ACTIONS = {"os-reset_status": schemas.STATUS_RESET, "os-force_delete": schemas.ANY_VALUE}


class BackupsController:
    def __init__(self, service: Service, changes: Changes) -> None:
        self.service = service
        self.changes = changes

    @accepts(schemas.backup_create)
    async def create(self, request: Request) -> Response:
        ctx = request_context(request)
        body = body_of(request)
        spec = body["backup"]
        backup = await run_in_threadpool(
            self.service.create_backup,
            ctx,
            volume_id=spec["volume_id"],
            name=schemas.stripped(spec, "name"),
            description=schemas.stripped(spec, "description"),
            container=spec.get("container") or None,
            incremental=schemas.to_bool(spec.get("incremental", False)),
            force=schemas.to_bool(spec.get("force", False)),
            snapshot_id=spec.get("snapshot_id"),
            metadata=spec.get("metadata") or None,
            availability_zone=spec.get("availability_zone"),
        )
        return JSONResponse({"backup": backup_summary(request, backup)}, status_code=202)

    async def index(self, request: Request) -> Response:
        return await self._list(request, detail=False)

    async def detail(self, request: Request) -> Response:
        return await self._list(request, detail=True)

    async def show(self, request: Request) -> Response:
        ctx = request_context(request)
        backup_id = request.path_params["backup_id"]
        read = functools.partial(self.service.get_backup, ctx, backup_id)
        backup, headers = await read_maybe_held(
            request, self.changes, backup_id, read, TRANSITIONAL_BACKUP
        )
        body = {"backup": backup_detail(request, backup, ctx, api_version(request))}
        return JSONResponse(body, headers=headers)

    @accepts(schemas.backup_update, since=mv.BACKUP_UPDATE)
    async def update(self, request: Request) -> Response:
        ctx = request_context(request)
        body = body_of(request)
        spec = body["backup"]
        changes: dict[str, Any] = {}
        if "name" in spec:
            changes["name"] = schemas.stripped(spec, "name")
        if "description" in spec:
            changes["description"] = spec["description"]
        if "metadata" in spec:
            changes["metadata"] = spec["metadata"] or {}
        backup = await run_in_threadpool(
            functools.partial(
                self.service.update_backup, ctx, request.path_params["backup_id"], **changes
            )
        )
        return JSONResponse({"backup": backup_summary(request, backup)})

    @accepts_action(_ACTIONS)
    async def action(self, request: Request) -> Response:
        """os-reset_status and os-force_delete (admin)."""
        ctx = request_context(request)
        backup_id = request.path_params["backup_id"]
        name, value = action_of(request)
        if name == "os-reset_status":
            status = str(value["status"]).lower()
            await run_in_threadpool(self.service.reset_backup_status, ctx, backup_id, status)
        else:
            await run_in_threadpool(
                functools.partial(self.service.delete_backup, ctx, backup_id, force=True)
            )
        return Response(status_code=202)

    async def export_record(self, request: Request) -> Response:
        ctx = request_context(request)
        service, url = await run_in_threadpool(
            self.service.export_record, ctx, request.path_params["backup_id"]
        )
        return JSONResponse({"backup-record": {"backup_service": service, "backup_url": url}})

    @accepts(_IMPORT)
    async def import_record(self, request: Request) -> Response:
        ctx = request_context(request)
        spec = body_of(request)["backup-record"]
        backup = await run_in_threadpool(
            self.service.import_record, ctx, spec["backup_service"], spec["backup_url"]
        )
        return JSONResponse({"backup": backup_summary(request, backup)}, status_code=201)

    async def delete(self, request: Request) -> Response:
        ctx = request_context(request)
        await run_in_threadpool(self.service.delete_backup, ctx, request.path_params["backup_id"])
        return Response(status_code=202)

    @accepts(schemas.BACKUP_RESTORE)
    async def restore(self, request: Request) -> Response:
        ctx = request_context(request)
        body = body_of(request)
        spec = body["restore"]
        restore = await run_in_threadpool(
            self.service.restore_backup,
            ctx,
            request.path_params["backup_id"],
            volume_id=spec.get("volume_id"),
            name=schemas.stripped(spec, "name"),
        )
        return JSONResponse({"restore": restore_view(restore)}, status_code=202)

    async def _list(self, request: Request, *, detail: bool) -> Response:
        def view(b: BackupRecord, ctx: RequestContext, version: mv.APIVersion) -> JSONDict:
            return backup_detail(request, b, ctx, version) if detail else backup_summary(request, b)

        fetch = self.service.list_backups
        return await list_response(request, BACKUP_LIST, "backups", fetch, view, detail=detail)
