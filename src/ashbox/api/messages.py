"""User messages: list, show, delete (CINDER-CONTRACT §1.9), from microversion 3.3.

Cinder's `cinder/api/v3/messages.py`. Below 3.5 a list reads no query
parameter at all: no paging, sort or filter, every message the caller may see,
newest first (Cinder passes none of them on). From 3.5 it takes `limit`,
`marker`, `offset`, `sort` (or `sort_key`/`sort_dir`) and the filters of
Cinder's `resource_filters.json` entry for messages; a filter on a key that
is not a message field matches nothing, as in Cinder, except that from 3.31 a
non-admin's is a 400; `key~` is a substring match from 3.34. `all_tenants`
is no message filter: checked as a boolean and dropped, as Cinder drops a
non-admin's from 3.31 (an admin's list already holds every project's
messages). The parsing is the other lists' (ashbox.api.listing).
"""

from __future__ import annotations

import functools

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ashbox.api import microversion as mv
from ashbox.api.auth import request_context
from ashbox.api.bodies import QueryParameter, queries, since
from ashbox.api.links import next_link
from ashbox.api.listing import Resource, parse_list_request
from ashbox.api.middleware import api_version
from ashbox.api.openapi import LIST_PARAMETERS
from ashbox.api.views import MESSAGES, message_view
from ashbox.backups.service import Service
from ashbox.records import ListQuery, RequestContext

# Cinder's etc/cinder/resource_filters.json, "message".
PUBLIC_FILTERS = frozenset(
    {"resource_uuid", "resource_type", "event_id", "request_id", "message_level"}
)
# The fields of a message row: an admin may filter on any of them.
FIELDS = PUBLIC_FILTERS | {"id", "project_id", "action_id", "detail_id", "created_at"}
MESSAGE_LIST = Resource(public_filters=PUBLIC_FILTERS, fields=FIELDS, keeps_invalid_filters=True)

_PAGING = ("limit", "marker", "offset", "sort", "sort_key", "sort_dir")
LIST_QUERY: list[QueryParameter] = [
    (name, schema, f"{text} (3.5)") for name, schema, text in LIST_PARAMETERS if name in _PAGING
] + [
    (name, {"type": "string"}, "messages whose field is this (3.5); `name~`: holding it (3.34)")
    for name in sorted(PUBLIC_FILTERS)
]


class MessagesController:
    def __init__(self, service: Service) -> None:
        self.service = service

    @queries(LIST_QUERY)
    @since(mv.MESSAGES)
    async def index(self, request: Request) -> Response:
        """List the user messages."""
        ctx = request_context(request)
        query, matches_nothing = _list_query(request, ctx, api_version(request))
        records = await run_in_threadpool(
            functools.partial(
                self.service.list_messages, ctx, query, matches_nothing=matches_nothing
            )
        )
        body: dict[str, object] = {"messages": [message_view(request, m) for m in records]}
        # Cinder's `_get_collection_links`: a next link when the page is full
        # (there is no page below 3.5: the list is whole).
        if records and query.limit is not None and query.limit <= len(records):
            body["messages_links"] = [next_link(request, MESSAGES, records[-1].id)]
        return JSONResponse(body)

    @since(mv.MESSAGES)
    async def show(self, request: Request) -> Response:
        """Show a user message."""
        ctx = request_context(request)
        message = await run_in_threadpool(
            self.service.get_message, ctx, request.path_params["message_id"]
        )
        return JSONResponse({"message": message_view(request, message)})

    @since(mv.MESSAGES)
    async def delete(self, request: Request) -> Response:
        """Delete a user message."""
        ctx = request_context(request)
        await run_in_threadpool(self.service.delete_message, ctx, request.path_params["message_id"])
        return Response(status_code=204)


def _list_query(
    request: Request, ctx: RequestContext, version: mv.APIVersion
) -> tuple[ListQuery, bool]:
    """The list request, and whether a filter matches nothing; below 3.5 the
    whole list, whatever the query says."""
    if not version.at_least(mv.MESSAGES_PAGINATION):
        return ListQuery(), False
    listing = parse_list_request(request, ctx, version, MESSAGE_LIST)
    return listing.query, listing.matches_nothing
