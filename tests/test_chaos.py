"""Chaos: the split deployment under faults (issue 12, "Proof").

A PostgreSQL cluster of its own, an object store (Ceph RGW; Swift SAIO with
fewer operations), two `ashbox api` processes and four `ashbox worker`
processes on two hosts (by `worker_name`; every volume path is shared). Six
lanes, one per volume, issue their operations concurrently through both APIs:
writes to the volume, full and incremental backups, restores to new volumes,
deletes, and export/import under a new id. Meanwhile a random worker is
SIGKILLed every few seconds and started again, the object store is restarted
once and PostgreSQL once.

At the end every backup is `available` and restores to the bytes its volume
held when it was asked for, or `error` with a reason; no volume is left in a
transitional status; `repo check` finds no damage; and after a gc the store
holds exactly the packs the index calls live and the manifests of the
backups that exist: nothing is left that nothing references.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ashbox.config import load_settings
from ashbox.db.engine import Database
from ashbox.db.models import Backup, Pack
from ashbox.errors import ObjectNotFound
from ashbox.storage import StoreOptions, open_store
from ashbox.storage.base import Store
from tests.conftest import ROOMY_QUOTA_ENV, free_port
from tests.object_stores import ObjectServer, RgwServer, SwiftServer, unique_name
from tests.pg_cluster import PostgresCluster
from tests.test_processes import ASHBOX, HEADERS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BLOCK = 64 * 1024
VOLUME_BLOCKS = 64  # 4 MiB volumes
LANES = 6
BUSY = ("creating", "restoring", "deleting", "backing-up", "restoring-backup", "managing")
PATIENCE = 240.0  # seconds an operation may wait through restarts and take-overs
STORE_AT = 12.0  # seconds into the havoc when the object store restarts
DATABASE_AT = 30.0  # and PostgreSQL


@dataclass
class Deployment:
    """Two APIs and four workers (two per host) on one database and store."""

    root: Path
    env: dict[str, str]
    api_ports: list[int]
    workers: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    apis: list[subprocess.Popen[bytes]] = field(default_factory=list)
    names: tuple[str, ...] = ("host-a", "host-a", "host-b", "host-b")

    def run(self, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ASHBOX, *argv], env={**self.env, **env}, capture_output=True, text=True, timeout=600
        )

    def start(self) -> None:
        upgraded = self.run("db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        self.apis = [
            self._spawn(f"api-{n}", "api", "--port", str(p)) for n, p in enumerate(self.api_ports)
        ]
        self.workers = [None] * len(self.names)
        for n in range(len(self.names)):
            self.start_worker(n)

    def start_worker(self, n: int) -> None:
        self.workers[n] = self._spawn(f"worker-{n}", "worker", ASHBOX_WORKER_NAME=self.names[n])

    def kill_worker(self, n: int) -> None:
        proc = self.workers[n]
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        self.workers[n] = None

    def stop(self) -> None:
        procs = [p for p in (*self.apis, *self.workers) if p is not None]
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-2500:]}" for p in sorted(self.root.glob("*.log"))
        )

    def _spawn(self, log: str, *argv: str, **env: str) -> subprocess.Popen[bytes]:
        with (self.root / f"{log}.log").open("ab") as out:
            return subprocess.Popen(
                [*ASHBOX, *argv], env={**self.env, **env}, stdout=out, stderr=subprocess.STDOUT
            )


class Client:
    """Both APIs, used in turn; requests retried through outages (a restarting
    database answers 503, a dead connection raises) until PATIENCE runs out."""

    def __init__(self, ports: list[int]) -> None:
        self.http = [
            httpx.Client(base_url=f"http://127.0.0.1:{p}/v3/p1", headers=HEADERS, timeout=60)
            for p in ports
        ]
        self._turn = 0
        self._lock = threading.Lock()
        self.outages: list[str] = []  # 5xx answers seen, with their first words

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        deadline = time.monotonic() + PATIENCE
        while True:
            with self._lock:
                self._turn += 1
                http = self.http[self._turn % len(self.http)]
            try:
                r = http.request(method, path, **kw)
                if r.status_code < 500:
                    return r
                failure = f"{r.status_code} {r.text[:300]}"
                self.outages.append(f"{method} {path}: {failure[:160]}")
            except httpx.TransportError as e:
                failure = repr(e)
            assert time.monotonic() < deadline, f"{method} {path}: {failure}"
            time.sleep(0.5)

    def get(self, path: str, **kw: Any) -> Any:
        r = self.request("GET", path, **kw)
        assert r.status_code == 200, (path, r.text)
        return r.json()

    def wait(self, kind: str, resource_id: str) -> dict[str, Any]:
        """The volume or backup once it left its transitional status; {} once gone."""
        deadline = time.monotonic() + PATIENCE
        while True:
            r = self.request("GET", f"/{kind}s/{resource_id}")
            if r.status_code == 404:
                return {}
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()[kind]
            if body["status"] not in BUSY:
                return body
            assert time.monotonic() < deadline, f"{kind} {resource_id} stuck in {body['status']}"
            time.sleep(0.2)

    def create_once(self, path: str, key: str, body: dict[str, Any], name: str) -> str | None:
        """POST a create named `name`; if the answer is lost, find what it made."""
        try:
            r = self.request("POST", path, json=body)
        except AssertionError:
            r = None
        if r is not None and r.status_code in (200, 202):
            return str(r.json()[key]["id"])
        found = self.get(f"{path}/detail", params={"name": name})[f"{key}s"]
        return str(found[0]["id"]) if found else None

    def close(self) -> None:
        for http in self.http:
            http.close()


@dataclass
class Ledger:
    """What every backup must restore to, and what the lanes did."""

    expected: dict[str, str] = field(default_factory=dict)  # backup id -> digest
    rejected: list[str] = field(default_factory=list)  # requests refused with a 4xx
    restored: int = 0
    operations: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _lane(
    client: Client,
    root: Path,
    lane: int,
    ops: int,
    pool: list[bytes],
    ledger: Ledger,
    havoc_over: threading.Event,
) -> None:
    """At least `ops` operations on one volume, and more until the havoc is over."""
    rng = random.Random(lane)
    image = root / f"disk{lane}.img"
    image.write_bytes(b"".join(rng.choice(pool) for _ in range(VOLUME_BLOCKS)))
    body = {"volume": {"host": None, "ref": {"source-name": str(image)}, "name": f"v{lane}"}}
    volume_id = client.create_once("/manageable_volumes", "volume", body, f"v{lane}")
    assert volume_id is not None
    assert client.wait("volume", volume_id)["status"] == "available"
    mine: list[str] = []
    n = 0
    while n < ops or not havoc_over.is_set():
        n += 1
        with ledger.lock:
            ledger.operations += 1
        roll = rng.random()
        if roll < 0.55 or not mine:
            with image.open("r+b") as f:  # the volume changes between backups
                for _ in range(rng.randint(1, 6)):
                    f.seek(rng.randrange(VOLUME_BLOCKS) * BLOCK)
                    f.write(rng.choice(pool))
            digest = _digest(image.read_bytes())
            name = f"l{lane}-{n}"
            spec = {"volume_id": volume_id, "name": name, "incremental": bool(mine) and roll < 0.3}
            backup_id = client.create_once("/backups", "backup", {"backup": spec}, name)
            if backup_id is None:
                continue
            with ledger.lock:
                ledger.expected[backup_id] = digest
            if client.wait("backup", backup_id).get("status") == "available":
                mine.append(backup_id)
        elif roll < 0.7:
            backup_id = rng.choice(mine)
            r = client.request("POST", f"/backups/{backup_id}/restore", json={"restore": {}})
            if r.status_code != 202:
                ledger.rejected.append(f"restore {backup_id}: {r.text}")
                continue
            target = r.json()["restore"]["volume_id"]
            client.wait("backup", backup_id)
            volume = client.wait("volume", target)
            if volume.get("status") == "available":
                data = Path(volume["os-vol-ashbox-attr:path"]).read_bytes()
                assert _digest(data[: VOLUME_BLOCKS * BLOCK]) == ledger.expected[backup_id]
                with ledger.lock:
                    ledger.restored += 1
            client.request("DELETE", f"/volumes/{target}")
        elif roll < 0.85:
            backup_id = mine[-1]  # the newest has no incrementals of its own
            r = client.request("DELETE", f"/backups/{backup_id}")
            if r.status_code != 202:
                ledger.rejected.append(f"delete {backup_id}: {r.text}")
                continue
            mine.remove(backup_id)
            if client.wait("backup", backup_id) == {}:
                with ledger.lock:
                    del ledger.expected[backup_id]
        else:
            source = rng.choice(mine)
            r = client.request("GET", f"/backups/{source}/export_record")
            assert r.status_code == 200, r.text
            record = r.json()["backup-record"]
            fields = json.loads(base64.b64decode(record["backup_url"]))
            fields["id"] = new_id = str(uuid.uuid4())
            record["backup_url"] = base64.b64encode(json.dumps(fields).encode()).decode()
            r = client.request("POST", "/backups/import_record", json={"backup-record": record})
            if r.status_code != 201:
                ledger.rejected.append(f"import of {source}: {r.text}")
                continue
            with ledger.lock:
                ledger.expected[new_id] = ledger.expected[source]
            client.wait("backup", new_id)


@contextmanager
def _chaos(
    deployment: Deployment, store: ObjectServer, postgres: PostgresCluster
) -> Iterator[tuple[threading.Event, list[str]]]:
    """Kill a random worker and start it again every 2 to 4 s; restart the object store
    after STORE_AT seconds and PostgreSQL after DATABASE_AT. Yields an event set
    once both restarts are done and a few kills followed, and the log of it all."""
    over = threading.Event()
    done = threading.Event()
    events: list[str] = []

    def havoc() -> None:
        rng = random.Random(7)
        began = time.monotonic()
        while not done.wait(rng.uniform(2.0, 4.0)):
            n = rng.randrange(len(deployment.workers))
            deployment.kill_worker(n)
            deployment.start_worker(n)
            events.append(f"killed worker {n}")
            elapsed = time.monotonic() - began
            if "store" not in events and elapsed > STORE_AT:
                store.stop()
                time.sleep(1.0)
                store.start()
                events.append("store")
            if "database" not in events and elapsed > DATABASE_AT:
                postgres.stop("fast")
                time.sleep(1.0)
                postgres.start()
                events.append("database")
            if "database" in events and elapsed > DATABASE_AT + 10:
                over.set()

    thread = threading.Thread(target=havoc, daemon=True)
    thread.start()
    try:
        yield over, events
    finally:
        done.set()
        over.set()
        thread.join(120)
        for n, proc in enumerate(deployment.workers):
            if proc is None or proc.poll() is not None:
                deployment.start_worker(n)


def _run_chaos(
    tmp_path: Path,
    store_env: dict[str, str],
    store: ObjectServer,
    options: StoreOptions,
    *,
    ops_per_lane: int,
) -> None:
    postgres = PostgresCluster(free_port())
    postgres.start()
    database_url = _database(postgres)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ASHBOX_")},
        "ASHBOX_DATABASE_URL": database_url,
        "ASHBOX_DATA_DIR": str(tmp_path / "data"),
        "ASHBOX_SHARED_VOLUME_ROOTS": str(tmp_path),
        "ASHBOX_BLOCK_SIZE": str(BLOCK),
        "ASHBOX_PACK_SIZE": str(4 * BLOCK),
        "ASHBOX_POLL_SECONDS": "0.1",
        "ASHBOX_LEASE_SECONDS": "8",
        "ASHBOX_HEARTBEAT_SECONDS": "1",
        "ASHBOX_SERVICE_DOWN_SECONDS": "60",
        "ASHBOX_MAX_ATTEMPTS": "20",
        "ASHBOX_GC_INTERVAL_SECONDS": "4",
        # Above the longest upload of a worker that lost its task (docs/
        # configuration.md, gc_grace_seconds). 3 tries of 10 s each is the bound
        # per socket operation, not per upload: a store slowed down by the chaos
        # has taken longer, so dead packs wait 2 minutes (the final gc, once every
        # worker is stopped, deletes them all).
        "ASHBOX_GC_GRACE_SECONDS": "120",
        "ASHBOX_DATABASE_POOL_SIZE": "4",
        "ASHBOX_STORE_TIMEOUT_SECONDS": "10",
        "ASHBOX_STORE_RETRIES": "2",
        **ROOMY_QUOTA_ENV,
        **store_env,
    }
    deployment = Deployment(tmp_path, env, [free_port(), free_port()])
    client = Client(deployment.api_ports)
    ledger = Ledger()
    rng = random.Random(3)
    pool = [rng.randbytes(BLOCK) for _ in range(40)]
    try:
        deployment.start()
        _wait_ready(client, deployment)
        with (
            _chaos(deployment, store, postgres) as (over, events),
            ThreadPoolExecutor(LANES) as lanes,
        ):
            futures = [
                lanes.submit(_lane, client, tmp_path, n, ops_per_lane, pool, ledger, over)
                for n in range(LANES)
            ]
            for future in futures:
                future.result()
        print(f"chaos: {ledger.operations} operations; {events}")
        assert {"store", "database"} <= set(events)
        assert ledger.operations >= LANES * ops_per_lane
        _check_the_end(client, deployment, ledger, options)
    except BaseException:
        print(deployment.logs())
        raise
    finally:
        client.close()
        deployment.stop()
        postgres.remove()


def _check_the_end(
    client: Client, deployment: Deployment, ledger: Ledger, options: StoreOptions
) -> None:
    backups = client.get("/backups/detail", params={"limit": 1000})["backups"]
    for backup in backups:
        settled = client.wait("backup", backup["id"])
        assert settled.get("status") in ("available", "error", None), settled
        if settled.get("status") == "error":
            assert settled["fail_reason"], settled
    volumes = client.get("/volumes/detail", params={"limit": 1000})["volumes"]
    for volume in volumes:
        assert client.wait("volume", volume["id"]).get("status") not in BUSY
    available = [
        b["id"] for b in backups if client.wait("backup", b["id"]).get("status") == "available"
    ]
    errors = [b for b in backups if b["id"] not in available]
    # Every available backup restores to what its volume held.
    for backup_id in available:
        if backup_id not in ledger.expected:
            continue  # an import whose answer was lost: the source is checked instead
        r = client.request("POST", f"/backups/{backup_id}/restore", json={"restore": {}})
        assert r.status_code == 202, r.text
        volume = client.wait("volume", r.json()["restore"]["volume_id"])
        assert volume["status"] == "available", volume
        data = Path(volume["os-vol-ashbox-attr:path"]).read_bytes()[: VOLUME_BLOCKS * BLOCK]
        assert _digest(data) == ledger.expected[backup_id], backup_id
    unexpected = [o for o in client.outages if ": 503 " not in o]
    assert not unexpected, unexpected[:10]
    print(
        f"chaos end: {len(client.outages)} answers 503 while a part restarted; "
        f"{len(available)} available, {len(errors)} error "
        f"({[b.get('fail_reason') for b in errors]}), {ledger.restored} restores checked "
        f"during the run, {len(ledger.rejected)} refused: {ledger.rejected[:5]}"
    )
    assert len(available) >= len(backups) // 2
    # Quota usage is what the rows hold, whatever was killed when.
    usage = client.get("/os-quota-sets/p1", params={"usage": "true"})["quota_set"]
    settled = client.get("/backups/detail", params={"limit": 1000})["backups"]
    assert usage["backups"]["in_use"] == len(settled)
    assert usage["backup_gigabytes"]["in_use"] == sum(b["size"] for b in settled)
    assert usage["volumes"]["in_use"] == len(
        client.get("/volumes/detail", params={"limit": 1000})["volumes"]
    )
    defects = _defects(deployment)
    assert not defects, "\n\n".join(defects)
    # After a gc, the store holds what the index says lives, and nothing else.
    deployment.stop()
    gc = deployment.run("repo", "gc", ASHBOX_GC_GRACE_SECONDS="0")
    assert gc.returncode == 0, gc.stdout + gc.stderr
    check = deployment.run("repo", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    settings = load_settings(environ=deployment.env)
    db = Database.of(settings)
    try:
        with db.reading() as s:
            live = {p.id for p in s.query(Pack).filter(Pack.state == "live")}
            others = {p.id: p.state for p in s.query(Pack).filter(Pack.state != "live")}
            kept = {b.id for b in s.query(Backup).filter(Backup.deleted.is_(False))}
    finally:
        db.dispose()
    store = open_store(settings.resolved_store, options)
    container = settings.default_container
    # A Swift listing lags a write whose listing update timed out, until the
    # object updater sends it: the store is asked until its listing settles.
    deadline = time.monotonic() + 60
    while True:
        packs = _held(store, f"{container}/data/")
        manifests = _held(store, f"{container}/backups/")
        if (packs == live and manifests <= kept) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert packs == live, (packs - live, live - packs, others)
    assert manifests <= kept, manifests - kept
    assert {b for b in available if b in ledger.expected} <= manifests


def _held(store: Store, prefix: str) -> set[str]:
    """The names of the objects the store lists under `prefix` and still holds."""
    held = set()
    for key in store.list(prefix):
        try:
            store.size(key)
        except ObjectNotFound:
            continue
        held.add(key.rsplit("/", 1)[1])
    return held


def _defects(deployment: Deployment) -> list[str]:
    """Task failures that were not ashbox's own errors (a defect logs its traceback)."""
    found = []
    for path in sorted(deployment.root.glob("worker-*.log")):
        lines = path.read_text().splitlines()
        for n, line in enumerate(lines):
            if "task failed task_id=" in line and "reason=" not in line:
                found.append("\n".join(lines[n : n + 40]))
    return found


def _database(postgres: PostgresCluster) -> str:
    import psycopg

    name = "chaos"
    plain = postgres.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres.url}/{name}"


def _wait_ready(client: Client, deployment: Deployment) -> None:
    deadline = time.monotonic() + 60
    while True:
        services = client.get("/os-services")["services"]
        if len([s for s in services if s["state"] == "up"]) == 2:
            return
        assert time.monotonic() < deadline, deployment.logs()
        time.sleep(0.2)


def test_chaos_on_postgresql_and_ceph_rgw(rgw_server: RgwServer, tmp_path: Path) -> None:
    bucket = unique_name("chaos")
    options = rgw_server.options()
    store_env = {
        "ASHBOX_STORE": f"s3://{bucket}/ashbox",
        "ASHBOX_S3_ENDPOINT_URL": options.s3_endpoint_url,
        "ASHBOX_S3_REGION": options.s3_region,
        "ASHBOX_S3_ACCESS_KEY": options.s3_access_key,
        "ASHBOX_S3_SECRET_KEY": options.s3_secret_key,
        "ASHBOX_S3_ADDRESSING_STYLE": "path",
    }
    _run_chaos(tmp_path, store_env, rgw_server, options, ops_per_lane=17)


def test_chaos_on_postgresql_and_swift(swift_server: SwiftServer, tmp_path: Path) -> None:
    options = swift_server.options()
    store_env = {
        "ASHBOX_STORE": f"swift://{unique_name('chaos')}/ashbox",
        "ASHBOX_SWIFT_AUTH_URL": options.swift_auth_url,
        "ASHBOX_SWIFT_AUTH_VERSION": "1",
        "ASHBOX_SWIFT_USER": options.swift_user,
        "ASHBOX_SWIFT_KEY": options.swift_key,
    }
    _run_chaos(tmp_path, store_env, swift_server, options, ops_per_lane=8)
