"""Why the posix store drops an object's pages after its fsync: 1.5 GiB of 32 MiB
objects written and fsynced one by one, keeping or dropping their pages, alternated
three times. Run: `.venv/bin/python bench/store_put.py`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

_OBJECT = 32 << 20
_COUNT = 48


def run(drop: bool, root: Path, data: bytes) -> float:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    started = time.perf_counter()
    for i in range(_COUNT):
        fd = os.open(root / f"p{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
            if drop:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return time.perf_counter() - started


def main() -> None:
    data = os.urandom(_OBJECT)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        for _ in range(3):
            for drop in (False, True):
                print(f"{'dropped' if drop else 'kept':8} {run(drop, Path(tmp) / 's', data):.2f} s")


if __name__ == "__main__":
    main()
