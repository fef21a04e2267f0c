"""What a task's code gets: the database, the settings, the store, the task, progress.

Every transaction of a running task goes through `Job.transaction`, which
first checks, in that transaction, that this run still holds the task (its
owner and attempt number: the fencing token). A worker that lost its lease
therefore cannot commit late. The transaction that records a task's outcome
also ends the task (`Job.finish`), so a crash can never leave a finished
operation with a task that runs it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from ashbox.config import Settings
from ashbox.containers import open_repository
from ashbox.db import tasks as task_rows
from ashbox.db.engine import Database
from ashbox.errors import LeaseLost
from ashbox.keymgr import KeyManager
from ashbox.repository.repository import Repository
from ashbox.statuses import ResourceType, TaskKind, TaskState
from ashbox.storage.base import Store


class _Status(Protocol):
    status: str


@dataclass(frozen=True, slots=True)
class Job:
    db: Database
    settings: Settings
    store: Store
    task_id: str
    kind: TaskKind
    resource_type: ResourceType
    resource_id: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    owner: str
    worker_host: str
    progress: Callable[[int, int], None]
    keys: KeyManager  # encrypted volumes' keys (ashbox.keymgr)
    works_in: str | None = None  # the status its resource keeps while it runs

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A transaction in which this run still holds the task (else LeaseLost)."""
        with self.db.transaction() as s:
            if not task_rows.fence(s, self.task_id, self.owner, self.attempts):
                raise LeaseLost(self.task_id)
            yield s

    @contextmanager
    def fenced(self) -> Iterator[None]:
        """Run the block as the task's owner, for writes outside the database that
        only the owner may make (a backup's manifest). LeaseLost if this run lost
        the task. On PostgreSQL the task's row stays locked to the block's end, so
        no other worker can claim the task until the writes are done: a stale run
        never writes after its successor. On SQLite (one host) the claim is
        checked when the block starts."""
        if self.db.is_sqlite:
            with self.transaction():
                pass
            yield
            return
        with self.transaction():
            yield

    def proceeds(self, s: Session, row: _Status | None) -> bool:
        """Whether the task's resource (`row`, None if gone) is still where this
        task works; if not (done before a crash, force-deleted or reset since),
        the task ends here without changing it."""
        if row is not None and row.status == self.works_in:
            return True
        self.finish(s, note=f"{self.resource_type} is {row.status if row else 'gone'}")
        return False

    def finish(self, s: Session, *, failed: str | None = None, note: str | None = None) -> None:
        """End the task in `s`, the transaction that records its outcome: failed
        with a reason, or done (with a `note`, such as why it had nothing to do)."""
        state = TaskState.FAILED if failed is not None else TaskState.DONE
        if not task_rows.finish_task(
            s, self.task_id, self.owner, self.attempts, state, failed or note
        ):
            raise LeaseLost(self.task_id)

    def repository(self, container: str) -> Repository:
        """The container's repository: created with `encryption` if new, and
        unlocked with `key_file` (KeyRequired, WrongKey: the task fails with it)."""
        return open_repository(self.settings, self.store, self.db, container)
