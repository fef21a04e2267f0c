"""`ashbox serve` in a subprocess (or the split deployment: `ashbox api` and two
`ashbox worker` processes), and a small HTTP client for its Cinder API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOMY_QUOTA_ENV, free_port

ADMIN = {
    "X-Auth-Token": "u1:p1",
    "OpenStack-API-Version": "volume 3.64",
    "X-Ashbox-Extras": "true",
}


class Server:
    """A running `ashbox serve`; `restart()` after `kill()` resumes on the same state.
    With `split`, `ashbox db upgrade` then `ashbox api` and two `ashbox worker`
    processes (hosts `host-a` and `host-b`, which share every volume path) in its place."""

    def __init__(self, data_dir: Path, database_url: str, *, split: bool = False, **env: str):
        self.split = split
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Dead packs go at once (no grace period), so tests can see the store empty.
        self.env = {
            **os.environ,
            "ASHBOX_DATABASE_URL": database_url,
            "ASHBOX_GC_GRACE_SECONDS": "0",
            **ROOMY_QUOTA_ENV,
            **env,
        }
        if split:
            self.env["ASHBOX_SHARED_VOLUME_ROOTS"] = "/"
            self.env["ASHBOX_DATA_DIR"] = str(data_dir)
        self.log = data_dir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.http = httpx.Client(base_url=self.url + "/v3", headers=ADMIN, timeout=30)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.split:
            self.proc = self._spawn(
                "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)
            )
        else:
            upgraded = subprocess.run(
                [sys.executable, "-m", "ashbox.cli.main", "db", "upgrade"],
                env=self.env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert upgraded.returncode == 0, upgraded.stderr
            self.proc = self._spawn("api", "--port", str(self.port))
            self.workers = [
                self._spawn("worker", ASHBOX_WORKER_NAME=name) for name in ("host-a", "host-b")
            ]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthcheck", timeout=1).status_code == 200 and (
                    self._workers_up()
                ):
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"ashbox serve did not start:\n{self.log.read_text()[-3000:]}")

    def _workers_up(self) -> bool:
        """Whether every worker process reported its service (split only)."""
        if not self.split:
            return True
        services: list[dict[str, Any]] = self.http.get("/os-services").json()["services"]
        up = [s for s in services if s["state"] == "up"]
        return len(up) == len(self.workers)

    def _spawn(self, *argv: str, **env: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "ashbox.cli.main", *argv],
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        for proc in self._processes():
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def halt(self) -> None:
        """Stop the processes as Ctrl-C does; `start()` may follow."""
        for proc in self._processes():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self._processes():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _processes(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in (self.proc, *self.workers) if p is not None]

    def stop(self) -> None:
        self.halt()
        self.http.close()

    # --- the API, as a user's script would call it -------------------------------

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = self.http.request(method, path, json=body)
        assert response.status_code == expect, (response.status_code, response.text)
        return response.json() if response.content else None

    def import_volume(self, path: Path) -> dict[str, Any]:
        """Manage `path` as a volume; the volume once its worker took it."""
        body = {"volume": {"host": None, "ref": {"source-name": str(path)}, "name": path.name}}
        volume = self.call("POST", "/manageable_volumes", body, 202)["volume"]
        return self.wait_volume(volume["id"])

    def wait_volume(self, volume_id: str, timeout: float = 300) -> dict[str, Any]:
        """The volume once it leaves a transitional status; {} once deleted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.http.get(f"/volumes/{volume_id}")
            if response.status_code == 404:
                return {}
            volume: dict[str, Any] = response.json()["volume"]
            if volume["status"] not in ("creating", "backing-up", "restoring-backup", "deleting"):
                return volume
            time.sleep(0.05)
        raise TimeoutError(f"volume {volume_id} still busy after {timeout}s")

    def volume(self, volume_id: str) -> dict[str, Any]:
        return self.call("GET", f"/volumes/{volume_id}")["volume"]  # type: ignore[no-any-return]

    def backup(self, backup_id: str) -> dict[str, Any]:
        return self.call("GET", f"/backups/{backup_id}")["backup"]  # type: ignore[no-any-return]

    def create_backup(self, volume_id: str, **fields: Any) -> str:
        body = {"backup": {"volume_id": volume_id, **fields}}
        return self.call("POST", "/backups", body, 202)["backup"]["id"]  # type: ignore[no-any-return]

    def restore(self, backup_id: str, volume_id: str | None = None) -> str:
        body = {"restore": {"volume_id": volume_id, "name": None}}
        restore = self.call("POST", f"/backups/{backup_id}/restore", body, 202)["restore"]
        return restore["volume_id"]  # type: ignore[no-any-return]

    def wait_backup(self, backup_id: str, timeout: float = 300) -> dict[str, Any]:
        """The backup once it leaves creating/restoring/deleting; {} once deleted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.http.get(f"/backups/{backup_id}")
            if response.status_code == 404:
                return {}
            backup: dict[str, Any] = response.json()["backup"]
            if backup["status"] not in ("creating", "restoring", "deleting"):
                return backup
            time.sleep(0.1)
        raise TimeoutError(f"backup {backup_id} still busy after {timeout}s")

    def path_of(self, volume_id: str) -> Path:
        return Path(self.volume(volume_id)["os-vol-ashbox-attr:path"])
