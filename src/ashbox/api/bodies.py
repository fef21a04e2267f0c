"""What body each endpoint takes, declared once on the endpoint itself.

`@accepts(schema)` and `@accepts_action({name: schema})` validate the request's
body before the endpoint runs and leave it in `request.state.body` (or
`request.state.action`). An endpoint without a body that exists from some
microversion on says so with `@since(version)`, and one with query parameters
of its own (not the usual list parameters) lists them with `@queries(...)`.
The OpenAPI document (ashbox.api.openapi) reads the same declarations, so the
document and the validation cannot differ.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from ashbox.api import microversion as mv
from ashbox.api import schemas
from ashbox.api.auth import request_context
from ashbox.api.errors import NOT_FOUND, ApiFault
from ashbox.api.middleware import api_version

Schema = schemas.Schema
# A schema, or the schema at a microversion (the body grew keys over versions).
BodySchema = Schema | Callable[[mv.APIVersion], Schema]
Handler = Callable[[Any, Request], Awaitable[Response]]
H = TypeVar("H", bound=Handler)

# A query parameter: its name, its schema and what it means.
QueryParameter = tuple[str, Schema, str]

BODY_ATTRIBUTE = "ashbox_request_schema"
ACTIONS_ATTRIBUTE = "ashbox_action_schemas"
QUERY_ATTRIBUTE = "ashbox_query_parameters"


def schema_at(schema: BodySchema, version: mv.APIVersion) -> Schema:
    return schema(version) if callable(schema) else schema


def accepts(schema: BodySchema, *, since: str | None = None) -> Callable[[H], H]:
    """The endpoint takes a JSON body valid against `schema` (400 otherwise); with
    `since`, it exists from that microversion on (404 before, as Cinder's)."""

    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        async def checked(self: Any, request: Request) -> Response:
            request_context(request)  # a bad URL or caller is told before a bad body
            version = api_version(request)
            if since is not None and not version.at_least(since):
                raise ApiFault(404, NOT_FOUND)
            wanted = schema_at(schema, version)
            request.state.body = await schemas.validated_body(request, wanted)
            return await handler(self, request)

        setattr(checked, BODY_ATTRIBUTE, schema)
        return checked  # type: ignore[return-value]

    return decorate


def accepts_action(actions: Mapping[str, Schema]) -> Callable[[H], H]:
    """The endpoint takes `{"<action>": <value>}`, one of `actions`; the pair is left
    in `request.state.action`."""

    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        async def checked(self: Any, request: Request) -> Response:
            request_context(request)
            request.state.action = await schemas.validated_action(request, actions)
            return await handler(self, request)

        setattr(checked, ACTIONS_ATTRIBUTE, dict(actions))
        return checked  # type: ignore[return-value]

    return decorate


def since(version: str) -> Callable[[H], H]:
    """The endpoint, which takes no body, exists from microversion `version` on:
    404 before, as Cinder answers for a method its version does not have."""

    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        async def checked(self: Any, request: Request) -> Response:
            request_context(request)  # a bad URL or caller is told first
            if not api_version(request).at_least(version):
                raise ApiFault(404, NOT_FOUND)
            return await handler(self, request)

        return checked  # type: ignore[return-value]

    return decorate


def queries(parameters: Sequence[QueryParameter]) -> Callable[[H], H]:
    """The endpoint reads these query parameters; the OpenAPI document lists them
    (in place of the usual list parameters)."""

    def decorate(handler: H) -> H:
        setattr(handler, QUERY_ATTRIBUTE, list(parameters))
        return handler

    return decorate


def body_of(request: Request) -> dict[str, Any]:
    """The body `@accepts` checked."""
    body: dict[str, Any] = request.state.body
    return body


def action_of(request: Request) -> tuple[str, Any]:
    """The (action, value) `@accepts_action` checked."""
    action: tuple[str, Any] = request.state.action
    return action
