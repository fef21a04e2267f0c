"""SIGKILL at every fault point of create, restore, delete and the volume tasks,
then a restart: the states are those of docs/states.md, nothing is lost, no
backup that succeeded turns to error, restores are byte-identical, and the
store holds nothing that nothing references. On SQLite and PostgreSQL.

Each case sets up its state on a clean run of `ashbox serve`, restarts it with
`ASHBOX_FAULT=<point>:<n>` (the process kills itself the n-th time it passes
the point), asks for one operation, waits for the process to die, and
restarts it without the fault.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ashbox import faults
from tests.server import Server
from tests.test_acceptance import assert_no_orphans, mixed_image, pack_files, sha256

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MiB = 1 << 20
SMALL = {"ASHBOX_BLOCK_SIZE": str(64 * 1024), "ASHBOX_PACK_SIZE": str(MiB)}


@dataclass
class World:
    server: Server
    image: Path
    volume: str = ""
    backup: str = ""


def _with_backup(w: World) -> None:
    w.volume = w.server.import_volume(w.image)["id"]
    w.backup = w.server.create_backup(w.volume)
    assert w.server.wait_backup(w.backup)["status"] == "available"


def _with_volume(w: World) -> None:
    w.volume = w.server.import_volume(w.image)["id"]


def _asked(w: World, call: Callable[[], Any]) -> Any:
    """The answer to a request whose answer the kill may cut off (a worker of the
    same process may reach the point before the answer is written): None then."""
    try:
        return call()
    except httpx.TransportError:
        return None


def _named(w: World, kind: str, name: str) -> str:
    """The id of the one `kind` (backups, volumes, snapshots) named `name`."""
    listed = w.server.call("GET", f"/{kind}/detail")[kind]
    return str(next(item["id"] for item in listed if item["name"] == name))


def _create(w: World) -> None:
    _asked(w, lambda: w.server.create_backup(w.volume, name="fault-op"))


def _created(w: World) -> None:
    w.backup = _named(w, "backups", "fault-op")
    assert w.server.wait_backup(w.backup)["status"] == "available"
    assert w.server.wait_volume(w.volume)["status"] == "available"
    target = w.server.restore(w.backup)
    assert w.server.wait_backup(w.backup)["status"] == "available"
    assert w.server.wait_volume(target)["status"] == "available"
    assert sha256(w.server.path_of(target)) == sha256(w.image)


def _created_and_told(w: World) -> None:
    """Created, and each of its notifications sent: the one cut off again after the restart."""
    _created(w)
    told = {"backup.create.start", "backup.createprogress", "backup.create.end"}
    deadline = time.monotonic() + 30
    while True:
        lines = w.server.log.read_text(errors="replace").splitlines()
        sent = {
            line.split("notification ", 1)[1].split()[0]
            for line in lines
            if "notification backup." in line and w.backup in line
        }
        if told <= sent or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert told <= sent, sent


def _restore(w: World) -> None:
    body = {"restore": {"volume_id": None, "name": "fault-target"}}
    _asked(w, lambda: w.server.call("POST", f"/backups/{w.backup}/restore", body, 202))


def _restored(w: World) -> None:
    w.volume = _named(w, "volumes", "fault-target")
    assert w.server.wait_backup(w.backup)["status"] == "available"
    volume = w.server.wait_volume(w.volume)
    assert volume["status"] == "available"
    assert volume["metadata"]["src_backup_id"] == w.backup
    assert sha256(w.server.path_of(w.volume)) == sha256(w.image)


def _delete(w: World) -> None:
    _asked(w, lambda: w.server.call("DELETE", f"/backups/{w.backup}", expect=202))


def _deleted(w: World) -> None:
    assert w.server.wait_backup(w.backup) == {}
    assert pack_files(w.server) == []
    assert not list((w.server.data_dir / "store").rglob("backups/*"))


def _fail_create(w: World) -> None:
    w.image.unlink()
    _asked(w, lambda: w.server.create_backup(w.volume, name="fault-op"))


def _failed(w: World) -> None:
    w.backup = _named(w, "backups", "fault-op")
    failed = w.server.wait_backup(w.backup)
    assert failed["status"] == "error" and failed["fail_reason"]
    assert w.server.wait_volume(w.volume)["status"] == "available"


def _create_volume(w: World) -> None:
    body = {"volume": {"size": 1, "name": "fresh"}}
    _asked(w, lambda: w.server.call("POST", "/volumes", body, 202))


def _volume_created(w: World) -> None:
    w.volume = _named(w, "volumes", "fresh")
    volume = w.server.wait_volume(w.volume)
    assert volume["status"] == "available"
    assert w.server.path_of(w.volume).stat().st_size == 1 << 30


def _delete_volume(w: World) -> None:
    body = {"volume": {"size": 1, "name": "doomed"}}
    w.volume = w.server.call("POST", "/volumes", body, 202)["volume"]["id"]
    assert w.server.wait_volume(w.volume)["status"] == "available"
    w.image = w.server.path_of(w.volume)  # the file that must go
    _asked(w, lambda: w.server.call("DELETE", f"/volumes/{w.volume}", expect=202))


def _volume_deleted(w: World) -> None:
    assert w.server.wait_volume(w.volume) == {}
    assert not w.image.exists()


def _wait_snapshot(w: World, snapshot_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = w.server.http.get(f"/snapshots/{snapshot_id}")
        if r.status_code == 404:
            return {}
        snapshot: dict[str, Any] = r.json()["snapshot"]
        if snapshot["status"] not in ("creating", "deleting"):
            return snapshot
        time.sleep(0.05)
    raise TimeoutError(snapshot_id)


def _create_snapshot(w: World) -> None:
    body = {"snapshot": {"volume_id": w.volume, "name": "fault-snap"}}
    _asked(w, lambda: w.server.call("POST", "/snapshots", body, 202))


def _snapshot_created(w: World) -> None:
    w.backup = _named(w, "snapshots", "fault-snap")
    assert _wait_snapshot(w, w.backup)["status"] == "available"
    snapshots = w.server.data_dir / "volumes"
    assert sha256(snapshots / f"snapshot-{w.backup}.raw") == sha256(w.image)
    assert not list(snapshots.glob("*.partial"))


def _delete_snapshot(w: World) -> None:
    body = {"snapshot": {"volume_id": w.volume, "name": "fault-snap"}}
    w.backup = w.server.call("POST", "/snapshots", body, 202)["snapshot"]["id"]
    assert _wait_snapshot(w, w.backup)["status"] == "available"
    _asked(w, lambda: w.server.call("DELETE", f"/snapshots/{w.backup}", expect=202))


def _snapshot_deleted(w: World) -> None:
    assert _wait_snapshot(w, w.backup) == {}
    assert not list((w.server.data_dir / "volumes").glob("snapshot-*"))


def _import_copy(w: World) -> None:
    """Import the backup's record under a new id (kept in `w.volume`)."""
    record = w.server.call("GET", f"/backups/{w.backup}/export_record")["backup-record"]
    fields = json.loads(base64.b64decode(record["backup_url"]))
    fields["id"] = w.volume = str(uuid.uuid4())
    record["backup_url"] = base64.b64encode(json.dumps(fields).encode()).decode()
    body = {"backup-record": record}
    _asked(w, lambda: w.server.call("POST", "/backups/import_record", body, 201))


def _imported(w: World) -> None:
    assert w.server.wait_backup(w.volume)["status"] == "available"
    w.server.call("DELETE", f"/backups/{w.backup}", expect=202)
    assert w.server.wait_backup(w.backup) == {}
    target = w.server.restore(w.volume)
    assert w.server.wait_backup(w.volume)["status"] == "available"
    assert w.server.wait_volume(target)["status"] == "available"
    assert sha256(w.server.path_of(target)) == sha256(w.image)


Step = Callable[[World], None]
# (fault point, set-up, operation, check)
CASES: list[tuple[str, Step, Step, Step]] = [
    ("task.claimed", _with_volume, _create, _created),
    ("create.placed", _with_volume, _create, _created),
    ("create.pack_committed", _with_volume, _create, _created),
    ("create.manifest_written", _with_volume, _create, _created),
    ("create.data_written", _with_volume, _create, _created),
    ("task.ended", _with_volume, _create, _created),
    ("notify.sent", _with_volume, _create, _created_and_told),
    ("create.failed", _with_volume, _fail_create, _failed),
    ("restore.started", _with_backup, _restore, _restored),
    ("restore.data_written", _with_backup, _restore, _restored),
    ("delete.refs_released", _with_backup, _delete, _deleted),
    ("gc.packs_deleted", _with_backup, _delete, _deleted),
    ("delete.data_deleted", _with_backup, _delete, _deleted),
    ("volume.file_created", lambda w: None, _create_volume, _volume_created),
    ("volume.file_removed", lambda w: None, _delete_volume, _volume_deleted),
    ("import.referenced", _with_backup, _import_copy, _imported),
    ("snapshot.file_created", _with_volume, _create_snapshot, _snapshot_created),
    ("snapshot.file_removed", _with_volume, _delete_snapshot, _snapshot_deleted),
]


def _assert_usage_is_the_rows(server: Server) -> None:
    """The quota usage the API reports equals what its backup and volume lists hold."""
    usage = server.call("GET", "/os-quota-sets/p1?usage=true")["quota_set"]
    backups = server.call("GET", "/backups/detail")["backups"]
    volumes = server.call("GET", "/volumes/detail")["volumes"]
    assert usage["backups"]["in_use"] == len(backups)
    assert usage["backup_gigabytes"]["in_use"] == sum(b["size"] for b in backups)
    assert usage["volumes"]["in_use"] == len(volumes)


def test_every_fault_point_has_a_case() -> None:
    assert {point for point, *_ in CASES} == faults.POINTS


@pytest.mark.parametrize(("point", "setup", "operation", "check"), CASES, ids=[c[0] for c in CASES])
def test_a_kill_at_a_fault_point_is_recovered(
    tmp_path: Path, database_url: str, point: str, setup: Step, operation: Step, check: Step
) -> None:
    image = mixed_image(tmp_path / "v.raw", 6 * MiB, seed=3)
    server = Server(tmp_path / "data", database_url, **SMALL)
    world = World(server, image)
    server.start()
    try:
        setup(world)
        server.halt()
        server.env["ASHBOX_FAULT"] = f"{point}:1"
        server.start()
        operation(world)
        assert server.proc is not None
        try:
            server.proc.wait(60)
        except Exception:
            pytest.fail(f"the process never passed {point}")
        del server.env["ASHBOX_FAULT"]
        server.start()
        check(world)
        _assert_usage_is_the_rows(server)
        deadline = time.monotonic() + 30
        while True:  # the last tasks may still be ending: orphans are judged at rest
            try:
                assert_no_orphans(server, database_url)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        server.stop()
