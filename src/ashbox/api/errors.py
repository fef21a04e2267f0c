"""Errors to HTTP: every domain error's status and Cinder's fault body, in one place.

Body shape (CINDER-CONTRACT §1.6): `{"<faultName>": {"code": <int>, "message": "<text>"}}`;
413 adds `"retryAfter": "0"` and the `Retry-After: 0` header. Errors the API finds
itself (bad version, unknown route, malformed body) are `ApiFault`s.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ashbox import errors

log = logging.getLogger(__name__)

GENERIC_500 = "The server has either erred or is incapable of performing the requested operation."
NOT_FOUND = "The resource could not be found."
METHOD_NOT_ALLOWED = "The method is not allowed for the requested URL."

FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    501: "notImplemented",
    503: "serviceUnavailable",
}

# The status of each kind of domain error; subclasses inherit their base's entry.
# AshboxError itself is deliberately absent: a new direct subclass must be added here.
STATUS_BY_ERROR: dict[type[errors.AshboxError], int] = {
    errors.NotFound: 404,
    errors.InvalidInput: 400,
    errors.InvalidState: 400,
    errors.Forbidden: 403,
    errors.QuotaExceeded: 413,
    errors.Conflict: 409,
    errors.CorruptData: 500,
    errors.VolumeIOError: 500,
    errors.StoreError: 503,
    errors.KeyManagerError: 503,
    errors.DatabaseUnavailable: 503,
    errors.TaskCancelled: 409,
}


class ApiFault(Exception):
    """An HTTP error found by the API layer itself (not by the service)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def status_for(error_class: type[errors.AshboxError]) -> int | None:
    """The HTTP status of a domain error class, or None if it has no mapping."""
    for cls in error_class.__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return None


def fault_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Cinder's fault body for `status`, with the 413 extras."""
    name = FAULT_NAMES.get(status, "computeFault")
    body: dict[str, object] = {"code": status, "message": message}
    extra = dict(headers or {})
    if status == 413:
        body["retryAfter"] = "0"
        extra["Retry-After"] = "0"
    return JSONResponse({name: body}, status_code=status, headers=extra)


def domain_error_response(error: errors.AshboxError) -> Response:
    status = status_for(type(error))
    if status is None:
        log.error("unmapped domain error %s", type(error).__name__, exc_info=error)
        return fault_response(500, GENERIC_500)
    if status >= 500:
        log.error("request failed: %s", error.message, exc_info=error)
    return fault_response(status, error.message)


async def handle_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.AshboxError)
    return domain_error_response(exc)


async def handle_api_fault(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiFault)
    return fault_response(exc.status, exc.message, exc.headers)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's routing errors: unknown route → 404, wrong method → 405."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return fault_response(404, NOT_FOUND)
    if exc.status_code == 405:
        return fault_response(405, METHOD_NOT_ALLOWED, dict(exc.headers or {}))
    return fault_response(exc.status_code, str(exc.detail))
