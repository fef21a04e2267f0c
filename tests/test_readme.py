"""The README's quickstart and OpenStack examples, run as printed against `ashbox serve`.

Each shell line of the "With the `ashbox` command" block runs in one bash
session in the directory the service was started in (as `make serve` runs it);
then each OpenStack example, whose output must name the backups made.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def _block(heading: str, language: str) -> str:
    section = README.split(heading, 1)[1].split("\n## ", 1)[0]
    found = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert found, (heading, language)
    return found.group(1)


@pytest.mark.slow
@pytest.mark.integration
def test_the_readme_runs_as_printed(tmp_path: Path) -> None:
    port = 8776 if _free(8776) else free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASHBOX_", "OS_"))}
    env["PATH"] = f"{BIN}:{env['PATH']}"
    env["ASHBOX_URL"] = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [str(BIN / "ashbox"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_up(port)
        quickstart = _block("## With the `ashbox` command", "sh")
        lines = _commands(quickstart)
        script = "\n".join(lines[:-1]) + "\n"  # the last line is the refused delete
        done = _bash(script, tmp_path, env)
        assert done.returncode == 0, done.stdout + done.stderr
        digests = re.findall(r"^([0-9a-f]{64})  ", done.stdout, re.M)
        assert len(digests) == 2 and digests[0] == digests[1], done.stdout
        refused = _bash(lines[-1], tmp_path, env)
        assert refused.returncode != 0 and "Incremental backups exist" in refused.stderr

        port_text = str(port)
        openstack = _block("## With the OpenStack clients", "sh").replace("8776", port_text)
        for command in openstack.replace("\\\n", " ").strip().splitlines():
            shown = _bash(command, tmp_path, env)
            assert shown.returncode == 0, shown.stderr
            assert "monday" in shown.stdout and "tuesday" in shown.stdout, command
        program = _block("## With the OpenStack clients", "python").replace("8776", port_text)
        shown = subprocess.run(
            [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120
        )
        assert shown.returncode == 0, shown.stderr
        assert "monday available" in shown.stdout and "tuesday available" in shown.stdout
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
        log.close()


def _commands(block: str) -> list[str]:
    """The commands of a `$ `-prompted block: indented lines continue the one before,
    other lines are output."""
    commands: list[str] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            commands.append(line[2:])
        elif line.startswith(" ") and commands:
            commands[-1] += "\n" + line
    return commands


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _free(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
    except httpx.TransportError:
        return True
    return False


def _wait_up(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("ashbox serve did not start")
