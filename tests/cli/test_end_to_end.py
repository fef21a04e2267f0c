"""The `ashbox` command against a real `ashbox serve`, as a user runs them."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
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
