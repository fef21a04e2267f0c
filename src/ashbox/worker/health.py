"""What a worker tells of its host: the service row that os-services lists
(up while its heartbeat is fresh), with the store's health as the last probe
found it. The probe runs in a thread of its own, apart from the ticker that
renews leases: a probe may wait for the store's timeouts and retries, and
leases must not."""

from __future__ import annotations

import logging
import threading

from ashbox.config import Settings
from ashbox.db import services as service_rows
from ashbox.db.engine import Database
from ashbox.errors import ObjectNotFound, StoreError
from ashbox.storage.base import Store

log = logging.getLogger(__name__)


class HostHealth:
    def __init__(self, db: Database, settings: Settings, store: Store, owner: str) -> None:
        self.db = db
        self.settings = settings
        self.store = store
        self.owner = owner
        self.store_error: str | None = None  # the last probe's answer; None: the store is fine

    def report_alive(self) -> None:
        """Record this host's service as up now (its row is made the first time), with
        what the store said to the last probe."""
        with self.db.transaction() as s:
            service_rows.report_alive(
                s,
                self.settings.resolved_worker_name,
                self.settings.availability_zone,
                store_error=self.store_error,
            )

    def probe_store(self) -> None:
        """Ask the store for one small object's size: the answer (found or not) says it
        serves; a StoreError, after the store's own retries, says what is wrong."""
        try:
            self.store.size(f"{self.settings.default_container}/config")
        except ObjectNotFound:
            pass
        except StoreError as e:
            if self.store_error is None:
                log.warning("store unavailable owner=%s reason=%s", self.owner, e.message)
            self.store_error = e.message
            return
        if self.store_error is not None:
            log.info("store available again owner=%s", self.owner)
        self.store_error = None

    def probe_until(self, stopping: threading.Event) -> None:
        """Probe the store every heartbeat until `stopping` is set (the prober thread)."""
        while not stopping.wait(self.settings.heartbeat_seconds):
            try:
                self.probe_store()
            except Exception:
                log.exception("could not probe the store owner=%s", self.owner)
