"""A worker's probe of the store, as its host's service reports it."""

from __future__ import annotations

from ashbox.errors import StoreError
from ashbox.storage.base import Store
from ashbox.worker.runner import Worker
from tests.harness import Harness


class _Unreachable:
    """A store whose server does not answer: a fault the real ones cause only at random."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = True

    def size(self, key: str) -> int:
        if self.down:
            raise StoreError("Backup store: cannot reach the server: connection refused")
        return self.store.size(key)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def test_the_service_says_what_the_store_answered_its_last_probe(harness: Harness) -> None:
    flaky = _Unreachable(harness.worker.store)
    worker = Worker(harness.db, harness.settings, store=flaky)  # type: ignore[arg-type]
    worker.health.probe_store()
    worker.health.report_alive()
    (service,) = harness.service.list_services(harness.ctx)
    assert service.store_error == "Backup store: cannot reach the server: connection refused"
    flaky.down = False
    worker.health.probe_store()
    worker.health.report_alive()
    (service,) = harness.service.list_services(harness.ctx)
    assert service.store_error is None and service.up
