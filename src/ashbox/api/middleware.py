"""The outermost layer: request ids, microversion negotiation, last-resort 500s.

Every response gets `x-openstack-request-id: req-<uuid>` (faults also
`x-compute-request-id`); every `/v3` response gets `OpenStack-API-Version:
volume X.Y` and `Vary: OpenStack-API-Version` (CINDER-CONTRACT §1.0, §1.1).
The negotiated version is left in `request.state.api_version`. A URL holding a
NUL is refused here, once for every route (`parsing.url_fault`).
"""

from __future__ import annotations

import logging
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ashbox import request_ids
from ashbox.api import microversion as mv
from ashbox.api.errors import GENERIC_500, ApiFault, fault_response
from ashbox.api.parsing import url_fault

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-openstack-request-id"


class ApiMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req-{uuid.uuid4()}"
        path: str = scope["path"]
        is_v3 = path == "/v3" or path.startswith("/v3/")
        version = mv.MIN_VERSION
        fault = url_fault(scope)
        if is_v3 and fault is None:
            try:
                version = mv.negotiate(Headers(scope=scope).get(mv.HEADER))
            except ApiFault as exc:
                fault = exc
        state = scope.setdefault("state", {})
        state["api_version"] = version
        state["request_id"] = request_id
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                if message["status"] >= 400:
                    headers["x-compute-request-id"] = request_id
                if is_v3:
                    headers[mv.HEADER] = f"{mv.SERVICE} {version}"
                    headers["Vary"] = mv.HEADER
            await send(message)

        if fault is not None:
            response = fault_response(fault.status, fault.message)
            await response(scope, receive, send_with_headers)
            return
        try:
            with request_ids.acting_for(request_id):
                await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error request_id=%s %s %s", request_id, scope["method"], path)
            if started:
                raise
            await fault_response(500, GENERIC_500)(scope, receive, send_with_headers)


def api_version(request: Request) -> mv.APIVersion:
    """The microversion the middleware negotiated for this request."""
    version = request.state.api_version
    assert isinstance(version, mv.APIVersion)
    return version
