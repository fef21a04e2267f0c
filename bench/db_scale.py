"""`make bench-scale`: the load N backup workers put on one PostgreSQL (issue 12).

A throwaway PostgreSQL cluster (tests/pg_cluster.py's, started durable: fsync,
synchronous_commit and full_page_writes on, pg_stat_statements loaded; or
`--pg URL`, a server of yours) gets a fresh, migrated database, and the
container's index is preloaded in SQL with `--preload` blobs (a parent
backup's: packs of 32, 1 in 8 a page delta, each referenced once). Then, for
each N of `--workers`, N processes each do the database work of one worker
backing up 1 MiB blocks at `--rate-mib-s` blocks/s (the `make bench` full
backup, docs/performance.md), for `--seconds`; then again unpaced, as fast as
they can (`--unpaced`). A simulated worker, per backup of `--backup-blocks`:

- `add_task` (the API's, timed with the claim) and `claim_task` per backup,
  `finish_task` at its end;
- per batch of 8 blocks (writer.py): `reuse` of the batch's 16 new ids (8
  blobs, 8 page tables), none of them indexed;
- every `--hit-every` batches: `reuse` of 16 indexed ids of the parent (lock,
  references) and `locate` of them;
- per `--pack-blocks` blocks: `begin_pack` and `commit_pack` of that many
  blobs (1 in 8 a delta on a parent blob); per 1024 page tables a table pack
  (`commit_tables`; at a backup's end the rest of each, also as `commit_tables`);
- at its end, `keep_references` of every id it used;
- every second `renew_lease` and the resource's status (worker/runner.py's
  tick), every `--heartbeat-seconds` `report_alive`.

Each worker starts at a random block of its first backup. Measured per N:
blocks/s achieved (total, per worker) against offered, p50/p99 ms per call,
PostgreSQL's CPU (utime+stime of the postmaster and its children, from
/proc) and the workers' own, per block, the mean number of sessions waiting
on a lock (pg_stat_activity, sampled every 50 ms), and statements, rows and
transactions per block (pg_stat_statements, pg_stat_database). N saturates
when it achieves < 95% of the offered rate or a hot-path call's p99 passes
`--p99-budget-ms`. The rows each phase added are deleted after it, so every
phase starts on the preloaded index. Results: docs/scale.md.

Run: `.venv/bin/python bench/db_scale.py [--workers 1,2,4] [--seconds 10]
[--repeat 3] [--pg postgresql://...]`
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import random
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from ashbox.db import services as service_rows  # noqa: E402
from ashbox.db import tasks as task_rows  # noqa: E402
from ashbox.db.engine import Database  # noqa: E402
from ashbox.db.index import DbIndex  # noqa: E402
from ashbox.db.lifecycle import status_of  # noqa: E402
from ashbox.repository.index import BlobLocation  # noqa: E402
from ashbox.statuses import ResourceType, TaskKind, TaskState  # noqa: E402
from tests.pg_cluster import PostgresCluster  # noqa: E402

BLOCK = 1 << 20
BATCH_BLOCKS = 8  # writer.py: 8 MiB batches of 1 MiB blocks
TABLE_PACK_ENTRIES = 1024  # 2 MiB table packs of ~2 KiB page tables
PRELOAD_PACK = 32
DELTA_EVERY = 8
HOT = ("reuse miss", "reuse hit", "locate", "begin_pack", "commit_pack")
CALLS = (*HOT, "commit_tables", "keep_refs", "claim", "finish", "heartbeat", "alive")
_LIMITED = (TaskKind.CREATE_BACKUP, TaskKind.RESTORE_BACKUP)  # worker/runner.py
_T = TypeVar("_T")


def main() -> int:
    opts = _options()
    cluster = None
    if opts.pg:
        server = opts.pg
    else:
        cluster = _Cluster(_free_port(), durable=opts.durable)
        cluster.start()
        server = cluster.url
    url, drop = _fresh_database(server)
    try:
        return _bench(opts, url)
    finally:
        drop()
        if cluster is not None:
            cluster.remove()


def _options() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pg", metavar="URL", help="a PostgreSQL server (no database name)")
    p.add_argument("--workers", default="1,2,4,8,16,32,64", help="N to measure, comma-separated")
    p.add_argument("--unpaced", default="1,2,4,8,16,32,64", help="N to run unpaced ('' none)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured per N")
    p.add_argument("--repeat", type=int, default=1, help="runs of every N; medians printed")
    p.add_argument("--rate-mib-s", type=float, default=1400.0, help="per worker (make bench)")
    p.add_argument("--backup-blocks", type=int, default=2048)
    p.add_argument("--pack-blocks", type=int, default=16)
    p.add_argument("--hit-every", type=int, default=4, help="batches per reuse of stored ids")
    p.add_argument("--preload", type=int, default=1_000_000, help="blobs indexed beforehand")
    p.add_argument("--containers", type=int, default=1, help="worker i uses i %% containers")
    p.add_argument("--heartbeat-seconds", type=float, default=10.0)
    p.add_argument("--p99-budget-ms", type=float, default=20.0)
    p.add_argument(
        "--durable", action=argparse.BooleanOptionalAction, default=True,
        help="fsync, synchronous_commit, full_page_writes on (own cluster only)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


@dataclass(frozen=True, slots=True)
class Phase:
    workers: int
    paced: bool
    seconds: float
    blocks: int
    offered: float  # blocks/s, all workers
    pg_cpu: float | None  # seconds
    pg_cpu_by: dict[str, float]  # seconds, by kind of process
    wal: dict[str, float]  # pg_stat_wal's records, fpi, bytes and syncs over the phase
    client_cpu: float
    machine_busy: float  # fraction of all cores
    lock_waiters: float
    active: float
    statements: int | None
    rows: int | None
    xacts: int
    tuples: dict[str, int]
    calls: dict[str, list[float]]
    top: list[tuple[str, int, float, int]]  # query, calls, total ms, rows

    @property
    def achieved(self) -> float:
        return self.blocks / self.seconds

    def cpu_ms_per_block(self) -> float | None:
        return None if self.pg_cpu is None else self.pg_cpu * 1000 / max(1, self.blocks)

    def p(self, call: str, q: float) -> float | None:
        ms = sorted(self.calls.get(call, ()))
        return ms[min(len(ms) - 1, int(len(ms) * q))] * 1000 if ms else None


def _bench(opts: argparse.Namespace, url: str) -> int:
    started = time.monotonic()
    print(f"load average at start: {_loadavg()}", file=sys.stderr)
    driver_url = url.replace("postgresql+psycopg://", "postgresql://")
    db = Database(url)
    db.migrate()
    db.dispose()
    with psycopg.connect(driver_url, autocommit=True) as conn:
        statements = _has_pg_stat_statements(conn)
        t = time.monotonic()
        _preload(conn, opts.preload, opts.containers)
        print(f"preloaded {opts.preload} blobs in {time.monotonic() - t:.1f} s", file=sys.stderr)
        sizes = _sizes(conn)
        postmaster = _postmaster(conn)
        settings = _settings(conn)
    phases: list[Phase] = []
    plan = [(n, True) for n in _ns(opts.workers)] + [(n, False) for n in _ns(opts.unpaced)]
    for _ in range(opts.repeat):
        for n, paced in plan:
            phase = _run_phase(opts, url, n, paced, postmaster, statements)
            phases.append(phase)
            _progress(phase)
            with psycopg.connect(driver_url, autocommit=True) as conn:
                _clean(conn)
    _report(opts, phases, sizes, settings, postmaster is not None)
    print(f"load average at end: {_loadavg()}", file=sys.stderr)
    print(f"took {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


# The simulated worker -------------------------------------------------------------------


def _worker(
    url: str,
    number: int,
    opts: argparse.Namespace,
    paced: bool,
    gates: tuple[Any, Any, Any],
    start_at: Any,
    out: Any,
) -> None:
    ready, go, done = gates
    db = Database(url, pool_size=2, max_overflow=2)
    try:
        sim = _Sim(db, number, opts, seed=opts.seed * 1000 + number + (0 if paced else 500))
        sim.warm_up()
        ready.wait()
        go.wait()
        t0 = start_at.value
        while time.monotonic() < t0:
            time.sleep(0.001)
        cpu = os.times()
        blocks = sim.run(t0, t0 + opts.seconds, opts.rate_mib_s * (1 << 20) / BLOCK if paced else 0)
        spent = os.times()
        out.put((blocks, spent.user + spent.system - cpu.user - cpu.system, sim.times))
        done.wait()
    finally:
        db.dispose()


@dataclass
class _Sim:
    """One worker's database work while it backs up, as writer.py and
    pack_writer.py call the index and worker/runner.py the task rows."""

    db: Database
    number: int
    opts: argparse.Namespace
    seed: int
    times: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = DbIndex(self.db)
        self.rng = random.Random(self.seed)
        c = self.number % self.opts.containers
        self.container_number = c
        self.container = _container(c)
        self.parent_blobs = self.opts.preload // self.opts.containers
        self.host = f"sim-host-{self.number}"
        self.owner = f"{self.host}/{os.getpid()}/x"
        self.task: tuple[str, int] | None = None
        self.backup_id = ""
        self.position = 0  # block of the current backup
        self.batches = 0
        self.used: list[bytes] = []
        self.blocks_to_pack: list[BlobLocation] = []
        self.tables_to_pack: list[BlobLocation] = []
        self.renewed = self.reported = 0.0

    def warm_up(self) -> None:
        """Connect, report alive and claim a first task, outside the measurement."""
        self.index.reuse(self.container, "warm-up", [self.rng.randbytes(32)])
        self.index.locate(self.container, [self.rng.randbytes(32)])
        with self.db.transaction() as s:
            service_rows.report_alive(s, self.host, "nova")
        self._new_backup()
        self.position = self.rng.randrange(self.opts.backup_blocks // BATCH_BLOCKS) * BATCH_BLOCKS
        self.times = {}

    def run(self, t0: float, deadline: float, rate: float) -> int:
        """Batches until `deadline`, paced at `rate` blocks/s (0: unpaced); the
        blocks of the batches finished by then."""
        done = 0
        self.renewed = self.reported = t0
        while True:
            if rate:
                due = t0 + done / rate
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            if time.monotonic() >= deadline:
                return done
            self._batch()
            if time.monotonic() <= deadline:
                done += BATCH_BLOCKS
            self._tick()

    def _batch(self) -> None:
        ids = [self.rng.randbytes(32) for _ in range(2 * BATCH_BLOCKS)]
        found = self._timed("reuse miss", self.index.reuse, self.container, self.backup_id, ids)
        assert not found, "a random id was indexed"
        self.used += ids
        for i, blob_id in enumerate(ids[:BATCH_BLOCKS]):
            self.blocks_to_pack.append(self._entry(blob_id, self.position + i))
        self.tables_to_pack += [self._entry(t, -1) for t in ids[BATCH_BLOCKS:]]
        self.batches += 1
        if self.batches % self.opts.hit_every == 0:
            hits = [self._parent(j) for j in self._sample(2 * BATCH_BLOCKS)]
            found = self._timed("reuse hit", self.index.reuse, self.container, self.backup_id, hits)
            assert len(found) == len(hits), "a parent blob was not found"
            self._timed("locate", self.index.locate, self.container, hits)
            self.used += hits
        while len(self.blocks_to_pack) >= self.opts.pack_blocks:
            self._pack(self.blocks_to_pack, self.opts.pack_blocks)
        while len(self.tables_to_pack) >= TABLE_PACK_ENTRIES:
            self._pack(self.tables_to_pack, TABLE_PACK_ENTRIES)
        self.position += BATCH_BLOCKS
        if self.position >= self.opts.backup_blocks:
            self._end_backup()
            self._new_backup()

    def _entry(self, blob_id: bytes, position: int) -> BlobLocation:
        base = None
        if position >= 0 and position % DELTA_EVERY == DELTA_EVERY - 1:
            base = self._parent(self.rng.randrange(self.parent_blobs))
        return BlobLocation(blob_id, "", 0, 1 << 19, BLOCK, 1, base)

    def _pack(self, queue: list[BlobLocation], count: int) -> None:
        entries = [
            BlobLocation(e.blob_id, "", i << 19, e.length, e.raw_length, e.flags, e.base_id)
            for i, e in enumerate(queue[:count])
        ]
        del queue[:count]
        pack_id = "sim" + uuid.uuid4().hex
        c, b = self.container, self.backup_id
        self._timed("begin_pack", self.index.begin_pack, c, pack_id, b)
        call = "commit_pack" if count == self.opts.pack_blocks else "commit_tables"
        self._timed(call, self.index.commit_pack, c, pack_id, 16 << 20, entries, b)

    def _end_backup(self) -> None:
        for queue in (self.blocks_to_pack, self.tables_to_pack):
            if queue:
                self._pack(queue, len(queue))
        used = sorted(set(self.used))
        dead = self._timed(
            "keep_refs", self.index.keep_references, self.container, self.backup_id, used
        )
        assert not dead, "a backup left packs dead"
        assert self.task is not None
        task_id, attempt = self.task

        def finish() -> None:
            with self.db.transaction() as s:
                task_rows.finish_task(s, task_id, self.owner, attempt, TaskState.DONE)

        self._timed("finish", finish)
        self.used = []

    def _new_backup(self) -> None:
        self.backup_id = f"sim-{uuid.uuid4().hex[:30]}"
        self.position = 0

        def claim() -> tuple[str, int]:
            with self.db.transaction() as s:
                task_rows.add_task(
                    s, TaskKind.CREATE_BACKUP, ResourceType.BACKUP, self.backup_id, max_attempts=3
                )
            with self.db.transaction() as s:
                task = task_rows.claim_task(
                    s, self.owner, self.host, 60.0, zone="nova", limited=_LIMITED, max_limited=2
                )
                assert task is not None, "no task to claim"
                return task.id, task.attempts

        self.task = self._timed("claim", claim)

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self.renewed >= 1.0 and self.task is not None:
            self.renewed = now
            task_id, attempt = self.task

            def heartbeat() -> None:
                with self.db.transaction() as s:
                    kept = task_rows.renew_lease(s, task_id, self.owner, attempt, 60.0)
                    assert kept, "the lease was lost"
                    status_of(s, ResourceType.BACKUP, self.backup_id)

            self._timed("heartbeat", heartbeat)
        if now - self.reported >= self.opts.heartbeat_seconds:
            self.reported = now

            def alive() -> None:
                with self.db.transaction() as s:
                    service_rows.report_alive(s, self.host, "nova")

            self._timed("alive", alive)

    def _sample(self, k: int) -> list[int]:
        return self.rng.sample(range(self.parent_blobs), k)

    def _parent(self, j: int) -> bytes:
        return _preload_id(self.container_number, j)

    def _timed(self, call: str, fn: Callable[..., _T], *args: Any) -> _T:
        started = time.perf_counter()
        result = fn(*args)
        self.times.setdefault(call, []).append(time.perf_counter() - started)
        return result


# One phase: N workers, measured -----------------------------------------------------------


def _run_phase(
    opts: argparse.Namespace,
    url: str,
    n: int,
    paced: bool,
    postmaster: int | None,
    statements: bool,
) -> Phase:
    ctx = mp.get_context("fork")
    gates = (ctx.Barrier(n + 1), ctx.Barrier(n + 1), ctx.Barrier(n + 1))
    start_at = ctx.Value("d", 0.0)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, i, opts, paced, gates, start_at, out), daemon=True)
        for i in range(n)
    ]
    for proc in procs:
        proc.start()
    driver_url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(driver_url, autocommit=True) as conn:
        gates[0].wait(timeout=300)
        if statements:
            conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT pg_stat_clear_snapshot()")
        before, wal0 = _db_counters(conn), _wal(conn)
        start_at.value = time.monotonic() + 0.05
        cpu0, machine0 = _pg_cpu(postmaster), _machine()
        gates[1].wait(timeout=60)
        waits, active = _sample_locks(conn, start_at.value + opts.seconds)
        results = [out.get(timeout=opts.seconds + 300) for _ in procs]
        cpu1, machine1 = _pg_cpu(postmaster), _machine()
        conn.execute("SELECT pg_stat_clear_snapshot()")
        after, wal1 = _db_counters(conn), _wal(conn)
        top = _top_statements(conn) if statements else []
        gates[2].wait(timeout=60)
    for proc in procs:
        proc.join(timeout=60)
    calls: dict[str, list[float]] = {}
    for _, _, times in results:
        for call, samples in times.items():
            calls.setdefault(call, []).extend(samples)
    by = {}
    if cpu0 is not None and cpu1 is not None:
        by = {k: v - cpu0.get(k, 0.0) for k, v in cpu1.items()}
    busy = 1 - (machine1[0] - machine0[0]) / max(1, machine1[1] - machine0[1])
    tuples = {k: after[k] - before[k] for k in after}
    return Phase(
        workers=n,
        paced=paced,
        seconds=opts.seconds,
        blocks=sum(r[0] for r in results),
        offered=n * opts.rate_mib_s * (1 << 20) / BLOCK if paced else 0.0,
        pg_cpu=None if cpu0 is None or cpu1 is None else sum(by.values()),
        pg_cpu_by=by,
        wal={k: wal1[k] - wal0[k] for k in wal1},
        client_cpu=sum(r[1] for r in results),
        machine_busy=busy,
        lock_waiters=waits,
        active=active,
        statements=sum(t[1] for t in top) if statements else None,
        rows=sum(t[3] for t in top) if statements else None,
        xacts=tuples.pop("xact_commit"),
        tuples=tuples,
        calls=calls,
        top=top,
    )


def _sample_locks(conn: psycopg.Connection[Any], until: float) -> tuple[float, float]:
    """Mean sessions of this database waiting on a heavyweight lock, and active."""
    waiting, active, samples = 0, 0, 0
    query = (
        "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), "
        "count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    while time.monotonic() < until:
        row = conn.execute(query).fetchone()
        assert row is not None
        waiting += row[0]
        active += row[1]
        samples += 1
        time.sleep(0.05)
    return waiting / max(1, samples), active / max(1, samples)


def _db_counters(conn: psycopg.Connection[Any]) -> dict[str, int]:
    row = conn.execute(
        "SELECT xact_commit, tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted "
        "FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    names = ("xact_commit", "returned", "fetched", "inserted", "updated", "deleted")
    return dict(zip(names, (int(v) for v in row), strict=True))


def _wal(conn: psycopg.Connection[Any]) -> dict[str, float]:
    row = conn.execute(
        "SELECT wal_records, wal_fpi, wal_bytes, wal_sync FROM pg_stat_wal"
    ).fetchone()
    assert row is not None
    return dict(zip(("records", "fpi", "bytes", "syncs"), map(float, row), strict=True))


_OWN = ("pg_stat", "pg_backend_pid", "current_database()")


def _top_statements(conn: psycopg.Connection[Any]) -> list[tuple[str, int, float, int]]:
    """Each statement the workers ran (calls, total ms, rows), most calls first."""
    rows = conn.execute(
        "SELECT query, calls, total_exec_time, rows FROM pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "ORDER BY calls DESC"
    ).fetchall()
    return [(q, int(c), float(t), int(r)) for q, c, t, r in rows if not any(o in q for o in _OWN)]


# The database: cluster, preload, sizes ----------------------------------------------------


class _Cluster(PostgresCluster):
    """tests/pg_cluster.py's cluster, durable unless asked otherwise, with
    pg_stat_statements and room for 64 workers."""

    def __init__(self, port: int, *, durable: bool) -> None:
        super().__init__(port)
        self.durable = durable

    def start(self) -> None:
        safety = "on" if self.durable else "off"
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            f"-c fsync={safety} -c synchronous_commit={safety} -c full_page_writes={safety} "
            "-c max_connections=300 -c shared_buffers=1GB -c max_wal_size=4GB "
            "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=1000"
        )
        log = self.root / "pg.log"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-o", f"'{options}'", "start"
        )


def _fresh_database(server: str) -> tuple[str, Callable[[], None]]:
    base = server.rstrip("/").replace("postgresql+psycopg://", "postgresql://")
    name = f"scale_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

    return f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}", drop


def _has_pg_stat_statements(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
    except psycopg.Error as exc:
        print(f"no pg_stat_statements ({exc}): statements not counted", file=sys.stderr)
        return False
    return True


def _container(number: int) -> str:
    return "volumebackups" if number == 0 else f"volumebackups-{number}"


def _preload_id(container: int, j: int) -> bytes:
    """The id of parent blob `j` of container `container`: sha256(int8send(...)) in SQL."""
    return hashlib.sha256(((container << 40) | j).to_bytes(8, "big", signed=True)).digest()


def _preload(conn: psycopg.Connection[Any], blobs: int, containers: int) -> None:
    """A parent backup's blobs in every container, in SQL: packs of 32, 1 in 8 a
    delta on the blob 7 before it, each referenced once."""
    per = blobs // containers
    for c in range(containers):
        name = _container(c)
        conn.execute("INSERT INTO containers (name, created_at) VALUES (%s, now())", [name])
        key = f"(({c}::int8 << 40) | j)"
        conn.execute(
            "INSERT INTO packs (container, id, state, size, created_at) "
            "SELECT %s, 'pre' || p, 'live', 16 << 20, now() FROM generate_series(0, %s) p",
            [name, (per - 1) // PRELOAD_PACK],
        )
        conn.execute(
            'INSERT INTO blobs (container, blob_id, pack_id, "offset", length, raw_length, '
            "flags, base_blob_id) "
            f"SELECT %s, sha256(int8send({key})), 'pre' || (j / {PRELOAD_PACK}), "
            f"mod(j, {PRELOAD_PACK})::int8 << 19, 1 << 19, 1 << 20, 1, "
            f"CASE WHEN mod(j, {DELTA_EVERY}) = {DELTA_EVERY - 1} "
            f"THEN sha256(int8send({key} - {DELTA_EVERY - 1})) END "
            "FROM generate_series(0, %s) j",
            [name, per - 1],
        )
        conn.execute(
            "INSERT INTO blob_refs (backup_id, container, blob_id) "
            "SELECT 'parent', container, blob_id FROM blobs WHERE container = %s",
            [name],
        )
    conn.execute("VACUUM ANALYZE")


def _clean(conn: psycopg.Connection[Any]) -> None:
    """Drop what a phase added, so that the next starts on the preloaded index."""
    conn.execute("DELETE FROM blob_refs WHERE backup_id >= 'sim-' AND backup_id < 'sim.'")
    conn.execute("DELETE FROM blobs WHERE pack_id >= 'sim' AND pack_id < 'sin'")
    conn.execute("DELETE FROM packs WHERE id >= 'sim' AND id < 'sin'")
    conn.execute("DELETE FROM tasks")
    conn.execute("VACUUM ANALYZE blobs, blob_refs, packs, tasks")


def _sizes(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, int]]:
    """Rows and table+index bytes of the index's tables."""
    out = {}
    for table in ("blobs", "blob_refs", "packs"):
        row = conn.execute(
            f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}"
        ).fetchone()
        assert row is not None
        out[table] = (int(row[0]), int(row[1]))
    return out


def _settings(conn: psycopg.Connection[Any]) -> dict[str, str]:
    names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers")
    return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}  # type: ignore[index]


def _postmaster(conn: psycopg.Connection[Any]) -> int | None:
    """The server's postmaster pid, if it runs on this machine and we can read it."""
    try:
        data = conn.execute("SHOW data_directory").fetchone()
        assert data is not None
        pid = int((Path(data[0]) / "postmaster.pid").read_text().split()[0])
        Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError, psycopg.Error):
        print("PostgreSQL's processes are not readable: its CPU not measured", file=sys.stderr)
        return None
    return pid


def _pg_cpu(postmaster: int | None) -> dict[str, float] | None:
    """CPU seconds of the postmaster's children: the client backends, each kind of
    background process (walwriter, checkpointer, ...), and those reaped (in the
    postmaster's cutime and cstime) with the postmaster's own."""
    if postmaster is None:
        return None
    ticks: dict[str, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            pid, ppid = int(entry.name), int(fields[1])
            if pid != postmaster and ppid != postmaster:
                continue
            title = Path(entry.path, "cmdline").read_bytes().split(b"\0")[0].decode()
        except (OSError, UnicodeDecodeError):
            continue
        if pid == postmaster:
            kind = "postmaster and exited"
            used = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        else:
            words = title.removeprefix("postgres: ").split()
            kind = "backends" if "(" in title or len(words) > 2 else " ".join(words[:2])
            used = int(fields[11]) + int(fields[12])
        ticks[kind] = ticks.get(kind, 0) + used
    return {k: v / os.sysconf("SC_CLK_TCK") for k, v in ticks.items()}


def _machine() -> tuple[int, int]:
    """Idle and total jiffies of all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return values[3] + values[4], sum(values[:8])


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ns(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n.strip()]


# Output ---------------------------------------------------------------------------------


def _progress(phase: Phase) -> None:
    cpu = phase.cpu_ms_per_block()
    print(
        f"N={phase.workers:2} {'paced' if phase.paced else 'unpaced'}: "
        f"{phase.achieved:8.0f} blocks/s, PostgreSQL "
        f"{'-' if cpu is None else f'{cpu:.3f}'} CPU-ms/block, "
        f"machine {phase.machine_busy:.0%} busy, {phase.lock_waiters:.1f} waiting on locks",
        file=sys.stderr,
    )


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _f(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _report(
    opts: argparse.Namespace,
    phases: list[Phase],
    sizes: dict[str, tuple[int, int]],
    settings: dict[str, str],
    cpu_known: bool,
) -> None:
    print(
        f"PostgreSQL {settings['server_version']}: fsync={settings['fsync']} "
        f"synchronous_commit={settings['synchronous_commit']} "
        f"full_page_writes={settings['full_page_writes']} "
        f"shared_buffers={settings['shared_buffers']}; {os.cpu_count()} cores shared with "
        f"the workers"
    )
    print(
        f"workload: 1 MiB blocks, batches of {BATCH_BLOCKS}, packs of {opts.pack_blocks}, "
        f"a reuse of stored ids every {opts.hit_every} batches, backups of "
        f"{opts.backup_blocks} blocks, {opts.containers} container(s)"
        f"; {opts.seconds:g} s "
        f"per N, medians of {opts.repeat} run(s)"
    )
    print("index after the preload (rows, table+index bytes, bytes per row):")
    for table, (rows, size) in sizes.items():
        print(f"  {table:10} {rows:10} {size:13} {size / max(1, rows):7.0f}")
    budget = opts.p99_budget_ms
    for paced in (True, False):
        group = [p for p in phases if p.paced == paced]
        if not group:
            continue
        rate = f"{opts.rate_mib_s:g} blocks/s per worker" if paced else "unpaced"
        print(f"\n{rate}")
        print(
            f"{'N':>3} {'offered':>8} {'achieved':>9} {'/worker':>8} {'%':>5} "
            f"{'pg CPU%':>8} {'pg ms/blk':>10} {'cli ms/blk':>11} {'busy%':>6} "
            f"{'lockwait':>9} {'stmt/blk':>9} {'xact/blk':>9}"
        )
        short: tuple[int, float] | None = None  # first N below 95% of the offered rate
        slow: tuple[int, list[str]] | None = None  # first N with a hot-path p99 over budget
        for n in sorted({p.workers for p in group}):
            runs = [p for p in group if p.workers == n]
            achieved = _median([p.achieved for p in runs]) or 0.0
            offered = runs[0].offered
            share = achieved / offered if offered else None
            pg_share = _median([p.pg_cpu / p.seconds if p.pg_cpu else None for p in runs])
            pg_ms = _median([p.cpu_ms_per_block() for p in runs])
            cli_ms = _median([p.client_cpu * 1000 / max(1, p.blocks) for p in runs])
            busy = _median([p.machine_busy for p in runs])
            locks = _median([p.lock_waiters for p in runs])
            stmts = _median([p.statements / p.blocks if p.statements else None for p in runs])
            xacts = _median([p.xacts / max(1, p.blocks) for p in runs])
            p99s = {c: _median([p.p(c, 0.99) for p in runs]) for c in HOT}
            over = [c for c, v in p99s.items() if v is not None and v > budget]
            if paced and short is None and (share or 0) < 0.95:
                short = (n, share or 0)
            if paced and slow is None and over:
                slow = (n, over)
            print(
                f"{n:3} {_f(offered or None, '8.0f')} {achieved:9.0f} {achieved / n:8.0f} "
                f"{_f(share * 100 if share else None, '5.0f')} "
                f"{_f(pg_share * 100 if pg_share else None, '8.0f')} {_f(pg_ms, '10.3f')} "
                f"{_f(cli_ms, '11.3f')} {_f(busy * 100 if busy else None, '6.0f')} "
                f"{_f(locks, '9.2f')} {_f(stmts, '9.2f')} {_f(xacts, '9.3f')}"
            )
        print(f"\n{'N':>3} " + " ".join(f"{c[:11]:>13}" for c in CALLS) + "   (p50/p99 ms)")
        for n in sorted({p.workers for p in group}):
            runs = [p for p in group if p.workers == n]
            cells = []
            for c in CALLS:
                p50 = _median([p.p(c, 0.5) for p in runs])
                p99 = _median([p.p(c, 0.99) for p in runs])
                cells.append(f"{_f(p50, '.1f')}/{_f(p99, '.1f')}".rjust(13))
            print(f"{n:3} " + " ".join(cells))
        if paced:
            print()
            if short is None:
                print("every N achieved >= 95% of the offered rate")
            else:
                print(f"saturates at N={short[0]}: {short[1]:.0%} of the offered rate")
            if slow is None:
                print(f"every hot-path call's p99 <= {budget:g} ms")
            else:
                print(f"p99 over {budget:g} ms from N={slow[0]}: {', '.join(slow[1])}")
    _per_block(phases)
    if not cpu_known:
        print("(PostgreSQL's CPU was not measured: its processes are not on this machine)")


def _per_block(phases: list[Phase]) -> None:
    """The database work per block, from the smallest paced phase."""
    paced = [p for p in phases if p.paced and p.statements] or [p for p in phases if p.statements]
    if not paced:
        return
    n = min(p.workers for p in paced)
    runs = [p for p in paced if p.workers == n and p.paced == paced[0].paced]
    phase = runs[len(runs) // 2]
    blocks = max(1, phase.blocks)
    calls_per_block = {c: len(v) / blocks for c, v in phase.calls.items()}
    print(f"\nper block (N={n}, {phase.blocks} blocks):")
    print(
        "  index and task calls: "
        + ", ".join(f"{c} {calls_per_block.get(c, 0):.4f}" for c in CALLS if c in calls_per_block)
    )
    t = phase.tuples
    print(
        f"  statements {(phase.statements or 0) / blocks:.3f} (BEGIN and COMMIT included), "
        f"transactions {phase.xacts / blocks:.3f}; rows inserted {t['inserted'] / blocks:.2f}, "
        f"updated {t['updated'] / blocks:.3f}, deleted {t['deleted'] / blocks:.3f}, "
        f"fetched {t['fetched'] / blocks:.2f}, returned {t['returned'] / blocks:.2f}"
    )
    w = phase.wal
    print(
        f"  WAL: {w['records'] / blocks:.1f} records, {w['fpi'] / blocks:.2f} full-page images, "
        f"{w['bytes'] / blocks:.0f} bytes, {w['syncs'] / blocks:.3f} syncs"
    )
    if phase.pg_cpu_by:
        print(
            "  PostgreSQL CPU-ms: "
            + ", ".join(f"{k} {v * 1000 / blocks:.3f}" for k, v in sorted(phase.pg_cpu_by.items()))
        )
    total_ms = sum(ms for _, _, ms, _ in phase.top)
    print(
        f"  statements' rows (returned or changed) {(phase.rows or 0) / blocks:.2f}, "
        f"execution {total_ms / blocks:.3f} ms; by calls per block (share of execution):"
    )
    for query, calls, ms, _ in phase.top[:14]:
        text = " ".join(query.split())
        print(f"  {calls / blocks:7.3f} {ms / max(1e-9, total_ms):5.0%}  {text[:96]}")


if __name__ == "__main__":
    sys.exit(main())
