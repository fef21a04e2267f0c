"""The split deployment: `ashbox db upgrade` once, then `ashbox api` and two
`ashbox worker` processes on one PostgreSQL database and one store.

Neither the API nor a worker migrates: against an empty or older schema they
refuse to start with the command to run. Then a backup, an incremental and a
restore go through the API and are run by the workers, and the restored bytes
are the volume's.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOMY_QUOTA_ENV, _fresh_postgres_database, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ASHBOX = [sys.executable, "-m", "ashbox.cli"]
HEADERS = {"X-Auth-Token": "u1:p1", "X-Ashbox-Extras": "true"}


def _env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASHBOX_")}
    return {
        **env,
        "ASHBOX_DATABASE_URL": database_url,
        "ASHBOX_DATA_DIR": str(data_dir),
        "ASHBOX_POLL_SECONDS": "0.1",
        "ASHBOX_DATABASE_POOL_SIZE": "3",
        **ROOMY_QUOTA_ENV,
        **extra,
    }


def _run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ASHBOX, *argv], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@contextmanager
def _process(env: dict[str, str], log: Path, *argv: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen([*ASHBOX, *argv], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(60) == 0, log.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()


def _wait(http: httpx.Client, path: str, key: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body: dict[str, Any] = http.get(path).json()[key]
        if body["status"] not in ("creating", "restoring", "deleting", "backing-up",
                                  "restoring-backup"):  # fmt: skip
            return body
        time.sleep(0.05)
    raise TimeoutError(path)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_api_and_workers_as_separate_processes_on_postgresql(
    postgres_server: str, tmp_path: Path
) -> None:
    database_url = _fresh_postgres_database(postgres_server)
    data_dir = tmp_path / "data"
    # One machine plays both hosts: the image and the volumes are where both reach.
    env = _env(database_url, data_dir, ASHBOX_SHARED_VOLUME_ROOTS=str(tmp_path))
    port = free_port()

    for command in (["api", "--port", str(port)], ["worker"]):
        refused = _run(env, *command)
        assert refused.returncode == 2, refused.stderr
        assert "run `ashbox db upgrade`" in refused.stderr
    upgraded = _run(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "upgraded from (empty) to" in upgraded.stdout
    again = _run(env, "db", "upgrade")
    assert "already at revision" in again.stdout

    url = f"http://127.0.0.1:{port}"
    worker_a = {**env, "ASHBOX_WORKER_NAME": "host-a"}
    worker_b = {**env, "ASHBOX_WORKER_NAME": "host-b"}
    with (
        _process(env, tmp_path / "api.log", "api", "--port", str(port)),
        _process(worker_a, tmp_path / "worker-a.log", "worker"),
        _process(worker_b, tmp_path / "worker-b.log", "worker"),
        httpx.Client(base_url=f"{url}/v3", headers=HEADERS, timeout=30) as http,
    ):
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthcheck", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, (tmp_path / "api.log").read_text()
                time.sleep(0.1)
        image = tmp_path / "disk.img"
        with image.open("wb") as f:
            f.truncate(64 << 20)
            f.write(os.urandom(3 << 20))
        body = {"volume": {"ref": {"source-name": str(image)}, "name": "disk"}}
        volume = http.post("/manageable_volumes", json=body).json()["volume"]
        assert _wait(http, f"/volumes/{volume['id']}", "volume")["status"] == "available"

        full = http.post("/backups", json={"backup": {"volume_id": volume["id"]}}).json()
        done = _wait(http, f"/backups/{full['backup']['id']}", "backup")
        assert done["status"] == "available", done
        with image.open("r+b") as f:
            f.seek(40 << 20)
            f.write(os.urandom(1 << 20))
        body = {"backup": {"volume_id": volume["id"], "incremental": True}}
        incremental = http.post("/backups", json=body).json()["backup"]
        done = _wait(http, f"/backups/{incremental['id']}", "backup")
        assert done["status"] == "available" and done["is_incremental"], done

        restore = http.post(f"/backups/{incremental['id']}/restore", json={"restore": {}})
        target = restore.json()["restore"]["volume_id"]
        restored = _wait(http, f"/volumes/{target}", "volume")
        assert restored["status"] == "available", restored
        assert _sha(Path(restored["os-vol-ashbox-attr:path"])) == _sha(image)

    logs = [(tmp_path / f"worker-{n}.log").read_text() for n in "ab"]
    assert any("task claimed" in log for log in logs)
    api_log = (tmp_path / "api.log").read_text()
    assert "worker=none" in api_log and "task claimed" not in api_log
