"""Commands that work on the database and the store directly, without a service.

`ashbox repo ...` and `ashbox backup verify` run in this process: settings are
built as `ashbox serve` builds them (defaults, the TOML file of `--config` or
`ASHBOX_CONFIG`, `ASHBOX_*` variables, then `--data-dir` and `--store`), the
database is migrated and the repository of `--container` (default
`default_container`) is opened with the database index (docs/cli.md,
"Repository maintenance").
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ashbox.cli.exit_codes import ExitCode

if TYPE_CHECKING:  # imported when a local command runs, so the HTTP commands start fast
    from ashbox.config import Settings
    from ashbox.db.engine import Database
    from ashbox.repository.repository import Repository
    from ashbox.storage.base import Store


class Local:
    """What a local command gets: settings, database, store, output streams. A plain
    class, not a dataclass: importing `dataclasses` costs every command ~6 ms."""

    __slots__ = ("container", "db", "settings", "stderr", "stdout", "store")

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        store: Store,
        stdout: TextIO,
        stderr: TextIO,
        container: str,
    ) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.stdout = stdout
        self.stderr = stderr
        self.container = container

    def repository(self, container: str | None = None) -> Repository:
        """The repository of `container` (default: the `--container` flag);
        RepositoryNotFound if the store has none: a local command never makes one."""
        from ashbox.containers import open_repository

        name = container or self.container
        return open_repository(self.settings, self.store, self.db, name, create=False)

    def print(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def error(self, message: str) -> None:
        self.stderr.write(f"error: {message}\n")
        self.stderr.flush()


LocalCommand = Callable[[Local, argparse.Namespace], ExitCode]


def add_local_flags(parser: argparse.ArgumentParser, *, container: bool = True) -> None:
    """The flags every local command takes."""
    parser.add_argument("--config", help="TOML configuration file (default $ASHBOX_CONFIG)")
    parser.add_argument("--data-dir", help="state directory (default ./ashbox-data)")
    parser.add_argument("--store", help="backup store URL (default file://<data-dir>/store)")
    if container:
        parser.add_argument(
            "--container", help="the repository (default: the default_container setting)"
        )


def settings_for(args: argparse.Namespace) -> Settings:
    """The settings of the configuration, overridden by the flags that were given."""
    import dataclasses  # here: importing it costs ~6 ms, and only local commands need it

    from ashbox.config import load_settings

    settings = load_settings(Path(args.config) if args.config else None)
    given: dict[str, object] = {}
    if args.data_dir:
        given["data_dir"] = Path(args.data_dir)
    if args.store:
        given["store"] = args.store
    return dataclasses.replace(settings, **given)  # type: ignore[arg-type]


@contextmanager
def open_local(
    args: argparse.Namespace, stdout: TextIO, stderr: TextIO, *, new_database: bool = False
) -> Iterator[Local]:
    """The database (migrated) and store the flags and configuration name. Both
    must exist (NotFound, saying where it looked), but for `new_database` the
    database may be made anew (`repo recover` after it was lost)."""
    from ashbox.db.engine import Database
    from ashbox.storage import StoreOptions, open_store

    settings = settings_for(args)
    _check_exists(settings, new_database=new_database)
    db = Database.of(settings)
    try:
        db.migrate()
        yield Local(
            settings=settings,
            db=db,
            store=open_store(settings.resolved_store, StoreOptions.of(settings)),
            stdout=stdout,
            stderr=stderr,
            container=getattr(args, "container", None) or settings.default_container,
        )
    finally:
        db.dispose()


def run_local(
    run: LocalCommand, args: argparse.Namespace, stdout: TextIO, stderr: TextIO
) -> ExitCode:
    from ashbox.malloc import keep_freed_memory

    keep_freed_memory()  # a local command may read a whole repository
    new_database = bool(getattr(args, "local_new_database", False))
    with open_local(args, stdout, stderr, new_database=new_database) as local:
        return run(local, args)


def _check_exists(settings: Settings, *, new_database: bool) -> None:
    """A local command run from the wrong directory must not report on an empty
    repository it made: the database and the store must be there already."""
    from ashbox.errors import NotFound

    hint = "run it where `ashbox serve` runs, or give --config or --data-dir"
    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not new_database:
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise NotFound(f"No ashbox database at {path}: {hint}.")
    store = settings.resolved_store
    if store.startswith("file://"):
        path = Path(store.removeprefix("file://"))
        if not path.is_dir():
            raise NotFound(f"No backup store at {path}: {hint}.")
