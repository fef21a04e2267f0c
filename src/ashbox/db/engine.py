"""The database handle: engine, sessions, migrations; SQLite (WAL) or PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from ashbox.config import Settings
from ashbox.errors import DatabaseUnavailable, InvalidInput

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"
HEAD_REVISION = "0009"  # the newest file in migrations/versions; a test holds them equal
_NO_BEGIN = "ashbox_no_begin"  # execution option: `Database.autocommit()` on SQLite
_READ = "ashbox_read"  # execution option: `Database.reading()`
OUTBOX_KEY = "ashbox_outbox"  # Session.info: the transaction wrote outbox rows
_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"
_PG_NO_SPACE = frozenset({"53100"})  # disk_full
# SQLSTATE classes of a server gone or going: connection exception, operator intervention.
_PG_UNREACHABLE = frozenset({"08", "57"})


class Database:
    """One engine per process; `transaction()` is the only way code above db/ gets a session."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 20) -> None:
        """`pool_size` connections kept open, `max_overflow` more at a peak (PostgreSQL;
        SQLite has one writer at a time whatever the pool)."""
        self.url = _normalise(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            _ensure_parent_dir(self.url)
            self.engine: Engine = create_engine(
                self.url, connect_args={"timeout": 60, "check_same_thread": False}
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            self.engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(
            self.engine.execution_options(**{_READ: True}), expire_on_commit=False
        )
        self._outbox_listeners: list[Callable[[], None]] = []

    @classmethod
    def of(cls, settings: Settings) -> Database:
        """The database of `settings`, its pool sized as configured."""
        return cls(
            settings.resolved_database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )

    def on_outbox_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each commit, in this process, that wrote outbox
        rows (ashbox.relay delivers them then, rather than at its next poll)."""
        self._outbox_listeners.append(listener)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        On SQLite the transaction starts with BEGIN IMMEDIATE, so it holds the write
        lock from its first statement: read-then-write races cannot happen.
        """
        session = self._sessions()
        with _in_transaction(session):
            yield session
            wrote_outbox = bool(session.info.pop(OUTBOX_KEY, False))
        if wrote_outbox:
            for listener in self._outbox_listeners:
                listener()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session in one transaction that only reads (the API's GETs): on
        SQLite a plain BEGIN, a snapshot that neither takes nor waits for the
        write lock, so a client polling a backup never holds up its worker."""
        with _in_transaction(self._readers()) as session:
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection in one transaction, as `transaction()` but without a
        session, for db/'s Core statements on a hot path (the repository index):
        committed on success, rolled back on error, BEGIN IMMEDIATE on SQLite."""
        with _disk_full_is_unavailable(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection on which every statement is its own transaction: for db/
        calls of one statement (one read, one insert), which then save the BEGIN
        and COMMIT (two round trips on PostgreSQL) and, on SQLite, read without
        taking the write lock."""
        with _disk_full_is_unavailable(), self.engine.connect() as conn:
            if self.is_sqlite:
                yield conn.execution_options(**{_NO_BEGIN: True})
            else:
                yield conn.execution_options(isolation_level="AUTOCOMMIT")

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision. Alembic (a fifth of a
        second and 11 MiB to import) is loaded only when the schema is behind."""
        if self.revision() == HEAD_REVISION:
            return
        # Alembic names each of its plugins at INFO as it is imported: noise in a log.
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
        from alembic import command

        command.upgrade(self._alembic_config(), "head")

    def check_schema(self) -> None:
        """InvalidInput unless the schema is the one this code needs: `ashbox api` and
        `ashbox worker` never migrate, so that one `ashbox db upgrade` decides when."""
        found = self.revision()
        if found != HEAD_REVISION:
            raise InvalidInput(
                f"The database schema is at revision {found or '(none: an empty database)'}, "
                f"this ashbox needs {HEAD_REVISION}: run `ashbox db upgrade` with this version"
                if found is None or found < HEAD_REVISION
                else f"The database schema is at revision {found}, newer than this ashbox's "
                f"{HEAD_REVISION}: run the ashbox version that upgraded it"
            )

    def revision(self) -> str | None:
        """The schema's Alembic revision; None for an empty database."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            version: str | None = conn.scalar(text("SELECT version_num FROM alembic_version"))
            return version

    def dispose(self) -> None:
        self.engine.dispose()

    def _alembic_config(self) -> Config:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.attributes["engine"] = self.engine
        return cfg

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))


@contextmanager
def _in_transaction(session: Session) -> Iterator[Session]:
    """`session` in one transaction, committed on success, then closed."""
    try:
        with _disk_full_is_unavailable(), session.begin():
            yield session
    finally:
        session.close()


@contextmanager
def _disk_full_is_unavailable() -> Iterator[None]:
    """A write the database cannot take for want of space, or a server that cannot
    be reached (restarting, shutting down, the connection cut), is
    DatabaseUnavailable (503), not an unknown error: it passes by itself. A full
    disk rolled the transaction back; a cut connection may have lost the answer
    to a commit, so only the first says that nothing was changed."""
    try:
        yield
    except DBAPIError as e:
        _raise_if_unavailable(e.orig, e, invalidated=e.connection_invalidated)
        raise
    except Exception as e:
        if _from_driver(e):  # a driver cursor's own error (index_sql's)
            _raise_if_unavailable(e, e, invalidated=False)
        raise


def _raise_if_unavailable(
    error: BaseException | None, cause: Exception, *, invalidated: bool
) -> None:
    if _is_disk_full(error):
        raise DatabaseUnavailable(
            "The database cannot take writes now: its disk is full. Nothing was "
            "changed; try again once space is freed."
        ) from cause
    if invalidated or _is_unreachable(error):
        raise DatabaseUnavailable(
            "The database cannot be reached now; try again in a moment."
        ) from cause


def _is_disk_full(error: BaseException | None) -> bool:
    if getattr(error, "sqlite_errorcode", None) == _SQLITE_FULL:
        return True
    return getattr(error, "sqlstate", None) in _PG_NO_SPACE


def _from_driver(error: Exception) -> bool:
    return isinstance(error, sqlite3.Error) or type(error).__module__.startswith("psycopg")


def _is_unreachable(error: BaseException | None) -> bool:
    """A psycopg error of a server gone or going (psycopg is not imported for it:
    the CLI's commands that never touch a database do not pay for its import)."""
    if error is None or not type(error).__module__.startswith("psycopg"):
        return False
    state = getattr(error, "sqlstate", None)
    if state is not None:
        return str(state)[:2] in _PG_UNREACHABLE
    # No SQLSTATE: the client lost the server (connection refused, closed, cut).
    return any(c.__name__ in ("OperationalError", "InterfaceError") for c in type(error).__mro__)


def _normalise(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _ensure_parent_dir(url: str) -> None:
    path = url.split("sqlite:///", 1)[-1]
    if path and path != ":memory:" and not url.startswith("sqlite://:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_on_begin), and use WAL.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # Without BEGIN, the driver (isolation_level None) commits every statement.
    options = conn.get_execution_options()
    if not options.get(_NO_BEGIN):
        conn.exec_driver_sql("BEGIN" if options.get(_READ) else "BEGIN IMMEDIATE")
