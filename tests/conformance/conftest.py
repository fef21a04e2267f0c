"""Conformance suites (Tempest, cinder-tempest-plugin) against ashbox behind a real Keystone.

They need the venvs `make test` builds with `scripts/conformance-venv.sh`
(docs/conformance.md); without them they skip, except under CI=true, where
they fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.tempest_run import tempest_available
from tests.keystone_server import Keystone, keystone  # noqa: F401 (a fixture)
from tests.needs import unavailable
from tests.server import Server


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "conformance: a community conformance suite (Tempest, its plugin)"
    )


@pytest.fixture(scope="session")
def tempest() -> None:
    missing = tempest_available()
    if missing:
        unavailable(missing)


@pytest.fixture(scope="session")
def keystone_ashbox(
    keystone: Keystone,  # noqa: F811 (the fixture imported above)
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """`ashbox serve` with `auth_strategy = "keystone"`, in `keystone`'s catalog as
    `block-storage` and `volumev3`."""
    service = keystone.create_user("ashbox", "service", roles=("service",))
    root = tmp_path_factory.mktemp("ashbox-keystone")
    server = Server(
        root / "data",
        f"sqlite:///{root / 'ashbox.db'}",
        ASHBOX_VOLUMES_DIR=str(root / "volumes"),
        ASHBOX_AUTH_STRATEGY="keystone",
        **keystone.authtoken_env(service),
    )
    server.start()
    keystone.register_block_storage(server.url)
    try:
        yield server
    finally:
        server.stop()
