"""Request body schemas and their validation (CINDER-CONTRACT §1.3, §1.7).

Cinder's `cinder/api/schemas/{backups,volumes,volume_manage}.py` and
`parameter_types.py`: every object has `additionalProperties: false`, and a
failure reads `Invalid input for field/attribute <f>. Value: <v>. <message>`.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]
from starlette.requests import Request

from ashbox.api import microversion as mv
from ashbox.api.parsing import parse_json, refuse_nul
from ashbox.errors import InvalidInput

Schema = dict[str, Any]

# GiB. Cinder's `size` column is a 32-bit Integer, as ashbox's is; so many GiB
# are 2**61 bytes, well inside the int64 `off_t` a volume file's size is.
MAX_VOLUME_SIZE = 2**31 - 1

TRUE_STRINGS = frozenset({"1", "t", "true", "on", "y", "yes"})
FALSE_STRINGS = frozenset({"0", "f", "false", "off", "n", "no"})

BOOLEAN: Schema = {
    "type": ["boolean", "string"],
    "enum": [
        *(True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t"),
        *(False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no", "n", "f"),
    ],
}
UUID: Schema = {"type": "string", "format": "uuid"}
UUID_OR_NULL: Schema = {"type": ["string", "null"], "format": "uuid"}
STRING_OR_NULL: Schema = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}
DESCRIPTION: Schema = {**STRING_OR_NULL, "format": "printable"}
METADATA: Schema = {
    "type": ["object", "null"],
    "patternProperties": {"^[a-zA-Z0-9-_:. /]{1,255}$": {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}


def backup_create(version: mv.APIVersion) -> Schema:
    fields: Schema = {
        "volume_id": UUID,
        "container": STRING_OR_NULL,
        "description": DESCRIPTION,
        "incremental": BOOLEAN,
        "force": BOOLEAN,
        "name": STRING_OR_NULL,
        "snapshot_id": UUID_OR_NULL,
    }
    if version.at_least(mv.BACKUP_METADATA):
        fields["metadata"] = METADATA
    if version.at_least(mv.BACKUP_AZ):
        fields["availability_zone"] = STRING_OR_NULL
    return envelope("backup", obj(fields, required=["volume_id"]))


def backup_update(version: mv.APIVersion) -> Schema:
    fields: Schema = {"name": STRING_OR_NULL, "description": DESCRIPTION}
    if version.at_least(mv.BACKUP_METADATA):
        fields["metadata"] = METADATA
    return envelope("backup", obj(fields))


def volume_create(version: mv.APIVersion) -> Schema:
    fields: Schema = {
        "name": STRING_OR_NULL,
        "description": DESCRIPTION,
        "display_name": STRING_OR_NULL,
        "display_description": DESCRIPTION,
        "volume_type": STRING_OR_NULL,
        "metadata": METADATA,
        "snapshot_id": UUID_OR_NULL,
        "source_volid": UUID_OR_NULL,
        "consistencygroup_id": UUID_OR_NULL,
        "group_id": UUID_OR_NULL,
        "backup_id": UUID_OR_NULL,
        "size": {
            "type": ["integer", "string", "null"],
            "pattern": "^[0-9]+$",
            "minimum": 1,
            "maximum": MAX_VOLUME_SIZE,
        },
        "availability_zone": STRING_OR_NULL,
        "multiattach": {"type": ["boolean", "null"]},
        "image_id": STRING_OR_NULL,
        "imageRef": STRING_OR_NULL,
    }
    volume = obj(fields)
    volume["additionalProperties"] = not version.at_least(mv.SUPPORT_VOLUME_SCHEMA_CHANGES)
    schema = envelope("volume", volume)
    schema["properties"]["OS-SCH-HNT:scheduler_hints"] = {"type": ["object", "null"]}
    return schema


def validate(schema: Schema, body: object) -> None:
    """InvalidInput with Cinder's message for the first error of `body` against `schema`."""
    validator = jsonschema.Draft4Validator(schema, format_checker=_FORMATS)
    error = next(iter(validator.iter_errors(body)), None)
    if error is None:
        return
    if error.path:
        raise InvalidInput(
            f"Invalid input for field/attribute {error.path[-1]}. "
            f"Value: {error.instance}. {error.message}"
        )
    raise InvalidInput(str(error.message))


async def validated_body(request: Request, schema: Schema) -> dict[str, Any]:
    """The request's JSON body checked against `schema`; an empty body counts as `{}`."""
    body = parse_json(await request.body())
    validate(schema, body)
    refuse_nul(body)
    assert isinstance(body, dict)
    return body


def to_bool(value: object) -> bool:
    """A value that passed the BOOLEAN schema, as a bool."""
    if isinstance(value, bool):
        return value
    return str(value).lower() in TRUE_STRINGS


def stripped(body: Mapping[str, object], key: str) -> str | None:
    """A string field with surrounding whitespace removed, as Cinder's controllers do."""
    value = body.get(key)
    return value.strip() if isinstance(value, str) else None


def obj(fields: Schema, required: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "object", "properties": fields, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def envelope(key: str, inner: Schema) -> Schema:
    return obj({key: inner}, required=[key])


async def validated_action(request: Request, actions: Mapping[str, Schema]) -> tuple[str, Any]:
    """The one action a `POST …/action` body names, and its checked value."""
    body = await validated_body(request, {"type": "object"})
    if len(body) != 1:
        raise InvalidInput("Malformed request body")
    ((name, value),) = body.items()
    if name not in actions:
        raise InvalidInput(
            f"There is no such action: {name}. Verify the request body and Content-Type "
            "header and try again."
        )
    validate({"type": "object", "properties": {name: actions[name]}}, body)
    return name, value


STATUS_RESET: Schema = obj({"status": {"type": "string", "minLength": 1}}, required=["status"])
ANY_VALUE: Schema = {}

# Cinder allows `{"restore": null}` and then fails with a 500; ashbox says 400.
BACKUP_RESTORE = envelope("restore", obj({"name": STRING_OR_NULL, "volume_id": UUID_OR_NULL}))

VOLUME_MANAGE = envelope(
    "volume",
    obj(
        {
            "host": STRING_OR_NULL,
            "cluster": STRING_OR_NULL,
            "ref": {
                "type": "object",
                "properties": {"source-name": {"type": "string", "minLength": 1}},
                "required": ["source-name"],
            },
            "name": STRING_OR_NULL,
            "description": DESCRIPTION,
            "metadata": METADATA,
            "bootable": BOOLEAN,
            "volume_type": STRING_OR_NULL,
            "availability_zone": STRING_OR_NULL,
        },
        required=["ref"],
    ),
)

_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("uuid")  # type: ignore[untyped-decorator]
def _is_uuid_like(value: object) -> bool:
    """oslo's `is_uuid_like`: any spelling `uuid.UUID` accepts that round-trips."""
    if not isinstance(value, str):
        return True
    try:
        canonical = str(uuid.UUID(value)).replace("-", "")
    except ValueError:
        return False
    plain = value.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "").lower()
    return canonical == plain


@_FORMATS.checks("disabled_reason")  # type: ignore[untyped-decorator]
def _is_disabled_reason(value: object) -> bool:
    """Cinder's rule: 1 to 255 characters once surrounding whitespace is stripped."""
    return not isinstance(value, str) or 1 <= len(value.strip()) <= 255


@_FORMATS.checks("printable")  # type: ignore[untyped-decorator]
def _is_printable(value: object) -> bool:
    """Cinder's description rule: no control, format or line/paragraph separator chars."""
    if not isinstance(value, str):
        return True
    for char in value:
        category = unicodedata.category(char)
        if category.startswith("C") or (category.startswith("Z") and category != "Zs"):
            return False
    return True
