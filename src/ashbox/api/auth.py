"""Who is calling: Cinder's `noauth` strategy, only on loopback.

`X-Auth-Token: user:project` names the user and project; a token without a
project (keystoneauth's `notused`, `tok`) takes the project from the URL, or
else the token itself. Every noauth caller is an admin, as in Cinder's
`NoAuthMiddleware`, so noauth is refused unless the API listens on loopback.
"""

from __future__ import annotations

import ipaddress

from starlette.requests import Request

from ashbox.api.errors import NOT_FOUND, ApiFault
from ashbox.config import Settings
from ashbox.errors import InvalidInput
from ashbox.records import RequestContext

NOAUTH = "noauth"
TOKEN_HEADER = "X-Auth-Token"
# First path segments after /v3 that are collections, never project ids.
COLLECTIONS = frozenset({"backups", "volumes", "manageable_volumes", "os-volume-manage"})


def check_auth_settings(settings: Settings) -> None:
    """InvalidInput unless the auth strategy can be served on `settings.host`."""
    if settings.auth_strategy != NOAUTH:
        raise InvalidInput(
            f"auth_strategy {settings.auth_strategy!r} is not supported by the API; use {NOAUTH!r}"
        )
    if not is_loopback(settings.host):
        raise InvalidInput(
            f"auth_strategy {NOAUTH!r} makes every caller an admin and is only allowed "
            f"when the API listens on a loopback address, not on host {settings.host!r}"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def request_context(request: Request) -> RequestContext:
    """The caller of a v3 request; 401 without a token, 400 if URL and token projects differ."""
    url_project: str | None = request.path_params.get("project_id")
    if url_project in COLLECTIONS:
        raise ApiFault(404, NOT_FOUND)
    token = request.headers.get(TOKEN_HEADER)
    if not token:
        raise ApiFault(
            401, f"Authentication required: send {TOKEN_HEADER}: <user_id>:<project_id>."
        )
    user_id, _sep, token_project = token.partition(":")
    if token_project and url_project and token_project != url_project:
        raise ApiFault(400, "Malformed request url")
    project_id = token_project or url_project or user_id
    return RequestContext(user_id=user_id, project_id=project_id, is_admin=True)
