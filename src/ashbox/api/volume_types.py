"""Volume types: `/types`, their `extra_specs` and their `encryption`, with
Cinder's bodies, answers and messages (docs/volume-types.md).
"""

from __future__ import annotations

import functools
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ashbox.api import schemas
from ashbox.api.auth import request_context
from ashbox.api.bodies import QueryParameter, accepts, body_of, queries
from ashbox.api.links import format_time
from ashbox.api.views import JSONDict
from ashbox.backups.service import Service
from ashbox.errors import InvalidInput, VolumeTypeEncryptionNotFound
from ashbox.records import EncryptionRecord, RequestContext, VolumeTypeRecord

_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
_SPEC_KEY = "^[a-zA-Z0-9-_:.]{1,255}$"
_SPEC_VALUE = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}
_CREATE_SPECS = {
    "type": "object",
    "patternProperties": {"^[a-zA-Z0-9-_:. /]{1,255}$": _SPEC_VALUE},
    "additionalProperties": False,
}
_SPECS = {
    "type": "object",
    "patternProperties": {_SPEC_KEY: _SPEC_VALUE},
    "additionalProperties": False,
}

TYPE_CREATE = schemas.envelope(
    "volume_type",
    schemas.obj(
        {
            "name": _NAME,
            "description": schemas.DESCRIPTION,
            "extra_specs": _CREATE_SPECS,
            "os-volume-type-access:is_public": schemas.BOOLEAN,
        },
        required=["name"],
    ),
)
TYPE_UPDATE = schemas.envelope(
    "volume_type",
    schemas.obj(
        {
            "name": {**_NAME, "type": ["string", "null"]},
            "description": schemas.DESCRIPTION,
            "is_public": schemas.BOOLEAN,
        }
    ),
)
SPECS_CREATE = schemas.envelope("extra_specs", _SPECS)
SPEC_UPDATE = {**_SPECS, "minProperties": 1, "maxProperties": 1}
_ENCRYPTION_FIELDS = {
    "provider": {"type": "string", "minLength": 0, "maxLength": 255},
    "control_location": {"enum": ["front-end", "back-end"]},
    "cipher": {"type": ["string", "null"], "minLength": 0, "maxLength": 255},
    "key_size": {
        "type": ["integer", "string", "null"],
        "pattern": "^[0-9]+$",
        "minimum": 0,
        "maximum": schemas.MAX_VOLUME_SIZE,
    },
}
ENCRYPTION_CREATE = schemas.envelope(
    "encryption", schemas.obj(_ENCRYPTION_FIELDS, required=["provider", "control_location"])
)
ENCRYPTION_UPDATE = schemas.envelope("encryption", schemas.obj(_ENCRYPTION_FIELDS))

TYPE_LIST_QUERY: list[QueryParameter] = [
    (
        "is_public",
        {"type": "string"},
        "admins: true (the default) lists public types, false private ones, None all",
    )
]
_ACCESS_RULE = "volume_extension:volume_type_access"
_SPECS_RULE = "volume_extension:access_types_extra_specs"
_QOS_RULE = "volume_extension:access_types_qos_specs_id"


class VolumeTypesController:
    def __init__(self, service: Service) -> None:
        self.service = service

    @queries(TYPE_LIST_QUERY)
    async def index(self, request: Request) -> Response:
        """List the volume types."""
        ctx = request_context(request)
        is_public = _is_public(request.query_params.get("is_public"))
        listing = functools.partial(self.service.list_volume_types, ctx, is_public=is_public)
        types = await run_in_threadpool(listing)
        return JSONResponse({"volume_types": [type_view(t, ctx) for t in types]})

    async def show(self, request: Request) -> Response:
        """Show a volume type; `default` is the type volumes get when they ask for none."""
        ctx = request_context(request)
        found = await run_in_threadpool(
            self.service.get_volume_type, ctx, request.path_params["type_id"]
        )
        return JSONResponse({"volume_type": type_view(found, ctx)})

    @accepts(TYPE_CREATE)
    async def create(self, request: Request) -> Response:
        """Create a volume type (admin)."""
        ctx = request_context(request)
        spec = body_of(request)["volume_type"]
        public = spec.get("os-volume-type-access:is_public", True)
        create = functools.partial(
            self.service.create_volume_type,
            ctx,
            name=spec["name"],
            description=spec.get("description"),
            extra_specs=spec.get("extra_specs") or {},
            is_public=schemas.to_bool(public),
        )
        created = await run_in_threadpool(create)
        return JSONResponse({"volume_type": type_view(created, ctx, qos=False)})

    @accepts(TYPE_UPDATE)
    async def update(self, request: Request) -> Response:
        """Rename a volume type, or change its description or visibility (admin)."""
        ctx = request_context(request)
        spec = body_of(request)["volume_type"]
        public = spec.get("is_public")
        update = functools.partial(
            self.service.update_volume_type,
            ctx,
            request.path_params["type_id"],
            name=spec.get("name"),
            description=spec.get("description"),
            is_public=None if public is None else schemas.to_bool(public),
        )
        updated = await run_in_threadpool(update)
        return JSONResponse({"volume_type": type_view(updated, ctx, qos=False, access=False)})

    async def delete(self, request: Request) -> Response:
        """Delete a volume type no volume has (admin)."""
        ctx = request_context(request)
        await run_in_threadpool(
            self.service.delete_volume_type, ctx, request.path_params["type_id"]
        )
        return Response(status_code=202)

    async def specs_index(self, request: Request) -> Response:
        """A volume type's extra specs."""
        ctx = request_context(request)
        specs = await run_in_threadpool(
            self.service.volume_type_extra_specs, ctx, request.path_params["type_id"]
        )
        return JSONResponse({"extra_specs": specs})

    @accepts(SPECS_CREATE)
    async def specs_create(self, request: Request) -> Response:
        """Add extra specs to a volume type no volume has (admin)."""
        ctx = request_context(request)
        body = body_of(request)
        await run_in_threadpool(
            self.service.add_volume_type_extra_specs,
            ctx,
            request.path_params["type_id"],
            body["extra_specs"],
        )
        return JSONResponse(body)

    async def specs_show(self, request: Request) -> Response:
        """One extra spec of a volume type."""
        ctx = request_context(request)
        key = request.path_params["key"]
        value = await run_in_threadpool(
            self.service.volume_type_extra_spec, ctx, request.path_params["type_id"], key
        )
        return JSONResponse({key: value})

    @accepts(SPEC_UPDATE)
    async def specs_update(self, request: Request) -> Response:
        """Set one extra spec of a volume type no volume has (admin)."""
        ctx = request_context(request)
        body = body_of(request)
        key = request.path_params["key"]
        if key not in body:
            raise InvalidInput("Request body and URI mismatch")
        await run_in_threadpool(
            self.service.set_volume_type_extra_spec,
            ctx,
            request.path_params["type_id"],
            key,
            body[key],
        )
        return JSONResponse(body)

    async def specs_delete(self, request: Request) -> Response:
        """Delete one extra spec of a volume type no volume has (admin)."""
        ctx = request_context(request)
        await run_in_threadpool(
            self.service.delete_volume_type_extra_spec,
            ctx,
            request.path_params["type_id"],
            request.path_params["key"],
        )
        return Response(status_code=202)

    async def encryption_index(self, request: Request) -> Response:
        """A volume type's encryption; `{}` if it has none (admin)."""
        ctx = request_context(request)
        found = await run_in_threadpool(
            self.service.volume_type_encryption, ctx, request.path_params["type_id"]
        )
        return JSONResponse(encryption_view(found) if found is not None else {})

    async def encryption_show(self, request: Request) -> Response:
        """One field of a volume type's encryption (admin)."""
        ctx = request_context(request)
        type_id, key = request.path_params["type_id"], request.path_params["item"]
        found = await run_in_threadpool(self.service.volume_type_encryption, ctx, type_id)
        fields = encryption_view(found) if found is not None else {}
        if key not in fields:
            raise VolumeTypeEncryptionNotFound(type_id)
        return JSONResponse({key: fields[key]})

    @accepts(ENCRYPTION_CREATE)
    async def encryption_create(self, request: Request) -> Response:
        """Make a volume type no volume has encrypted (admin)."""
        ctx = request_context(request)
        fields = _encryption_fields(body_of(request)["encryption"])
        created = await run_in_threadpool(
            self.service.create_volume_type_encryption,
            ctx,
            request.path_params["type_id"],
            fields,
        )
        return JSONResponse({"encryption": {**fields, **_ids(created)}})

    @accepts(ENCRYPTION_UPDATE)
    async def encryption_update(self, request: Request) -> Response:
        """Change the encryption of a volume type no volume has (admin)."""
        ctx = request_context(request)
        fields = _encryption_fields(body_of(request)["encryption"])
        await run_in_threadpool(
            self.service.update_volume_type_encryption,
            ctx,
            request.path_params["type_id"],
            fields,
        )
        return JSONResponse({"encryption": fields})

    async def encryption_delete(self, request: Request) -> Response:
        """Make a volume type no volume has unencrypted (admin)."""
        ctx = request_context(request)
        await run_in_threadpool(
            self.service.delete_volume_type_encryption, ctx, request.path_params["type_id"]
        )
        return Response(status_code=202)


def type_view(
    found: VolumeTypeRecord, ctx: RequestContext, *, qos: bool = True, access: bool = True
) -> JSONDict:
    """A type as show and list give it. As Cinder's, and Tempest's schemas hold
    it: create answers without `qos_specs_id` (`qos` False), and update without
    `os-volume-type-access:is_public` either (`access` False)."""
    body: JSONDict = {
        "id": found.id,
        "name": found.name,
        "is_public": found.is_public,
        "description": found.description,
    }
    if ctx.allows(_SPECS_RULE):
        body["extra_specs"] = dict(found.extra_specs)
    if qos and ctx.allows(_QOS_RULE):
        body["qos_specs_id"] = None  # ashbox has no QoS specs
    if access and ctx.allows(_ACCESS_RULE):
        body["os-volume-type-access:is_public"] = found.is_public
    return body


def encryption_view(found: EncryptionRecord) -> JSONDict:
    return {
        **_ids(found),
        "provider": found.provider,
        "cipher": found.cipher,
        "key_size": found.key_size,
        "control_location": found.control_location,
        "created_at": format_time(found.created_at),
        "updated_at": format_time(found.updated_at),
        "deleted": False,
        "deleted_at": None,
    }


def _ids(found: EncryptionRecord) -> JSONDict:
    return {"volume_type_id": found.volume_type_id, "encryption_id": found.encryption_id}


def _encryption_fields(spec: dict[str, Any]) -> dict[str, Any]:
    fields = dict(spec)
    size = fields.get("key_size")
    if size is not None:
        digits = str(size).lstrip("0") or "0"
        if len(digits) > len(str(schemas.MAX_VOLUME_SIZE)) or int(digits) > schemas.MAX_VOLUME_SIZE:
            raise InvalidInput(f"Invalid input received: key_size {size} is too large.")
        fields["key_size"] = int(digits)
    return fields


def _is_public(raw: str | None) -> bool | None:
    """Cinder's `_parse_is_public`: public only by default, `None` for every type."""
    if raw is None:
        return True
    if raw.lower() == "none":
        return None
    if raw.lower() not in schemas.TRUE_STRINGS | schemas.FALSE_STRINGS:
        raise InvalidInput(f"Invalid is_public filter [{raw}]")
    return raw.lower() in schemas.TRUE_STRINGS
