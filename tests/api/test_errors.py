"""Domain errors to HTTP statuses and Cinder fault bodies (CINDER-CONTRACT §1.6)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from ashbox import errors
from ashbox.api.app import create_app
from ashbox.api.errors import FAULT_NAMES, domain_error_response, status_for
from ashbox.backups.service import Service
from ashbox.db.engine import Database
from tests.api.conftest import serving, stack_settings


def _all_subclasses(cls: type[errors.AshboxError]) -> list[type[errors.AshboxError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


def test_every_domain_error_has_a_status() -> None:
    unmapped = [c.__name__ for c in _all_subclasses(errors.AshboxError) if status_for(c) is None]
    assert unmapped == []


@pytest.mark.parametrize(
    ("error", "status", "name"),
    [
        (errors.BackupNotFound("b1"), 404, "itemNotFound"),
        (errors.VolumeNotFound("v1"), 404, "itemNotFound"),
        (errors.InvalidInput("Invalid input received: x"), 400, "badRequest"),
        (errors.InvalidBackup("Backup status must be available"), 400, "badRequest"),
        (errors.InvalidVolumeState("Volume must be available"), 400, "badRequest"),
        (errors.Forbidden("Policy doesn't allow backup:create to be performed."), 403, "forbidden"),
        (errors.Conflict("busy"), 409, "conflictingRequest"),
        (errors.CorruptManifest("manifest of b1 is corrupt"), 500, "computeFault"),
        (errors.StoreError("store unreachable"), 503, "serviceUnavailable"),
    ],
)
def test_a_domain_error_becomes_its_cinder_fault(
    error: errors.AshboxError, status: int, name: str
) -> None:
    response = domain_error_response(error)
    assert response.status_code == status
    assert (
        response.body
        == httpx.Response(status, json={name: {"code": status, "message": error.message}}).content
    )


def test_quota_exceeded_is_413_with_retry_after() -> None:
    message = "BackupLimitExceeded: Maximum number of backups allowed (10) exceeded"
    response = domain_error_response(errors.QuotaExceeded(message))
    assert response.status_code == 413
    assert response.headers["Retry-After"] == "0"
    assert httpx.Response(413, content=response.body).json() == {
        "overLimit": {"code": 413, "message": message, "retryAfter": "0"}
    }


def test_fault_names_are_cinders() -> None:
    assert FAULT_NAMES[400] == "badRequest"
    assert FAULT_NAMES[404] == "itemNotFound"
    assert FAULT_NAMES[413] == "overLimit"


def test_an_unexpected_exception_is_a_generic_500_and_logged(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    # A real fault, not a domain error: the service's database was never migrated.
    url = f"sqlite:///{tmp_path / 'unmigrated.db'}"
    database = Database(url)
    app = create_app(
        Service(database, stack_settings(tmp_path, url)), stack_settings(tmp_path, url)
    )
    with caplog.at_level(logging.ERROR), serving(app) as root:
        r = httpx.get(f"{root}/v3/p1/volumes", headers={"X-Auth-Token": "u1:p1"})
    database.dispose()
    assert r.status_code == 500
    assert r.json() == {
        "computeFault": {
            "code": 500,
            "message": "The server has either erred or is incapable of performing the "
            "requested operation.",
        }
    }
    assert "no such table" not in r.text
    assert r.headers["x-openstack-request-id"].startswith("req-")
    assert any("no such table: volumes" in (rec.exc_text or "") for rec in caplog.records)
