"""The OpenAPI 3.1 document of the API, served at `GET /openapi.json` (docs/api.md).

It is made from the application itself: every route, and for each route that
takes a body, the schema its endpoint validates with (ashbox.api.bodies), at
the newest microversion; lists get the list parameters, or those their
endpoint declares (`@queries`). Nothing is written twice, so it cannot drift.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import BaseRoute, Route

from ashbox import __version__
from ashbox.api import microversion as mv
from ashbox.api.bodies import ACTIONS_ATTRIBUTE, BODY_ATTRIBUTE, QUERY_ATTRIBUTE, schema_at
from ashbox.api.schemas import Schema

PATH = "/openapi.json"
_PARAMETER = re.compile(r"{(\w+)}")
_LIST_ENDPOINTS = ("index", "detail")
FAULT: Schema = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
        "required": ["code", "message"],
    },
}
LIST_PARAMETERS: list[tuple[str, Schema, str]] = [
    ("limit", {"type": "integer", "minimum": 0}, "at most this many items"),
    ("marker", {"type": "string"}, "the id of the last item of the previous page"),
    ("offset", {"type": "integer", "minimum": 0}, "items to skip"),
    ("sort", {"type": "string"}, "key[:asc|desc],... (3.0 keys: sort_key, sort_dir)"),
    ("sort_key", {"type": "string"}, "the key to sort by"),
    ("sort_dir", {"type": "string", "enum": ["asc", "desc"]}, "the direction"),
    ("with_count", {"type": "boolean"}, "add the total count (3.45)"),
    ("all_tenants", {"type": "boolean"}, "every project's items (admins only)"),
]


def document(routes: list[BaseRoute]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            paths.setdefault(route.path, {})[method.lower()] = _operation(route, method)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ashbox: the OpenStack Block Storage v3 backup API",
            "version": __version__,
            "description": (
                f"Microversions {mv.MIN_VERSION} to {mv.MAX_VERSION} "
                "(header OpenStack-API-Version: volume X.Y); bodies are shown as at "
                f"{mv.MAX_VERSION}. Errors are Cinder's faults: {{name: {{code, message}}}}."
            ),
        },
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}}
        },
        "paths": paths,
    }


def _operation(route: Route, method: str) -> dict[str, Any]:
    endpoint = route.endpoint
    name = getattr(endpoint, "__name__", "endpoint")
    owner = type(getattr(endpoint, "__self__", None)).__name__
    doc = (getattr(endpoint, "__doc__", None) or "").strip().splitlines()
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}{route.path}".replace("/", "_")
        .replace("{", "")
        .replace("}", ""),
        "summary": doc[0] if doc else f"{owner}.{name}",
        "parameters": _parameters(route.path, name, getattr(endpoint, QUERY_ATTRIBUTE, None)),
        "responses": {
            "2XX": {"description": "done"},
            "3XX": {"description": "the versions (GET /)"},
            "4XX": _fault("refused; nothing changed"),
            "5XX": _fault("failed"),
        },
    }
    public = route.path in ("/", "/v3", "/v3/", "/healthcheck", PATH)
    operation["security"] = [] if public else [{"token": []}]
    body = _body(endpoint)
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return operation


def _body(endpoint: Any) -> Schema | None:
    schema = getattr(endpoint, BODY_ATTRIBUTE, None)
    if schema is not None:
        return schema_at(schema, mv.MAX_VERSION)
    actions: dict[str, Schema] | None = getattr(endpoint, ACTIONS_ATTRIBUTE, None)
    if actions is not None:
        return {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {action: value},
                    "required": [action],
                    "additionalProperties": False,
                }
                for action, value in sorted(actions.items())
            ]
        }
    return None


def _parameters(
    path: str, endpoint_name: str, declared: list[tuple[str, Schema, str]] | None
) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAMETER.findall(path)
    ]
    if path.startswith("/v3/") or path == "/v3":
        parameters.append(
            {
                "name": "OpenStack-API-Version",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "examples": [f"volume {mv.MAX_VERSION}"]},
            }
        )
    query = declared
    if query is None and endpoint_name in _LIST_ENDPOINTS:
        query = LIST_PARAMETERS
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": schema, "description": text}
        for name, schema, text in query or []
    ]
    return parameters


def _fault(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": FAULT}}}
