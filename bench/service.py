"""What the benches time: `ashbox serve` driven through the CLI, and plain commands.

A step of the service costs the wall time of its CLI command, the service
process's CPU seconds (utime + stime of all its threads, /proc/<pid>/stat) and
its peak RSS during the step (VmHWM, reset before the step through clear_refs).
A command's peak RSS is measured by /usr/bin/time when it is installed: a
forked child's own ru_maxrss would count the bench's pages from before exec.
"""

from __future__ import annotations

import compileall
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from ashbox.storage.base import Store

KiB = 1024
CONTAINER = "volumebackups"


class BenchError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Measure:
    wall: float
    cpu: float | None = None
    rss: int | None = None  # bytes
    stored: int | None = None  # bytes
    requests: int | None = None  # store requests the service made during the step
    store_cpu: float | None = None  # CPU seconds of the object store's processes


def run_command(
    argv: Sequence[str],
    *,
    stdout: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Measure:
    """Wall time, CPU seconds and peak RSS of one command; its stdout goes to
    `stdout` (else /dev/null), its stderr to ours only if it fails."""
    if shutil.which(argv[0]) is None:
        raise BenchError(f"{argv[0]} is not installed")
    timer = shutil.which("time", path="/usr/bin")
    with tempfile.NamedTemporaryFile(prefix="bench-time-") as report:
        full = [timer, "-q", "-f", "%M", "-o", report.name, *argv] if timer else list(argv)
        with open(stdout or os.devnull, "wb") as out:
            cpu_before = _children_cpu()
            started = time.monotonic()
            process = subprocess.Popen(
                full,
                stdout=out,
                stderr=subprocess.PIPE,
                env=None if env is None else dict(env),
                cwd=cwd,
            )
            _, err = process.communicate()
            wall = time.monotonic() - started
            cpu = _children_cpu() - cpu_before
        lines = Path(report.name).read_text().split() if timer else []
        rss = int(lines[-1]) * KiB if lines and lines[-1].isdigit() else None
    if process.returncode:
        raise BenchError(
            f"{' '.join(argv)} exited {process.returncode}: {err.decode(errors='replace')[-2000:]}"
        )
    return Measure(wall, cpu, rss)


def _children_cpu() -> float:
    """CPU seconds of every waited-for child (and its waited-for children) so far."""
    t = os.times()
    return t.children_user + t.children_system


class Service:
    """`ashbox serve` in a subprocess on a free loopback port, and the CLI against it."""

    def __init__(
        self, data_dir: Path, log: Path, *, config: Path | None = None, store: Store | None = None
    ) -> None:
        """`store`: the service's store when it is not the local `file://` one."""
        self.store = store
        self.data_dir = data_dir
        self.log = log
        self.config = config
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ashbox = ashbox_command()
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Service:
        byte_compile_ashbox()
        argv = [*self.ashbox, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASHBOX_")}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"ashbox serve exited {self.process.returncode}: {self._tail()}")
            try:
                httpx.get(self.url + "/", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise BenchError(f"ashbox serve did not answer within 60 s: {self._tail()}")

    def __exit__(self, *exc: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # as Ctrl-C
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cli(self, *argv: str) -> dict[str, object]:
        """Runs `ashbox ARGV -f json`; the object it printed."""
        env = {**os.environ, "ASHBOX_URL": self.url}
        done = subprocess.run(
            [*self.ashbox, *argv, "-f", "json"], env=env, capture_output=True, check=False
        )
        if done.returncode:
            raise BenchError(
                f"ashbox {' '.join(argv)} exited {done.returncode}: "
                f"{done.stderr.decode(errors='replace').strip()}\n{self._tail()}"
            )
        result = json.loads(done.stdout)
        if not isinstance(result, dict):
            raise BenchError(f"ashbox {' '.join(argv)} printed no object")
        return result

    def step(self, *argv: str) -> tuple[dict[str, object], Measure]:
        """Runs one timed CLI command; the object printed and the service's costs.
        A backup's stored bytes are its new packs (`os-backup-stats:stored_size`)
        plus its manifest object."""
        _reset_peak_rss(self.pid)
        requests_before = self.store_requests()
        cpu_before = cpu_seconds(self.pid)
        started = time.monotonic()
        result = self.cli(*argv)
        wall = time.monotonic() - started
        cpu = cpu_seconds(self.pid) - cpu_before
        requests = self.store_requests() - requests_before
        stored = None
        if argv[:2] == ("backup", "create"):
            packs = result.get("os-backup-stats:stored_size")
            if not isinstance(packs, int):
                raise BenchError(f"backup {result.get('id')} shows no stored size")
            stored = packs + self.manifest_size(object_id(result, "backup"))
        return result, Measure(wall, cpu, peak_rss(self.pid), stored, requests)

    def manifest_size(self, backup_id: str) -> int:
        if self.store is not None:
            return self.store.size(f"{CONTAINER}/backups/{backup_id}")
        return (self.data_dir / "store" / CONTAINER / "backups" / backup_id).stat().st_size

    def store_requests(self) -> int:
        """Store requests of every kind the service made so far (its /metrics)."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        return round(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("ashbox_store_requests_total{")
            )
        )

    def _tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()[-20:]
        return "service log:\n" + "\n".join(lines)


def object_id(printed: Mapping[str, object], what: str) -> str:
    value = printed.get("id")
    if not isinstance(value, str):
        raise BenchError(f"{what} printed no id")
    return value


def byte_compile_ashbox() -> None:
    """Compile the ashbox package's modules, as installing a wheel does. An
    editable install (`make install`) leaves that to each import, and with
    PYTHONDONTWRITEBYTECODE set (as on the bench machine) every `ashbox`
    command would compile its modules again: ~10-18 ms of each timed step."""
    import ashbox

    for package_dir in ashbox.__path__:
        compileall.compile_dir(package_dir, quiet=1)


def ashbox_command() -> list[str]:
    beside = Path(sys.executable).parent / "ashbox"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ashbox")
    if found is None:
        raise BenchError("the ashbox command is not installed (make install)")
    return [found]


def peak_rss(pid: int) -> int | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * KiB
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, all its threads included."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reset_peak_rss(pid: int) -> None:
    """Makes VmHWM start again from the current RSS, so it is the peak of the next step."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError as exc:
        print(f"peak RSS is since the service started ({exc})", file=sys.stderr)
