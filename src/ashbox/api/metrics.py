"""The API's side of the metrics (docs/metrics.md): `GET /metrics` and the
middleware that counts every request by method, route template and status class.
(The queue depth it shows is wired by `ashbox serve` and `ashbox api`, which
hold the database.)

A request is labelled with the template of the route that answered it
(`/v3/{project_id}/backups/{backup_id}`), never its path, so the label takes
only as many values as there are routes. A request answered before routing
(refused by authentication, a URL holding a NUL) is labelled with the route
its path matches; one that matches none with `unmatched`.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ashbox import metrics

PATH = "/metrics"
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def serve_metrics(request: Request) -> Response:
    """The metrics of this process, in Prometheus's text format. Synchronous:
    Starlette runs it in a thread, so the queue's query never blocks the loop."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class RequestMetricsMiddleware:
    """Counts each HTTP request once its response has started (a 500 if the
    application raised before that)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = route_template(scope)
            metrics.API_REQUESTS.labels(method, route, f"{status // 100}xx").inc()


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (or would answer) the request."""
    route = scope.get("route")
    if isinstance(route, Route):
        return route.path
    partial = None
    app = scope.get("app")
    for candidate in getattr(app, "routes", ()):
        match, _child = candidate.matches(scope)
        if match is Match.FULL and isinstance(candidate, Route):
            return candidate.path
        if match is Match.PARTIAL and partial is None and isinstance(candidate, Route):
            partial = candidate.path
    return partial or UNMATCHED
