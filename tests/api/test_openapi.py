"""The OpenAPI document, and a bounded schemathesis fuzz run over it.

The document is the application's own routes and body schemas; the fuzz run
sends what schemathesis makes of it (valid and invalid bodies, odd path and
query values) to a real stack and requires: never a 5xx, and a rejected
request creates nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from sqlalchemy import select

from ashbox.api import microversion as mv
from ashbox.api import schemas
from ashbox.db.models import Backup, Snapshot, Volume
from tests.api.conftest import Stack, running_stack

PROJECT = uuid.uuid4().hex
TOKEN = {"X-Auth-Token": f"fuzzer:{PROJECT}"}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("ashbox-fuzz")
    with running_stack("sqlite", data_dir, f"sqlite:///{data_dir / 'ashbox.db'}") as stack:
        yield stack


@pytest.fixture(scope="module")
def api_schema(fuzzed: Stack) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed.root}/openapi.json")


def test_the_document_is_public_and_names_every_route(fuzzed: Stack) -> None:
    r = httpx.get(f"{fuzzed.root}/openapi.json")
    assert r.status_code == 200
    document = r.json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    for path in ("/v3/{project_id}/backups", "/v3/backups/{backup_id}/action", "/"):
        assert path in paths
    create = paths["/v3/{project_id}/backups"]["post"]["requestBody"]["content"]
    # The very schema the endpoint validates with, at the newest microversion.
    assert create["application/json"]["schema"] == schemas.backup_create(mv.MAX_VERSION)
    actions = paths["/v3/{project_id}/backups/{backup_id}/action"]["post"]["requestBody"]
    named = {
        next(iter(o["properties"]))
        for o in actions["content"]["application/json"]["schema"]["oneOf"]
    }
    assert named == {"os-reset_status", "os-force_delete"}


def _ids(stack: Stack) -> set[str]:
    with stack.db.reading() as s:
        return {
            *s.scalars(select(Backup.id)),
            *s.scalars(select(Volume.id)),
            *s.scalars(select(Snapshot.id)),
        }


EXAMPLES = 25  # per operation and mode: ~50 operations, two modes


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzing_finds_no_5xx_and_rejected_requests_create_nothing(
    fuzzed: Stack, api_schema: schemathesis.BaseSchema, mode: GenerationMode
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 40
    for operation in operations:
        path_parameters = {"project_id": PROJECT} if "{project_id}" in operation.path else None

        @given(operation.as_strategy(mode, path_parameters=path_parameters))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def send(case: schemathesis.Case) -> None:
            before = _ids(fuzzed)
            response = case.call(base_url=fuzzed.root, headers=TOKEN, timeout=30)
            case.validate_response(response, checks=[not_a_server_error])
            if 400 <= response.status_code < 500:
                assert _ids(fuzzed) <= before, (case.as_curl_command(), response.text)

        try:
            send()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing in it can be made invalid
