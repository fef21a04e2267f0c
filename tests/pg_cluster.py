"""A throwaway PostgreSQL cluster under a temp dir (REAL-PARTS.md part 2), which a
test may stop and start again on the same port and data (the chaos test does)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.needs import unavailable


class PostgresCluster:
    def __init__(self, port: int) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            unavailable("PostgreSQL: no initdb under /usr/lib/postgresql (make test installs it)")
        self.bindir = Path(found[-1]).parent
        # Not under pytest's tmp dir: that one is private to root, and the server runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="ashbox-pg-"))
        self.data = self.root / "data"
        self.port = port
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    @property
    def url(self) -> str:
        """The server's URL, without a database name."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = self.root / "pg.log"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-o", f"'{options}'", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        cmd = [str(self.bindir / program), *args]
        if self.as_postgres:
            cmd = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
