"""The `ashbox` command against a real `ashbox serve`, as a user runs them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

MiB = 1024 * 1024

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    """The URL of an `ashbox serve` with its own data dir, stopped with Ctrl-C after."""
    yield from _serve(tmp_path, signal.SIGINT)


def _serve(tmp_path: Path, stop_signal: int, *extra: str) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASHBOX_")}
    argv = [sys.executable, "-m", "ashbox.cli", "serve", "--port", str(port),
            "--data-dir", str(tmp_path / "data"), *extra]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.send_signal(stop_signal)
        try:
            assert process.wait(timeout=30) == 0, log.read_text()
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise


def ashbox(url: str, *argv: str) -> dict[str, object]:
    """Runs `ashbox ARGV -f json` in its own process; the object it printed."""
    env = {**os.environ, "ASHBOX_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "ashbox.cli", *argv, "-f", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert isinstance(result, dict)
    return result


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_imported_volume_backed_up_and_restored_to_a_new_volume_is_identical(
    service: str, tmp_path: Path
):
    image = tmp_path / "disk.img"
    image.write_bytes(os.urandom(64 * MiB))

    volume = ashbox(service, "volume", "import", str(image), "--name", "disk", "--wait")
    assert volume["path"] == str(image)
    assert volume["status"] == "available"

    backup = ashbox(service, "backup", "create", "disk", "--name", "first", "--wait")
    assert backup["status"] == "available"
    assert backup["volume_id"] == volume["id"]

    restored = ashbox(service, "backup", "restore", str(backup["id"]), "--name", "copy", "--wait")
    assert restored["id"] != volume["id"]
    assert restored["name"] == "copy"
    assert restored["status"] == "available"
    assert sha256(Path(str(restored["path"]))) == sha256(image)


def test_serve_stops_cleanly_on_sigterm_after_stopping_its_worker(tmp_path: Path):
    served = _serve(tmp_path, signal.SIGTERM)
    url = next(served)
    assert httpx.get(url + "/v3/volumes", headers={"X-Auth-Token": "a:b"}).status_code == 200
    with pytest.raises(StopIteration):
        next(served)  # sends SIGTERM and asserts exit code 0
    log = (tmp_path / "serve.log").read_text()
    assert "stopping the worker signals=['SIGTERM']" in log
    assert "Running upgrade" in log  # the migrations are named, alembic's plugins are not
    assert "setup plugin" not in log


def test_serve_with_a_key_file_that_opens_no_key_slot_stops_at_once(tmp_path: Path):
    config = tmp_path / "ashbox.toml"
    key = tmp_path / "key"
    config.write_text(f'encryption = "aes-256-gcm"\nkey_file = "{key}"\n')
    key.write_text("the right key\n")
    served = _serve(tmp_path, signal.SIGINT, "--config", str(config))
    next(served)  # the container's repository is made at start, with this key
    with pytest.raises(StopIteration):
        next(served)
    key.write_text("another key\n")
    argv = [sys.executable, "-m", "ashbox.cli", "serve", "--port", str(_free_port()),
            "--data-dir", str(tmp_path / "data"), "--config", str(config)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASHBOX_")}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "The key given does not open repository volumebackups." in done.stderr


def quiet(url: str, *argv: str) -> None:
    """Runs `ashbox ARGV` (a command that prints nothing) and checks it succeeded."""
    env = {**os.environ, "ASHBOX_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "ashbox.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_snapshots_records_and_admin_actions_from_the_command(service: str, tmp_path: Path):
    image = tmp_path / "disk.img"
    image.write_bytes(os.urandom(8 * MiB))
    volume = ashbox(service, "volume", "import", str(image), "--name", "disk", "--wait")
    snapshot = ashbox(service, "snapshot", "create", "disk", "--name", "s1", "--wait")
    assert (snapshot["status"], snapshot["volume_id"]) == ("available", volume["id"])
    assert ashbox(service, "snapshot", "update", "s1", "--name", "s2")["name"] == "s2"
    backup = ashbox(service, "backup", "create", "disk", "--snapshot", "s2", "--wait")
    assert backup["snapshot_id"] == snapshot["id"]
    updated = ashbox(service, "backup", "update", str(backup["id"]), "--name", "b1",
                     "--metadata", "k=v")  # fmt: skip
    assert (updated["name"], updated["metadata"]) == ("b1", {"k": "v"})
    record = ashbox(service, "backup", "export", "b1")
    assert str(record["backup_service"]).startswith("cinder.backup.drivers")
    fields = json.loads(base64.b64decode(str(record["backup_url"])))
    fields["id"] = str(uuid.uuid4())
    url = base64.b64encode(json.dumps(fields).encode()).decode()
    imported = ashbox(service, "backup", "import", str(record["backup_service"]), url, "--wait")
    assert (imported["id"], imported["status"]) == (fields["id"], "available")
    quiet(service, "backup", "reset-status", str(backup["id"]), "--state", "error")
    assert ashbox(service, "backup", "show", str(backup["id"]))["status"] == "error"
    quiet(service, "backup", "force-delete", str(backup["id"]), "--wait")
    restored = ashbox(service, "backup", "restore", fields["id"], "--name", "copy", "--wait")
    assert sha256(Path(str(restored["path"]))) == sha256(image)
    quiet(service, "volume", "reset-status", "copy", "--state", "error")
    assert ashbox(service, "volume", "show", "copy")["status"] == "error"
    quiet(service, "snapshot", "reset-status", "s2", "--state", "error")
    quiet(service, "snapshot", "delete", "s2")


def test_quotas_from_the_command_and_a_backup_over_quota_refused(service: str, tmp_path: Path):
    image = tmp_path / "disk.img"
    image.write_bytes(os.urandom(4 * MiB))
    ashbox(service, "volume", "import", str(image), "--name", "disk", "--wait")
    ashbox(service, "backup", "create", "disk", "--wait")
    env = {**os.environ, "ASHBOX_URL": service}
    run = [sys.executable, "-m", "ashbox.cli"]
    done = subprocess.run([*run, "quota", "update", "admin", "--backups", "1", "-f", "json"],
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert {"resource": "backups", "limit": 1} in json.loads(done.stdout)
    done = subprocess.run([*run, "backup", "create", "disk"],
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 5, done.stderr  # refused
    assert "Maximum number of backups allowed (1) exceeded" in done.stderr
    done = subprocess.run([*run, "quota", "show", "admin", "-f", "json"],
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    shown = {row["resource"]: row for row in json.loads(done.stdout)}
    assert (shown["backups"]["limit"], shown["backups"]["in_use"]) == (1, 1)
    limits = ashbox(service, "limits")
    assert (limits["maxTotalBackups"], limits["totalBackupsUsed"]) == (1, 1)
    quiet(service, "quota", "delete", "admin")
    assert ashbox(service, "limits")["maxTotalBackups"] == 10
