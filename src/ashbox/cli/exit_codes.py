"""Exit codes of the `ashbox` command, defined once (docs/cli.md, "Exit codes").

An HTTP status from the service and a domain error raised in this process map to
the same codes, so a script can tell "not found" from "bad usage" from "server down".
"""

from __future__ import annotations

from enum import IntEnum

from ashbox.errors import (
    AshboxError,
    Conflict,
    CorruptData,
    Forbidden,
    InvalidInput,
    InvalidState,
    NotFound,
    QuotaExceeded,
    StoreError,
)


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the operation ran and ended in error (backup status `error`, ...)
    USAGE = 2  # bad command line, or the service answered 400
    NOT_FOUND = 3  # the service answered 404
    UNREACHABLE = 4  # no answer from the service (connection refused, timeout)
    REFUSED = 5  # the service refused: 403, 409, 413
    SERVER_ERROR = 6  # the service failed: 5xx, or an answer that is not Cinder's
    CANNOT_LISTEN = 7  # `ashbox serve`: its address is taken, or not allowed


def exit_code_for_status(status_code: int) -> ExitCode:
    """The exit code for an HTTP error status answered by the service."""
    if status_code == 404:
        return ExitCode.NOT_FOUND
    if status_code in (403, 409, 413):
        return ExitCode.REFUSED
    if 400 <= status_code < 500:
        return ExitCode.USAGE
    return ExitCode.SERVER_ERROR


def exit_code_for_error(error: AshboxError) -> ExitCode:
    """The exit code for a domain error raised in this process (by `ashbox serve`)."""
    if isinstance(error, NotFound):
        return ExitCode.NOT_FOUND
    if isinstance(error, InvalidInput | InvalidState):
        return ExitCode.USAGE
    if isinstance(error, Forbidden | QuotaExceeded | Conflict):
        return ExitCode.REFUSED
    if isinstance(error, CorruptData | StoreError):
        return ExitCode.SERVER_ERROR
    return ExitCode.FAILED
