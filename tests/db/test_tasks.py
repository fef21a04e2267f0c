"""The task queue: claims, leases, take-over and give-back, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

from ashbox.db import services as service_rows
from ashbox.db import tasks as task_rows
from ashbox.db.engine import Database
from ashbox.statuses import ResourceType, TaskKind, TaskState


def _add(db: Database, backup_id: str = "b1", **kw: object) -> str:
    with db.transaction() as s:
        task = task_rows.add_task(
            s,
            TaskKind.CREATE_BACKUP,
            ResourceType.BACKUP,
            backup_id,
            max_attempts=3,
            **kw,  # type: ignore[arg-type]
        )
        return task.id


def test_a_pending_task_is_claimed_once_and_counts_an_attempt(db: Database) -> None:
    task_id = _add(db)
    with db.transaction() as s:
        task = task_rows.claim_task(s, "w1", "h", 60)
        assert task is not None and task.id == task_id and task.attempts == 1
    with db.transaction() as s:
        assert task_rows.claim_task(s, "w2", "h", 60) is None


def test_a_task_whose_lease_expired_is_taken_over(db: Database) -> None:
    _add(db)
    with db.transaction() as s:
        assert task_rows.claim_task(s, "w1", "h", 0.05) is not None
    time.sleep(0.1)
    with db.transaction() as s:
        task = task_rows.claim_task(s, "w2", "h", 60)
        assert task is not None and task.lease_owner == "w2" and task.attempts == 2
    with db.transaction() as s:
        assert not task_rows.renew_lease(s, task.id, "w1", 1, 60)
        assert task_rows.renew_lease(s, task.id, "w2", 2, 60, done_bytes=5, total_bytes=10)
        assert task_rows.progress_of(s, ["b1"]) == {"b1": (5, 10)}


def test_a_running_task_of_a_dead_owner_is_reclaimed_at_once(db: Database) -> None:
    _add(db)
    with db.transaction() as s:
        assert task_rows.claim_task(s, "h/1/a", "h", 600) is not None
    with db.transaction() as s:
        assert task_rows.owners_running_on(s, "h/") == ["h/1/a"]
        task = task_rows.claim_task(s, "h/2/b", "h", 600, reclaimable_owners=["h/1/a"])
        assert task is not None and task.lease_owner == "h/2/b"


def test_a_task_pinned_to_another_host_is_left_alone(db: Database) -> None:
    _add(db, pinned_host="elsewhere")
    with db.transaction() as s:
        assert task_rows.claim_task(s, "w1", "here", 60) is None
        assert task_rows.claim_task(s, "w1", "elsewhere", 60) is not None


def test_a_task_pinned_to_a_zone_runs_only_on_a_worker_of_that_zone(db: Database) -> None:
    _add(db, pinned_zone="az2")
    with db.transaction() as s:
        assert task_rows.claim_task(s, "w1", "h", 60, zone="az1") is None
        assert task_rows.claim_task(s, "w1", "h", 60, zone="az2") is not None


def test_a_host_whose_service_is_disabled_claims_nothing(db: Database) -> None:
    _add(db)
    with db.transaction() as s:
        service_rows.report_alive(s, "h", "nova")
        row = service_rows.get_service(s, "h", service_rows.BACKUP_BINARY)
        assert row is not None
        service_rows.set_disabled(s, row, True, "maintenance")
    with db.transaction() as s:
        assert task_rows.claim_task(s, "h/1/a", "h", 60) is None
        assert task_rows.claim_task(s, "g/1/a", "g", 60) is not None


def _limited_claim(db: Database, owner: str) -> str | None:
    host = owner.split("/")[0]
    limited = (TaskKind.CREATE_BACKUP, TaskKind.RESTORE_BACKUP)
    with db.transaction() as s:
        task = task_rows.claim_task(s, owner, host, 60, limited=limited, max_limited=2)
        return None if task is None else task.kind


def test_a_host_runs_at_most_max_limited_creates_over_all_its_processes(db: Database) -> None:
    for n in range(4):
        _add(db, f"b{n}")
    with db.transaction() as s:
        task_rows.add_task(s, TaskKind.DELETE_BACKUP, ResourceType.BACKUP, "d", max_attempts=3)
    assert _limited_claim(db, "h/1/a") == TaskKind.CREATE_BACKUP
    assert _limited_claim(db, "h/2/b") == TaskKind.CREATE_BACKUP
    # The host is full: its third process gets the delete, then nothing.
    assert _limited_claim(db, "h/3/c") == TaskKind.DELETE_BACKUP
    assert _limited_claim(db, "h/3/c") is None
    # Another host has slots of its own.
    assert _limited_claim(db, "g/1/a") == TaskKind.CREATE_BACKUP


def test_a_dead_process_holds_no_slot_of_its_host(db: Database) -> None:
    for n in range(3):
        _add(db, f"b{n}")
    assert _limited_claim(db, "h/1/a") == TaskKind.CREATE_BACKUP
    assert _limited_claim(db, "h/1/a") == TaskKind.CREATE_BACKUP
    limited = (TaskKind.CREATE_BACKUP,)
    with db.transaction() as s:
        task = task_rows.claim_task(
            s, "h/2/b", "h", 60, reclaimable_owners=["h/1/a"], limited=limited, max_limited=2
        )
        assert task is not None and task.kind == TaskKind.CREATE_BACKUP


def test_concurrent_claimers_of_one_host_never_exceed_its_limit(db: Database) -> None:
    for n in range(8):
        _add(db, f"b{n}")
    claimed: list[str | None] = []
    lock = threading.Lock()

    def claim(n: int) -> None:
        kind = _limited_claim(db, f"h/{n}/x")
        with lock:
            claimed.append(kind)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(k for k in claimed if k is not None) == [TaskKind.CREATE_BACKUP] * 2


def test_a_given_back_task_is_pending_again_without_using_an_attempt(db: Database) -> None:
    task_id = _add(db)
    with db.transaction() as s:
        task_rows.claim_task(s, "w1", "h", 60)
    with db.transaction() as s:
        task_rows.give_back_task(s, task_id, "w1", 1)
    with db.transaction() as s:
        task = task_rows.get_task(s, task_id)
        assert task is not None and task.state == TaskState.PENDING and task.attempts == 0


def test_finishing_needs_the_lease(db: Database) -> None:
    task_id = _add(db)
    with db.transaction() as s:
        task_rows.claim_task(s, "w1", "h", 60)
    with db.transaction() as s:
        assert not task_rows.finish_task(s, task_id, "w2", 1, TaskState.DONE)
        assert not task_rows.finish_task(s, task_id, "w1", 2, TaskState.DONE)
        assert task_rows.finish_task(s, task_id, "w1", 1, TaskState.DONE)
    with db.transaction() as s:
        task = task_rows.get_task(s, task_id)
        assert task is not None and task.state == TaskState.DONE


def test_concurrent_claimers_never_share_a_task(db: Database) -> None:
    ids = {_add(db, f"b{i}") for i in range(20)}
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while True:
            with db.transaction() as s:
                task = task_rows.claim_task(s, name, "h", 60)
                if task is None:
                    return
                with lock:
                    claimed.append(task.id)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)


def test_a_run_that_lost_its_lease_is_fenced_out(db: Database) -> None:
    """The same owner name with an older attempt number (a worker that stalled
    past its lease and was replaced) holds nothing any more."""
    task_id = _add(db)
    with db.transaction() as s:
        assert task_rows.claim_task(s, "w1", "h", 0.05) is not None
    time.sleep(0.1)
    with db.transaction() as s:
        assert task_rows.claim_task(s, "w1", "h", 60) is not None  # attempt 2
    with db.transaction() as s:
        assert not task_rows.fence(s, task_id, "w1", 1)
        assert task_rows.fence(s, task_id, "w1", 2)


def test_a_task_waits_while_another_task_of_its_resource_runs(db: Database) -> None:
    first = _add(db, "b1")
    second = _add(db, "b1")
    _add(db, "b2")
    with db.transaction() as s:
        task = task_rows.claim_task(s, "w1", "h", 60)
        assert task is not None and task.id == first
    with db.transaction() as s:
        other = task_rows.claim_task(s, "w2", "h", 60)
        assert other is not None and other.resource_id == "b2"
        assert task_rows.claim_task(s, "w2", "h", 60) is None
    with db.transaction() as s:
        assert task_rows.finish_task(s, first, "w1", 1, TaskState.DONE)
    with db.transaction() as s:
        task = task_rows.claim_task(s, "w2", "h", 60)
        assert task is not None and task.id == second
