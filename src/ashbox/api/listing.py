"""List requests: pagination, sorting and filters, and the list envelope.

CINDER-CONTRACT §1.5 (`cinder/api/common.py`, `contrib/backups.py::_get_backups`):
`limit` (capped at 1000), `marker`, `offset` (at most 2**31 - 1, as in Cinder),
`sort=k[:d],…` (each key once; ashbox's own cap) or the deprecated
`sort_key`/`sort_dir`, `with_count` (≥3.45), `all_tenants` (admins), `key~`
substring filters (≥3.34). Non-admins may filter on the resource's public keys
only (unknown ones are dropped below 3.31 and a 400 from 3.31); admins may
filter on any record field, and an unknown one matches nothing, as in Cinder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ashbox.api import microversion as mv
from ashbox.api.auth import request_context
from ashbox.api.links import next_link
from ashbox.api.middleware import api_version
from ashbox.api.schemas import FALSE_STRINGS, TRUE_STRINGS
from ashbox.errors import InvalidInput
from ashbox.records import ListQuery, RequestContext

R = TypeVar("R")
MAX_LIMIT = 1000  # Cinder's osapi_max_limit
MAX_OFFSET = 2**31 - 1  # Cinder's DB_MAX_INT; past int64 the database raised: a 500
# Cinder's column names for the fields ashbox records call otherwise.
ALIASES = {"display_name": "name", "display_description": "description"}


@dataclass(frozen=True, slots=True)
class Resource:
    """What a list of one kind of record accepts."""

    public_filters: frozenset[str]  # Cinder's resource_filters.json entry
    fields: frozenset[str]  # record fields an admin may filter on
    unsupported_filters: frozenset[str] = frozenset()
    # Below 3.31 a non-admin's filter on a key not public is dropped (Cinder's
    # backups, volumes, snapshots), or kept, to match nothing (its messages).
    keeps_invalid_filters: bool = False


@dataclass(frozen=True, slots=True)
class ListRequest:
    query: ListQuery
    limit: int
    with_count: bool
    matches_nothing: bool  # an admin filtered on a field records do not have


def parse_list_request(
    request: Request, ctx: RequestContext, version: mv.APIVersion, resource: Resource
) -> ListRequest:
    params = dict(request.query_params)
    limit = limit_param(params.pop("limit", None))
    marker = params.pop("marker", None)
    offset = offset_param(params.pop("offset", None))
    sort = sort_params(params, version)
    with_count = False
    if "with_count" in params:
        raw = params.pop("with_count")
        if version.at_least(mv.SUPPORT_COUNT_INFO):
            with_count = bool_param("with_count", raw)
    # Validated for everyone, honoured for admins only: others see their project.
    all_tenants = _all_tenants(params.pop("all_tenants", "0")) and ctx.is_admin
    filters, like_filters, matches_nothing = _filters(params, ctx, version, resource)
    query = ListQuery(
        filters=filters,
        like_filters=like_filters,
        sort=sort,
        limit=limit,
        marker=marker,
        offset=offset,
        all_tenants=all_tenants,
    )
    return ListRequest(query, limit, with_count, matches_nothing)


def list_body(
    request: Request,
    key: str,
    collection_path: str,
    items: Sequence[dict[str, object]],
    total: int,
    listing: ListRequest,
) -> dict[str, object]:
    """`{key: items, key_links: [next], count: N}` as Cinder's `_list_view` builds it."""
    body: dict[str, object] = {key: list(items)}
    count = total if listing.with_count else None
    # Cinder's `_get_collection_links`: with a count, a next link whenever limit <= count.
    if items and listing.limit <= (count or len(items)):
        marker = str(items[-1]["id"])
        body[f"{key}_links"] = [next_link(request, collection_path, marker)]
    if count is not None:
        body["count"] = count
    return body


async def list_response(
    request: Request,
    resource: Resource,
    key: str,
    fetch: Callable[[RequestContext, ListQuery], tuple[Sequence[R], int]],
    view: Callable[[R, RequestContext, mv.APIVersion], dict[str, object]],
    *,
    detail: bool,
) -> Response:
    """A list of `key` (or `key/detail`): the request parsed, the records fetched
    in a thread, each shown with `view`, in Cinder's envelope."""
    ctx = request_context(request)
    version = api_version(request)
    listing = parse_list_request(request, ctx, version, resource)
    records: Sequence[R] = []
    total = 0
    if not listing.matches_nothing:
        records, total = await run_in_threadpool(fetch, ctx, listing.query)
    items = [view(r, ctx, version) for r in records]
    path = f"{key}/detail" if detail else key
    return JSONResponse(list_body(request, key, path, items, total, listing))


def bool_param(name: str, raw: str) -> bool:
    """Cinder's `get_bool_param`: a boolean query string, strictly."""
    if raw.lower() not in TRUE_STRINGS | FALSE_STRINGS:
        raise InvalidInput(f"Value '{raw}' for '{name}' is not a boolean.")
    return raw.lower() in TRUE_STRINGS


def limit_param(raw: str | None) -> int:
    """`limit`, as Cinder reads it: at most MAX_LIMIT (and that without one)."""
    if raw is None:
        return MAX_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidInput("limit param must be an integer") from None
    if limit < 0:
        raise InvalidInput("limit param must be positive")
    return min(limit, MAX_LIMIT)


def offset_param(raw: str | None) -> int:
    """`offset`, as Cinder's `validate_integer` reads it."""
    if raw is None:
        return 0
    try:
        offset = int(raw)
    except ValueError:
        raise InvalidInput("offset must be an integer") from None
    if offset < 0:
        raise InvalidInput("offset must be >= 0")
    if offset > MAX_OFFSET:
        raise InvalidInput(f"offset must be <= {MAX_OFFSET}")
    return offset


def sort_params(params: dict[str, str], version: mv.APIVersion) -> list[tuple[str, str]]:
    """`sort` or `sort_key`/`sort_dir`, taken out of `params`: [(field, direction)]."""
    if params.get("sort"):
        if params.get("sort_key") or params.get("sort_dir"):
            raise InvalidInput(
                "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be "
                "used with the 'sort' parameter."
            )
        pairs = []
        for item in params.pop("sort").strip().split(","):
            key, _sep, direction = item.partition(":")
            pairs.append((key.strip(), direction.strip() or "desc"))
    else:
        pairs = [(params.pop("sort_key", "created_at"), params.pop("sort_dir", "desc"))]
    params.pop("sort", None)
    params.pop("sort_key", None)
    params.pop("sort_dir", None)
    sort: list[tuple[str, str]] = []
    for key, direction in pairs:
        if direction.lower() not in ("asc", "desc"):
            raise InvalidInput(
                "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'."
            )
        field = ALIASES.get(key, key)
        # A repeated key cannot change the order, but each one multiplies the work
        # of a marker's WHERE clause (500 keys took minutes): at most one each.
        if any(field == seen for seen, _ in sort):
            raise InvalidInput(f"Invalid input received: sort key {key} is given more than once.")
        sort.append((field, direction.lower()))
    return sort


def _all_tenants(raw: str) -> bool:
    if raw.lower() not in TRUE_STRINGS | FALSE_STRINGS:
        raise InvalidInput(f"all_tenants must be a boolean, got '{raw}'.")
    return raw.lower() in TRUE_STRINGS


def _filters(
    params: dict[str, str], ctx: RequestContext, version: mv.APIVersion, resource: Resource
) -> tuple[dict[str, str], dict[str, str], bool]:
    if not all(key.isascii() for key in params):
        raise InvalidInput("Filter keys can only contain ASCII characters.")
    like_enabled = version.at_least(mv.LIKE_FILTER)
    unsupported = sorted(k for k in params if k.rstrip("~") in resource.unsupported_filters)
    if unsupported:
        raise InvalidInput(f"Invalid filters {','.join(unsupported)} are found in query options.")
    if not ctx.is_admin:
        invalid = [
            key
            for key in params
            if key not in resource.public_filters
            and not (like_enabled and key.endswith("~") and key[:-1] in resource.public_filters)
        ]
        if invalid and version.at_least(mv.RESOURCE_FILTER):
            raise InvalidInput(f"Invalid filters {','.join(invalid)} are found in query options.")
        for key in [] if resource.keeps_invalid_filters else invalid:
            del params[key]
    filters: dict[str, str] = {}
    like_filters: dict[str, str] = {}
    matches_nothing = False
    for key, value in params.items():
        like = like_enabled and key.endswith("~")
        name = key[:-1] if like else key
        name = ALIASES.get(name, name)
        if name not in resource.fields:
            matches_nothing = True
        (like_filters if like else filters)[name] = value
    return filters, like_filters, matches_nothing
