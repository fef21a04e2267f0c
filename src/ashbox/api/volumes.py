"""Volume endpoints a backup workflow needs: create, show, list, delete, manage.

CINDER-CONTRACT §1.7. A volume has a type (`volume_type`, by id or name; the
default type otherwise: docs/volume-types.md). Creating from a backup
(`backup_id`, 3.47) restores it into the new volume, of the backup's source
type; creating from a snapshot, image or other volume is out of scope and
refused with a 400 naming the field; `manageable_volumes`
and `os-volume-manage` (Cinder's manage API) put an existing raw file or block
device under ashbox, in place.
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
from ashbox.api.listing import Resource, bool_param, list_response
from ashbox.api.middleware import api_version
from ashbox.api.views import JSONDict, volume_detail, volume_summary
from ashbox.api.waiting import read_maybe_held
from ashbox.backups.service import NewVolume, Service
from ashbox.changes import Changes
from ashbox.config import Settings
from ashbox.errors import InvalidInput
from ashbox.records import RequestContext, VolumeRecord
from ashbox.statuses import TRANSITIONAL_VOLUME

VOLUME_LIST = Resource(
    public_filters=frozenset(
        (
            "name",
            "status",
            "metadata",
            "bootable",
            "migration_status",
            "availability_zone",
            "group_id",
            "size",
            "created_at",
            "updated_at",
        )
    ),
    fields=frozenset(f.name for f in dataclasses.fields(VolumeRecord)) - {"metadata"},
    unsupported_filters=frozenset({"metadata", "glance_metadata"}),
)

# Volume sources ashbox does not offer; a non-null value is a 400.
_UNSUPPORTED_SOURCES = (
    "snapshot_id",
    "source_volid",
    "consistencygroup_id",
    "group_id",
    "imageRef",
    "image_id",
)


_ATTACH = {
    "type": "object",
    "properties": {
        "instance_uuid": schemas.UUID,
        "host_name": {"type": "string", "maxLength": 255},
        "mountpoint": {"type": "string", "minLength": 1, "maxLength": 255},
        "mode": {"type": "string", "enum": ["rw", "ro"]},
    },
    "required": ["mountpoint"],
    "anyOf": [{"required": ["instance_uuid"]}, {"required": ["host_name"]}],
    "additionalProperties": False,
}
_DETACH = {
    "type": ["object", "null"],
    "properties": {"attachment_id": schemas.UUID_OR_NULL},
    "additionalProperties": False,
}
_RESET = {
    "type": "object",
    "properties": {
        "status": schemas.STRING_OR_NULL,
        "attach_status": schemas.STRING_OR_NULL,
        "migration_status": schemas.STRING_OR_NULL,
    },
    "additionalProperties": False,
}
_ACTIONS = {
    "os-attach": _ATTACH,
    "os-detach": _DETACH,
    "os-reset_status": _RESET,
    "os-force_delete": schemas.ANY_VALUE,
}
_ATTACH_STATUSES = {"attached": "in-use", "detached": "available"}


class VolumesController:
    def __init__(self, service: Service, settings: Settings, changes: Changes) -> None:
        self.service = service
        self.settings = settings
        self.changes = changes

    @accepts(schemas.volume_create)
    async def create(self, request: Request) -> Response:
        ctx = request_context(request)
        version = api_version(request)
        body = body_of(request)
        spec = body["volume"]
        backup_id = spec.get("backup_id")
        if backup_id is not None and not version.at_least(mv.VOLUME_CREATE_FROM_BACKUP):
            raise InvalidInput("Invalid input received: backup_id needs microversion 3.47.")
        _refuse_unsupported(spec)
        zone = spec.get("availability_zone")
        if zone is not None and zone != self.settings.availability_zone:
            # Cinder's InvalidAvailabilityZone, word for word.
            raise InvalidInput(f"Availability zone '{zone}' is invalid.")
        name = schemas.stripped(spec, "name") or schemas.stripped(spec, "display_name")
        description = schemas.stripped(spec, "description") or schemas.stripped(
            spec, "display_description"
        )
        if backup_id is not None:
            new = NewVolume(
                name=name,
                description=description,
                size=None if spec.get("size") is None else _size(spec.get("size")),
                metadata=spec.get("metadata") or None,
                availability_zone=zone,
            )
            volume = await run_in_threadpool(
                self.service.create_volume_from_backup, ctx, backup_id, new
            )
            return JSONResponse(
                {"volume": volume_detail(request, volume, ctx, version, extended=False)},
                status_code=202,
            )
        volume = await run_in_threadpool(
            self.service.create_volume,
            ctx,
            size=_size(spec.get("size")),
            name=name,
            description=description,
            metadata=spec.get("metadata") or None,
            availability_zone=zone,
            volume_type=spec.get("volume_type"),
        )
        return JSONResponse(
            {"volume": volume_detail(request, volume, ctx, version, extended=False)},
            status_code=202,
        )

    @accepts(schemas.VOLUME_MANAGE)
    async def manage(self, request: Request) -> Response:
        ctx = request_context(request)
        body = body_of(request)
        spec = body["volume"]
        path = spec["ref"]["source-name"]
        if not path.startswith("/"):
            raise InvalidInput(
                f"Invalid input received: ref source-name must be an absolute path, got {path!r}"
            )
        if schemas.to_bool(spec.get("bootable", False)):
            raise InvalidInput("Invalid input received: bootable volumes are not supported.")
        zone = spec.get("availability_zone")
        if zone is not None and zone != self.settings.availability_zone:
            raise InvalidInput(
                f"Invalid input received: availability zone {zone!r} does not exist; "
                f"this service is in {self.settings.availability_zone!r}."
            )
        volume = await run_in_threadpool(
            self.service.import_volume,
            ctx,
            path=path,
            name=schemas.stripped(spec, "name"),
            description=schemas.stripped(spec, "description"),
            metadata=spec.get("metadata") or None,
            host=spec.get("host"),
            volume_type=spec.get("volume_type"),
        )
        return JSONResponse(
            {"volume": volume_detail(request, volume, ctx, api_version(request), extended=False)},
            status_code=202,
        )

    @accepts_action(_ACTIONS)
    async def action(self, request: Request) -> Response:
        """os-attach and os-detach set and clear `in-use`; os-reset_status and
        os-force_delete (admin)."""
        ctx = request_context(request)
        volume_id = request.path_params["volume_id"]
        name, value = action_of(request)
        if name == "os-attach":
            await run_in_threadpool(self.service.attach_volume, ctx, volume_id)
        elif name == "os-detach":
            await run_in_threadpool(self.service.detach_volume, ctx, volume_id)
        elif name == "os-force_delete":
            force = functools.partial(self.service.delete_volume, ctx, volume_id, force=True)
            await run_in_threadpool(force)
        else:
            status = _reset_status(value)
            await run_in_threadpool(self.service.reset_volume_status, ctx, volume_id, status)
        return Response(status_code=202)

    async def index(self, request: Request) -> Response:
        return await self._list(request, detail=False)

    async def detail(self, request: Request) -> Response:
        return await self._list(request, detail=True)

    async def show(self, request: Request) -> Response:
        ctx = request_context(request)
        volume_id = request.path_params["volume_id"]
        read = functools.partial(self.service.get_volume, ctx, volume_id)
        volume, headers = await read_maybe_held(
            request, self.changes, volume_id, read, TRANSITIONAL_VOLUME
        )
        body = {"volume": volume_detail(request, volume, ctx, api_version(request))}
        return JSONResponse(body, headers=headers)

    async def delete(self, request: Request) -> Response:
        ctx = request_context(request)
        params = request.query_params
        if "cascade" in params:
            bool_param("cascade", params["cascade"])  # no snapshots exist: nothing to cascade
        if "force" in params and bool_param("force", params["force"]):
            raise InvalidInput("Invalid input received: force-deleting volumes is not supported.")
        await run_in_threadpool(self.service.delete_volume, ctx, request.path_params["volume_id"])
        return Response(status_code=202)

    async def _list(self, request: Request, *, detail: bool) -> Response:
        def view(v: VolumeRecord, ctx: RequestContext, version: mv.APIVersion) -> JSONDict:
            return volume_detail(request, v, ctx, version) if detail else volume_summary(request, v)

        fetch = self.service.list_volumes
        return await list_response(request, VOLUME_LIST, "volumes", fetch, view, detail=detail)


def _refuse_unsupported(spec: dict[str, Any]) -> None:
    for key in _UNSUPPORTED_SOURCES:
        if spec.get(key) is not None:
            raise InvalidInput(f"Invalid input received: {key} is not supported.")
    if spec.get("multiattach"):
        raise InvalidInput("Invalid input received: multiattach volumes are not supported.")


def _reset_status(value: dict[str, Any]) -> str:
    """The status an os-reset_status body asks for (an attach status says it too)."""
    status, attach = value.get("status"), value.get("attach_status")
    if not (status or attach or value.get("migration_status")):
        raise InvalidInput(
            "Must specify 'status', 'attach_status' or 'migration_status' for update."
        )
    if attach is not None and attach.lower() not in _ATTACH_STATUSES:
        raise InvalidInput(
            f"Volume attach status: {attach} is invalid, valid statuses are: "
            f"{list(_ATTACH_STATUSES)}."
        )
    if status:
        return str(status).lower()
    if attach:
        return _ATTACH_STATUSES[attach.lower()]
    raise InvalidInput("Invalid input received: ashbox volumes have no migration status.")


def _size(raw: object) -> int:
    """A size the schema let through, checked again: the schema's maximum does not
    apply to a string, and `int()` of thousands of digits raises."""
    text = str(raw) if isinstance(raw, int | str) else ""
    digits = text.lstrip("0") if text.isascii() and text.isdigit() else ""
    if not digits:
        raise InvalidInput(
            f"Invalid input received: Volume size '{raw}' must be an integer and greater than 0"
        )
    if len(digits) > len(str(schemas.MAX_VOLUME_SIZE)) or int(digits) > schemas.MAX_VOLUME_SIZE:
        raise InvalidInput(
            f"Invalid input received: Volume size '{raw}' must be at most "
            f"{schemas.MAX_VOLUME_SIZE} GiB"
        )
    return int(digits)
