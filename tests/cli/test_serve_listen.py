"""`ashbox serve` and its socket: a taken port stops it before anything starts, and
TLS with static tokens serves HTTPS that the `ashbox` command reaches."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ashbox.cli.exit_codes import ExitCode
from ashbox.tokens import add_token
from tests.certs import self_signed
from tests.conftest import free_port

pytestmark = pytest.mark.integration


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASHBOX_")}
    return {**env, **extra}


def _serve_argv(port: int, data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "ashbox.cli", "serve", "--port", str(port),
            "--data-dir", str(data_dir)]  # fmt: skip


def test_a_taken_port_exits_7_before_the_worker_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            _serve_argv(port, tmp_path / "data"),
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == ExitCode.CANNOT_LISTEN, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "worker started" not in done.stderr
    assert not (tmp_path / "data" / "ashbox.db").exists()  # nothing was started


def test_tls_with_static_tokens_serves_https_to_the_cli(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tokens = tmp_path / "tokens.toml"
    token = add_token(tokens, "alice", "p1", ["member"])
    port = free_port()
    env = _env(
        ASHBOX_AUTH_STRATEGY="token",
        ASHBOX_TOKENS_FILE=str(tokens),
        ASHBOX_TLS_CERT=str(cert),
        ASHBOX_TLS_KEY=str(key),
    )
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        _serve_argv(port, tmp_path / "data"), env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"https://127.0.0.1:{port}"
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 30
        while True:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                httpx.get(url + "/healthcheck", verify=trusted, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        r = httpx.get(url + "/v3/backups", headers={"X-Auth-Token": token}, verify=trusted)
        assert r.status_code == 200 and r.json() == {"backups": []}
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/v3/backups", timeout=5)  # no plain HTTP
        cli = [sys.executable, "-m", "ashbox.cli", "--url", url]
        listed = subprocess.run(
            [*cli, "--token", token, "backup", "list", "-f", "json"],
            env={**_env(), "SSL_CERT_FILE": str(cert)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.strip() == "[]"
        refused = subprocess.run(
            [*cli, "--token", "wrong", "backup", "list"],
            env={**_env(), "SSL_CERT_FILE": str(cert)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == ExitCode.USAGE, refused.stderr
    finally:
        serve.terminate()
        serve.wait(30)
        log.close()


def test_a_certificate_that_cannot_be_loaded_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    env = _env(ASHBOX_TLS_CERT=str(tmp_path / "cert.pem"), ASHBOX_TLS_KEY=str(tmp_path / "key.pem"))
    done = subprocess.run(
        _serve_argv(free_port(), tmp_path / "data"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "Cannot use tls_cert/tls_key" in done.stderr
    assert "worker started" not in done.stderr
