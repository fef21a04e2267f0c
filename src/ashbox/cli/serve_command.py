"""`ashbox serve`: the API and one worker in one process (DESIGN.md §5, embedded
default); `ashbox api`: the API alone, beside workers of their own (`ashbox worker`).

Settings come from `load_settings` (defaults, the TOML file, `ASHBOX_*`), then
the command-line flags. uvicorn serves in the main thread and handles Ctrl-C and
SIGTERM; the worker is stopped after it, interrupting its task at a block
boundary, to be resumed on the next start. With a key file, the default
container's repository is opened first (docs/configuration.md, `key_file`).
`serve` brings the schema up to date itself; `api` refuses a schema of another
version (`ashbox db upgrade` migrates a shared database once). With
`metrics_enabled` the API's `/metrics` also counts the queue's pending tasks
(docs/metrics.md); in `serve` it shows the worker's metrics too.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ashbox.cli.exit_codes import ExitCode
from ashbox.config import Settings, load_settings
from ashbox.errors import InvalidInput
from ashbox.malloc import keep_freed_memory

if TYPE_CHECKING:
    from ashbox.db.engine import Database

log = logging.getLogger(__name__)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def settings_for(args: argparse.Namespace) -> Settings:
    """The settings of the configuration, overridden by the flags that were given."""
    settings = load_settings(Path(args.config) if args.config else None)
    data_dir = getattr(args, "data_dir", None)
    flags: dict[str, object] = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "data_dir": Path(data_dir) if data_dir else None,
        "store": getattr(args, "store", None),
    }
    given = {name: value for name, value in flags.items() if value is not None}
    return dataclasses.replace(settings, **given)  # type: ignore[arg-type]


def serve(args: argparse.Namespace) -> ExitCode:
    """The API and a worker, in this process."""
    return _http(args, with_worker=True)


def api(args: argparse.Namespace) -> ExitCode:
    """The API only: tasks it queues are run by `ashbox worker` processes."""
    return _http(args, with_worker=False)


def log_to_stderr() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _http(args: argparse.Namespace, *, with_worker: bool) -> ExitCode:
    keep_freed_memory()
    settings = settings_for(args)
    log_to_stderr()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _check_tls(settings)
    try:
        listening = _listen(settings.host, settings.port)
    except OSError as exc:
        # Before the worker starts: a second `serve` must not run tasks of the first.
        sys.stderr.write(f"error: cannot listen on {settings.host}:{settings.port}: {exc}\n")
        return ExitCode.CANNOT_LISTEN
    with listening:
        return _serve(settings, listening, with_worker=with_worker)


def _serve(settings: Settings, listening: socket.socket, *, with_worker: bool) -> ExitCode:
    import uvicorn

    from ashbox import metrics
    from ashbox.api.app import create_app
    from ashbox.backups.service import Service
    from ashbox.changes import Changes
    from ashbox.containers import open_repository
    from ashbox.db.engine import Database
    from ashbox.relay import Relay
    from ashbox.worker.runner import Worker

    db = Database.of(settings)
    if with_worker:
        db.migrate()
    else:
        db.check_schema()
    changes = Changes()  # the relay announces status changes to waiting GETs
    relay = Relay(db, changes, poll_seconds=settings.poll_seconds)
    worker = Worker(db, settings) if with_worker else None
    if worker is not None and settings.key_file:
        # The key is checked, and derived (Argon2id, ~0.13 s) once for the
        # process, now: a wrong key file stops the service here, not its first
        # backup, which no longer pays the derivation either.
        open_repository(settings, worker.store, db, settings.default_container)
    service = Service(db, settings, task_queued=worker.wake) if worker else Service(db, settings)
    app = create_app(service, settings, changes)
    metrics.watch_queue(functools.partial(pending_tasks, db) if settings.metrics_enabled else None)
    relay.start()
    if worker is not None:
        worker.start()
    log.info(
        "serving url=%s://%s:%d worker=%s auth=%s data_dir=%s store=%s",
        "https" if settings.tls_cert else "http",
        settings.host,
        settings.port,
        "in this process" if worker is not None else "none (ashbox worker)",
        settings.auth_strategy,
        settings.data_dir.resolve(),
        settings.resolved_store,
    )
    from ashbox.api.http_limits import uvicorn_options

    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="info",
            ssl_certfile=settings.tls_cert or None,
            ssl_keyfile=settings.tls_key or None,
            **uvicorn_options(),
        )
    )
    # uvicorn catches SIGINT and SIGTERM, shuts down, then raises them again with the
    # handlers it found; these only note them, so the worker is stopped before exit.
    received: list[int] = []
    previous = {sig: signal.signal(sig, _note(received)) for sig in _STOP_SIGNALS}
    try:
        server.run(sockets=[listening])
    finally:
        if worker is not None:
            names = [signal.Signals(s).name for s in received]
            log.info("stopping the worker signals=%s", names)
            worker.stop()
        relay.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return ExitCode.OK if server.started else ExitCode.FAILED


def pending_tasks(db: Database) -> dict[str, int]:
    """The queue's pending tasks by kind (`ashbox_tasks_pending`)."""
    from ashbox.db import tasks as task_rows

    with db.transaction() as s:
        return task_rows.pending_counts(s)


def _note(received: list[int]) -> Callable[[int, FrameType | None], None]:
    def handler(sig: int, frame: FrameType | None) -> None:
        received.append(sig)

    return handler


def _listen(host: str, port: int) -> socket.socket:
    """The API's socket, bound now; OSError if the address is taken or not allowed."""
    family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _check_tls(settings: Settings) -> None:
    """InvalidInput, before anything starts, if the certificate or key cannot be used."""
    if not settings.tls_cert:
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            settings.tls_cert, settings.tls_key
        )
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(f"Cannot use tls_cert/tls_key: {exc}") from exc
