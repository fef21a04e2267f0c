"""Who is calling: one authenticator per `auth_strategy`, in front of every v3 request.

- `noauth`: Cinder's development mode. `X-Auth-Token: user:project` names the
  caller, a token without a project takes the URL's; every caller is an admin,
  so it is refused unless the API listens on loopback.
- `token`: static tokens from `tokens_file` (ashbox.tokens).
- `keystone`: keystonemiddleware's `auth_token` (ashbox.api.keystone).

The authenticator runs in `AuthMiddleware` and leaves an `Identity` in the
request's state; `request_context` turns it into the `RequestContext` the
service checks its policy against. Version documents and the health check are
public, as in Cinder; so are the OpenAPI document and the metrics.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ashbox.api.errors import NOT_FOUND, ApiFault, fault_response
from ashbox.api.identity import Identity
from ashbox.config import Settings
from ashbox.errors import InvalidInput
from ashbox.policy import Policy, with_implied_roles
from ashbox.records import RequestContext
from ashbox.tokens import TokenEntry, digest, load_tokens

log = logging.getLogger(__name__)

NOAUTH = "noauth"
STATIC_TOKENS = "token"
KEYSTONE = "keystone"
STRATEGIES = (NOAUTH, STATIC_TOKENS, KEYSTONE)
TOKEN_HEADER = "X-Auth-Token"
# First path segments after /v3 that are collections, never project ids.
COLLECTIONS = frozenset(
    {"backups", "volumes", "snapshots", "manageable_volumes", "os-volume-manage", "messages"}
)
# /metrics holds no tenant's data: only kinds, outcomes and route templates (docs/metrics.md).
PUBLIC_PATHS = frozenset({"/", "/v3", "/v3/", "/healthcheck", "/openapi.json", "/metrics"})


class Authenticator(Protocol):
    async def authenticate(self, scope: Scope) -> Identity | Response:
        """The caller, or the response that refuses the request (401)."""


def unauthorized(message: str, challenge: str) -> Response:
    return fault_response(401, message, {"WWW-Authenticate": challenge})


class NoAuth:
    async def authenticate(self, scope: Scope) -> Identity | Response:
        token = Headers(scope=scope).get(TOKEN_HEADER)
        if not token:
            return unauthorized(
                f"Authentication required: send {TOKEN_HEADER}: <user_id>:<project_id>.",
                'Token realm="ashbox"',
            )
        user_id, _sep, project_id = token.partition(":")
        return Identity(user_id, project_id or None, with_implied_roles(["admin"]))


class StaticTokens:
    """Tokens of `tokens_file`, read again whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._entries: dict[str, TokenEntry] = {}
        self._load()

    def _load(self) -> None:
        stat = os.stat(self.path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._entries = load_tokens(self.path)
            self._stamp = stamp

    async def authenticate(self, scope: Scope) -> Identity | Response:
        token = Headers(scope=scope).get(TOKEN_HEADER)
        try:
            self._load()
        except (OSError, InvalidInput) as exc:
            log.error("tokens file unusable, keeping the tokens read before: %s", exc)
        entry = self._entries.get(digest(token)) if token else None
        if entry is None:
            message = "The request you have made requires authentication."
            return unauthorized(message, 'Token realm="ashbox"')
        return Identity(entry.user_id, entry.project_id, with_implied_roles(entry.roles))


def authenticator_for(settings: Settings) -> Authenticator:
    """The authenticator of `settings.auth_strategy`; InvalidInput if it cannot serve safely."""
    check_auth_settings(settings)
    if settings.auth_strategy == STATIC_TOKENS:
        try:
            return StaticTokens(Path(settings.tokens_file))
        except OSError as exc:
            raise InvalidInput(f"Cannot read tokens file {settings.tokens_file}: {exc}") from exc
    if settings.auth_strategy == KEYSTONE:
        from ashbox.api.keystone import KeystoneAuth

        return KeystoneAuth(settings.keystone_authtoken)
    return NoAuth()


def check_auth_settings(settings: Settings) -> None:
    """InvalidInput unless the auth strategy can be served on `settings.host`."""
    strategy = settings.auth_strategy
    if strategy not in STRATEGIES:
        raise InvalidInput(
            f"auth_strategy {strategy!r} is not supported; use one of {', '.join(STRATEGIES)}"
        )
    if strategy == NOAUTH and not is_loopback(settings.host):
        raise InvalidInput(
            f"auth_strategy {NOAUTH!r} makes every caller an admin and is only allowed "
            f"when the API listens on a loopback address, not on host {settings.host!r}"
        )
    if strategy == STATIC_TOKENS:
        if not settings.tokens_file:
            raise InvalidInput(f"auth_strategy {STATIC_TOKENS!r} needs tokens_file")
        if not is_loopback(settings.host) and not settings.tls_cert:
            raise InvalidInput(
                f"auth_strategy {STATIC_TOKENS!r} sends reusable secrets: beyond loopback "
                f"(host {settings.host!r}) it needs TLS (tls_cert and tls_key)"
            )
    if strategy == KEYSTONE and not settings.keystone_authtoken.get("www_authenticate_uri"):
        raise InvalidInput(
            f"auth_strategy {KEYSTONE!r} needs keystone_authtoken.www_authenticate_uri "
            "(and auth_url, username, password, project_name for the service user)"
        )
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise InvalidInput("TLS needs both tls_cert and tls_key")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AuthMiddleware:
    """Authenticates every request but the public ones; the Identity goes to state."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator, policy: Policy) -> None:
        self.app = app
        self.authenticator = authenticator
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        found = await self.authenticator.authenticate(scope)
        if isinstance(found, Response):
            await found(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["identity"] = found
        state["policy"] = self.policy
        await self.app(scope, receive, send)


def request_context(request: Request) -> RequestContext:
    """The caller of a v3 request (made once per request); 400 if the URL names
    another project than the token."""
    made: RequestContext | None = getattr(request.state, "context", None)
    if made is not None:
        return made
    url_project: str | None = request.path_params.get("project_id")
    if url_project in COLLECTIONS:
        raise ApiFault(404, NOT_FOUND)
    identity: Identity = request.state.identity
    policy: Policy = request.state.policy
    if identity.project_id and url_project and identity.project_id != url_project:
        raise ApiFault(400, "Malformed request url")
    project_id = identity.project_id or url_project or identity.user_id
    ctx = RequestContext(
        user_id=identity.user_id,
        project_id=project_id,
        roles=identity.roles,
        is_admin_project=identity.is_admin_project,
        policy=policy,
    )
    made = replace(ctx, is_admin=policy.is_admin(ctx.creds()))
    request.state.context = made
    return made
