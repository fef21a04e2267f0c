"""Keystone authentication: keystonemiddleware's `auth_token`, configured as every
OpenStack service configures it (the `keystone_authtoken` options).

`auth_token` is WSGI middleware. It only reads headers, so each request's
headers are handed to it as a WSGI environ, in a worker thread (it may call
Keystone, and caches what it learns). The identity is read from the headers it
sets on the environ it passes on, never from the client's request, so a client
cannot claim roles by sending `X-Roles` itself.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from keystonemiddleware import auth_token
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Scope

from ashbox.api.errors import fault_response
from ashbox.api.identity import Identity

REACHED = "ashbox.identity"
StartResponse = Callable[..., Any]


def _passed(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The application behind `auth_token`: notes the environ it was given."""
    environ[REACHED] = dict(environ)
    start_response("204 No Content", [])
    return [b""]


class KeystoneAuth:
    def __init__(self, options: Mapping[str, str]) -> None:
        conf = {"delay_auth_decision": "false", **options}
        self._protocol = auth_token.AuthProtocol(_passed, conf)

    async def authenticate(self, scope: Scope) -> Identity | Response:
        return await run_in_threadpool(self._authenticate, scope)

    def _authenticate(self, scope: Scope) -> Identity | Response:
        environ = _environ(scope)
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], *_: object) -> None:
            answer["status"] = int(status.split(" ", 1)[0])
            answer["headers"] = headers

        body = b"".join(self._protocol(environ, start_response))
        seen = environ.get(REACHED)
        if seen is None:
            return Response(body, answer.get("status", 401), dict(answer.get("headers", [])))
        if seen.get("HTTP_X_IDENTITY_STATUS") != "Confirmed":
            return fault_response(401, "The request you have made requires authentication.")
        project_id = seen.get("HTTP_X_PROJECT_ID")
        if not project_id:
            return fault_response(403, "This service needs a project-scoped token.")
        roles = tuple(r.strip().lower() for r in seen.get("HTTP_X_ROLES", "").split(",") if r)
        return Identity(
            user_id=seen.get("HTTP_X_USER_ID", ""),
            project_id=project_id,
            roles=roles,
            is_admin_project=seen.get("HTTP_X_IS_ADMIN_PROJECT", "True") == "True",
        )


def _environ(scope: Scope) -> dict[str, Any]:
    """A WSGI environ of the request's line and headers (auth_token reads no body)."""
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": scope["path"],
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[name] = value
            continue
        key = "HTTP_" + name
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ
