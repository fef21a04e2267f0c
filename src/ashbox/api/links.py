"""Links and timestamps as Cinder's view builders write them (CINDER-CONTRACT §1.0).

`self` is `<base>/v3[/<project_id>]/<collection>/<id>`, `bookmark` the same
without `/v3`; the project segment appears only if the request URL had one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.requests import Request

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


def format_time(moment: datetime | None) -> str | None:
    """`2024-05-01T10:20:30.000000`: UTC, no zone suffix; naive datetimes are taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime(TIME_FORMAT)


def host_url(request: Request) -> str:
    """`http://host:port` of the request, without a trailing slash."""
    return str(request.base_url).rstrip("/")


def resource_links(request: Request, collection: str, item_id: str) -> list[dict[str, str]]:
    project = _project_segment(request)
    return [
        {"rel": "self", "href": f"{host_url(request)}/v3{project}/{collection}/{item_id}"},
        {"rel": "bookmark", "href": f"{host_url(request)}{project}/{collection}/{item_id}"},
    ]


def next_link(request: Request, collection_path: str, marker: str) -> dict[str, str]:
    """The `next` link: the request's own query with `marker` set to the last item."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
    params.append(("marker", marker))
    project = _project_segment(request)
    href = f"{host_url(request)}/v3{project}/{collection_path}?{urlencode(params)}"
    return {"rel": "next", "href": href}


def _project_segment(request: Request) -> str:
    project: str | None = request.path_params.get("project_id")
    return f"/{project}" if project else ""
