"""GC with many writers: three `ashbox worker` processes on one PostgreSQL and
one store, each queueing a gc every second, while backups reuse each other's
blocks and deletes free them. Exactly one gc runs at a time (the deployment's
gc lock), and no interleaving loses a block a backup needs: at the end every
available backup restores to the bytes its volume held, and `repo check`
finds nothing missing."""

from __future__ import annotations

import hashlib
import random
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from ashbox.backups.service import Service
from ashbox.config import load_settings
from ashbox.containers import open_repository
from ashbox.db.engine import Database
from ashbox.errors import InvalidBackupState
from ashbox.policy import with_implied_roles
from ashbox.records import ListQuery, RequestContext
from ashbox.repository.check import check_repository
from ashbox.statuses import BackupStatus
from ashbox.storage import open_store
from tests.conftest import _fresh_postgres_database
from tests.test_processes import _env, _process, _run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BLOCK = 64 * 1024
VOLUME_BLOCKS = 48  # 3 MiB volumes
SECONDS = 25.0
WORKERS = ("host-a", "host-b", "host-c")
BUSY_VOLUME = ("creating", "restoring-backup", "backing-up", "deleting")


def _write(path: Path, pool: list[bytes], rng: random.Random, share: float = 1.0) -> str:
    """Overwrite a share of the volume's blocks with blocks of the pool, and its
    first block with one no other write has: a backup taken now holds one block
    of its own, which gc frees once the backup is deleted. Its digest."""
    with path.open("r+b") as f:
        for n in range(1, VOLUME_BLOCKS):
            if rng.random() < share:
                f.seek(n * BLOCK)
                f.write(rng.choice(pool))
        f.seek(0)
        f.write(rng.randbytes(BLOCK))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_gc_in_three_worker_processes_never_loses_a_block_a_backup_needs(
    postgres_server: str, tmp_path: Path
) -> None:
    rng = random.Random(12)
    database_url = _fresh_postgres_database(postgres_server)
    env = _env(
        database_url,
        tmp_path / "data",
        ASHBOX_SHARED_VOLUME_ROOTS=str(tmp_path),
        ASHBOX_BLOCK_SIZE=str(BLOCK),
        ASHBOX_PACK_SIZE=str(4 * BLOCK),
        ASHBOX_GC_INTERVAL_SECONDS="1",
        ASHBOX_GC_GRACE_SECONDS="0.5",
        ASHBOX_GC_REPACK_LIVE_FRACTION="0.6",
        ASHBOX_MAX_CONCURRENT_OPERATIONS="0",
        ASHBOX_POLL_SECONDS="0.05",
    )
    assert _run(env, "db", "upgrade").returncode == 0
    settings = load_settings(environ=env)
    db = Database.of(settings)
    service = Service(db, settings)
    ctx = RequestContext(
        user_id="u1", project_id="p1", is_admin=True, roles=with_implied_roles(["admin"])
    )
    pool = [rng.randbytes(BLOCK) for _ in range(24)]
    volumes: dict[str, Path] = {}
    digests: dict[str, str] = {}  # volume id -> its bytes' digest now
    expected: dict[str, str] = {}  # backup id -> the digest it must restore to

    with ExitStack() as processes:
        processes.callback(db.dispose)
        for name in WORKERS:
            worker_env = {**env, "ASHBOX_WORKER_NAME": name}
            processes.enter_context(_process(worker_env, tmp_path / f"{name}.log", "worker"))
        _wait_for_services(service, ctx)
        for n in range(4):
            path = tmp_path / f"disk{n}.img"
            path.write_bytes(b"\0" * BLOCK * VOLUME_BLOCKS)
            volume = service.import_volume(ctx, path=str(path), name=f"disk{n}")
            volumes[volume.id] = path
            digests[volume.id] = _write(path, pool, rng)
        _settle(service, ctx, [])

        deadline = time.monotonic() + SECONDS
        creating: dict[str, str] = {}  # backup id -> its volume's id
        deleting: list[str] = []
        while time.monotonic() < deadline:
            creating = {b: v for b, v in creating.items() if _busy(service, ctx, b)}
            idle = [v for v in volumes if v not in creating.values()]
            roll = rng.random()
            if roll < 0.5 and idle:
                volume_id = rng.choice(idle)
                digests[volume_id] = _write(volumes[volume_id], pool, rng, share=0.2)
                incremental = rng.random() < 0.6 and _has_backup(service, ctx, expected, volume_id)
                backup = service.create_backup(ctx, volume_id=volume_id, incremental=incremental)
                expected[backup.id] = digests[volume_id]
                creating[backup.id] = volume_id
            elif roll < 0.8 and expected:
                victim = rng.choice(list(expected))
                if service.get_backup(ctx, victim).status == BackupStatus.AVAILABLE:
                    try:
                        service.delete_backup(ctx, victim)
                    except InvalidBackupState:  # it has incrementals
                        continue
                    del expected[victim]
                    deleting.append(victim)
            time.sleep(0.05)
        _settle(service, ctx, deleting)
        _settle(service, ctx, list(expected))

        # Every backup restores to what its volume held when it was taken.
        for backup_id, digest in expected.items():
            backup = service.get_backup(ctx, backup_id)
            assert backup.status == BackupStatus.AVAILABLE, backup
            restore = service.restore_backup(ctx, backup_id)
            _settle(service, ctx, [backup_id])
            restored = service.get_volume(ctx, restore.volume_id)
            assert restored.status == "available", restored
            data = Path(restored.path).read_bytes()[: BLOCK * VOLUME_BLOCKS]
            assert hashlib.sha256(data).hexdigest() == digest, backup_id

        store = open_store(settings.resolved_store)
        repo = open_repository(settings, store, db, settings.default_container)
        report = check_repository(repo)
        assert not report.damages, report.damages
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in WORKERS}
    ran = [name for name, log in logs.items() if "gc done" in log]
    assert len(ran) >= 2, "gc ran in fewer than two of the workers"
    gcs = [
        line
        for log in logs.values()
        for line in log.splitlines()
        if "repository.gc: gc done" in line
    ]
    freeing = [line for line in gcs if "deleted=0" not in line or "repacked=0" not in line]
    print(f"{len(expected)} backups kept, {len(gcs)} gc runs, {len(freeing)} freed or repacked")
    assert freeing, "no gc found anything to free while the backups ran"
    assert len(expected) >= 5


def _has_backup(
    service: Service, ctx: RequestContext, backups: dict[str, str], volume_id: str
) -> bool:
    return any(service.get_backup(ctx, b).volume_id == volume_id for b in backups)


def _busy(service: Service, ctx: RequestContext, backup_id: str) -> bool:
    try:
        return service.get_backup(ctx, backup_id).status in ("creating", "deleting", "restoring")
    except Exception:
        return False  # deleted


def _settle(service: Service, ctx: RequestContext, backup_ids: list[str]) -> None:
    deadline = time.monotonic() + 120
    while any(_busy(service, ctx, b) for b in backup_ids) or any(
        v.status in BUSY_VOLUME for v in service.list_volumes(ctx, ListQuery(limit=1000))[0]
    ):
        assert time.monotonic() < deadline, "work did not settle"
        time.sleep(0.1)


def _wait_for_services(service: Service, ctx: RequestContext) -> None:
    deadline = time.monotonic() + 30
    while len([s for s in service.list_services(ctx) if s.up]) < len(WORKERS):
        assert time.monotonic() < deadline, "the workers did not report"
        time.sleep(0.1)
