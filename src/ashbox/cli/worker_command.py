"""`ashbox worker`: claims and runs tasks, with no HTTP (DESIGN.md §5).

Any number run beside one or more `ashbox api` processes, on any host that
reaches the database and the store. A worker never migrates: it refuses a schema
of another version (`ashbox db upgrade`). Ctrl-C or SIGTERM stops it; its
running tasks stop at a block boundary and are resumed by the next claim.
With `metrics_port` it serves its Prometheus metrics there (docs/metrics.md).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from socketserver import BaseServer

from ashbox.cli.exit_codes import ExitCode
from ashbox.cli.serve_command import log_to_stderr, settings_for
from ashbox.malloc import keep_freed_memory

log = logging.getLogger(__name__)


def worker(args: argparse.Namespace) -> ExitCode:
    keep_freed_memory()
    settings = settings_for(args)
    log_to_stderr()
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    from ashbox.containers import open_repository
    from ashbox.db.engine import Database
    from ashbox.worker.runner import Worker

    try:
        exposing = _serve_metrics(settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        sys.stderr.write(
            f"error: cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: "
            f"{exc}\n"
        )
        return ExitCode.CANNOT_LISTEN
    db = Database.of(settings)
    db.check_schema()
    running = Worker(db, settings)
    if settings.key_file:
        open_repository(settings, running.store, db, settings.default_container)
    stop = threading.Event()
    received: list[str] = []

    def on_signal(sig: int, _frame: object) -> None:
        received.append(signal.Signals(sig).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        running.start()
        log.info("working name=%s store=%s", settings.resolved_worker_name, settings.resolved_store)
        stop.wait()
    finally:
        log.info("stopping the worker signals=%s", received)
        running.stop()
        if exposing is not None:
            exposing.shutdown()
            exposing.server_close()
        db.dispose()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return ExitCode.OK


def _serve_metrics(host: str, port: int) -> BaseServer | None:
    """Prometheus's text of this process's metrics on host:port, in a thread of
    its own; None if `port` is 0. OSError if the address cannot be bound."""
    if not port:
        return None
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host)
    log.info("serving metrics url=http://%s:%d/metrics", host, port)
    return server
