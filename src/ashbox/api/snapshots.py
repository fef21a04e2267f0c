"""Snapshot endpoints: create, list, list detail, show, update, delete, actions.

CINDER-CONTRACT §1.7, with the bodies and keys of Cinder's snapshot API
(`cinder/api/v3/snapshots.py`, `cinder/api/views/snapshots.py`): the plain
list carries nine keys at every version; create and update add the keys of
the request's version; show and detail add the two
`os-extended-snapshot-attributes:` keys too.
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
from ashbox.api.views import JSONDict, snapshot_view
from ashbox.api.waiting import read_maybe_held
from ashbox.backups.service import Service
from ashbox.changes import Changes
from ashbox.errors import InvalidInput, VolumeNotFound
from ashbox.records import RequestContext, SnapshotRecord
from ashbox.statuses import TRANSITIONAL_SNAPSHOT

SNAPSHOT_LIST = Resource(
    public_filters=frozenset({"name", "status", "volume_id"}),
    fields=frozenset(f.name for f in dataclasses.fields(SnapshotRecord)) - {"metadata"},
    unsupported_filters=frozenset({"metadata"}),
)
_CREATE = schemas.envelope(
    "snapshot",
    schemas.obj(
        {
            "name": schemas.STRING_OR_NULL,
            "display_name": schemas.STRING_OR_NULL,
            "description": schemas.STRING_OR_NULL,
            "volume_id": schemas.UUID_OR_NULL,
            "force": schemas.BOOLEAN,
            "metadata": schemas.METADATA,
        },
        required=["volume_id"],
    ),
)
_UPDATE_FIELDS = ("name", "description", "display_name", "display_description")
_UPDATE = schemas.envelope(
    "snapshot",
    {
        **schemas.obj({k: schemas.STRING_OR_NULL for k in _UPDATE_FIELDS}),
        "anyOf": [{"required": [k]} for k in _UPDATE_FIELDS],
    },
)
_ACTIONS = {"os-reset_status": schemas.STATUS_RESET, "os-force_delete": schemas.ANY_VALUE}
# Cinder's words, misspelling and double space included (SNAPSHOT_IN_USE_FLAG_MSG).
FORCE_FALSE_MESSAGE = (
    "Since microversion 3.66 the 'force' flag is invalid for this request.  For backward "
    "compatability, however, when the 'force' flag is passed with a value evaluating to "
    "True, it is silently ignored."
)


class SnapshotsController:
    def __init__(self, service: Service, changes: Changes) -> None:
        self.service = service
        self.changes = changes

    @accepts(_CREATE)
    async def create(self, request: Request) -> Response:
        ctx = request_context(request)
        version = api_version(request)
        spec = body_of(request)["snapshot"]
        if spec["volume_id"] is None:
            raise VolumeNotFound("None")
        force = schemas.to_bool(spec["force"]) if "force" in spec else None
        if version.at_least(mv.SNAPSHOT_IN_USE):
            if force is False:
                raise InvalidInput(FORCE_FALSE_MESSAGE)
            force = True  # from 3.66 an in-use volume needs no force
        snapshot = await run_in_threadpool(
            functools.partial(
                self.service.create_snapshot,
                ctx,
                volume_id=spec["volume_id"],
                name=schemas.stripped(spec, "name") or schemas.stripped(spec, "display_name"),
                description=spec.get("description"),
                metadata=spec.get("metadata") or None,
                force=bool(force),
            )
        )
        body = {"snapshot": snapshot_view(snapshot, ctx, version, extended=False)}
        return JSONResponse(body, status_code=202)

    async def index(self, request: Request) -> Response:
        return await self._list(request, detail=False)

    async def detail(self, request: Request) -> Response:
        return await self._list(request, detail=True)

    async def show(self, request: Request) -> Response:
        ctx = request_context(request)
        snapshot_id = request.path_params["snapshot_id"]
        read = functools.partial(self.service.get_snapshot, ctx, snapshot_id)
        snapshot, headers = await read_maybe_held(
            request, self.changes, snapshot_id, read, TRANSITIONAL_SNAPSHOT
        )
        body = {"snapshot": snapshot_view(snapshot, ctx, api_version(request), extended=True)}
        return JSONResponse(body, headers=headers)

    @accepts(_UPDATE)
    async def update(self, request: Request) -> Response:
        ctx = request_context(request)
        spec = body_of(request)["snapshot"]
        changes: dict[str, Any] = {}
        for key in ("name", "description"):
            for given in (key, f"display_{key}"):
                if given in spec:
                    changes[key] = spec[given]
        snapshot = await run_in_threadpool(
            functools.partial(
                self.service.update_snapshot, ctx, request.path_params["snapshot_id"], **changes
            )
        )
        body = {"snapshot": snapshot_view(snapshot, ctx, api_version(request), extended=False)}
        return JSONResponse(body)

    async def delete(self, request: Request) -> Response:
        ctx = request_context(request)
        snapshot_id = request.path_params["snapshot_id"]
        await run_in_threadpool(self.service.delete_snapshot, ctx, snapshot_id)
        return Response(status_code=202)

    @accepts_action(_ACTIONS)
    async def action(self, request: Request) -> Response:
        ctx = request_context(request)
        snapshot_id = request.path_params["snapshot_id"]
        name, value = action_of(request)
        if name == "os-reset_status":
            status = str(value["status"]).lower()
            await run_in_threadpool(self.service.reset_snapshot_status, ctx, snapshot_id, status)
        else:
            await run_in_threadpool(
                functools.partial(self.service.delete_snapshot, ctx, snapshot_id, force=True)
            )
        return Response(status_code=202)

    async def _list(self, request: Request, *, detail: bool) -> Response:
        def view(s: SnapshotRecord, ctx: RequestContext, version: mv.APIVersion) -> JSONDict:
            # The plain list has Cinder's nine keys at every version.
            shown = version if detail else mv.MIN_VERSION
            return snapshot_view(s, ctx, shown, extended=detail)

        fetch = self.service.list_snapshots
        return await list_response(request, SNAPSHOT_LIST, "snapshots", fetch, view, detail=detail)
