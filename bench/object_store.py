"""The object store of `make bench --store rgw`: a Ceph radosgw started by
scripts/rgw-server.sh (the tests' own script) under the bench cache, and the
settings that point a service at a fresh bucket of it."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from service import BenchError, cpu_seconds

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "rgw-server.sh"
ACCESS_KEY, SECRET_KEY = "ashbox", "ashbox-secret"


@dataclass(frozen=True, slots=True)
class Rgw:
    """A running radosgw: the service settings of its endpoint, and its root."""

    settings: dict[str, str]
    root: Path

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the store's processes (radosgw, its OSD and
        monitor): what the store costs the machine's cores."""
        return sum(cpu_seconds(int(p.read_text())) for p in (self.root / "run").glob("*.pid"))


@contextmanager
def rgw(root: Path) -> Iterator[Rgw]:
    """A running radosgw under `root`."""
    port, mon = _free_port(), _free_port()
    env = {**os.environ, "RGW_PORT": str(port), "MON_PORT": str(mon)}
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", str(root)], env=env, capture_output=True, text=True
    )
    if started.returncode:
        raise BenchError(f"radosgw did not start: {started.stderr[-2000:]}")
    settings = {
        "s3_endpoint_url": f"http://127.0.0.1:{port}",
        "s3_region": "us-east-1",
        "s3_access_key": ACCESS_KEY,
        "s3_secret_key": SECRET_KEY,
        "s3_addressing_style": "path",
    }
    try:
        _warm_up(settings)
        yield Rgw(settings, root)
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(root)], capture_output=True)


def bucket_url() -> str:
    """A store URL in a bucket no earlier run used."""
    return f"s3://bench-{uuid.uuid4().hex[:12]}/ashbox"


def _warm_up(settings: dict[str, str]) -> None:
    """Write and read a few packs' worth once: radosgw makes its data pools on the
    first write of all, which would otherwise be timed as the first backup."""
    from ashbox.storage import StoreOptions, open_store

    store = open_store(bucket_url(), StoreOptions(**settings))  # type: ignore[arg-type]
    data = os.urandom(16 << 20)
    for n in range(4):
        store.put(f"warm/{n}", data)
        store.get(f"warm/{n}")
        store.delete(f"warm/{n}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
