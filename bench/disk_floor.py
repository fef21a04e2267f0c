"""The disk's floor under a restore: how long this disk takes to read a backup's
packs while writing, durably, as many bytes as the restore wrote.

A restore reads its packs from the disk (the posix store writes them with
O_DIRECT, so they are not in the page cache) and fsyncs the volume it wrote.
`zstd -d`, the restore's reference in bench/run.py, does no disk IO at all: it
reads a `.zst` still in the cache and the bench deletes its output before the
kernel writes it back. So bench/run.py times this floor after each restore,
on the same files: a restore can be no faster than it, whatever its CPU.

The floor is plain IO and no work: two threads read the files in 4 MiB preads
(the restore's largest range), out of the cache first, while a third writes
random bytes in 4 MiB O_DIRECT writes and fsyncs them. Run on its own:
`.venv/bin/python bench/disk_floor.py STORE_DIR WRITE_BYTES`.
"""

from __future__ import annotations

import mmap
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_CHUNK = 4 << 20
_READERS = 2


def disk_floor(files: Sequence[Path], write_bytes: int, scratch_dir: Path) -> float:
    """Wall seconds to read `files` from the disk while writing `write_bytes`
    to a new file in `scratch_dir` with O_DIRECT and fsyncing it."""
    for path in files:
        _drop_cached(path)
    fd, name = tempfile.mkstemp(prefix="disk-floor-", dir=scratch_dir)
    os.close(fd)
    try:
        with ThreadPoolExecutor(_READERS + 1) as pool:
            started = time.perf_counter()
            writing = pool.submit(_write_direct, Path(name), write_bytes)
            reads = [pool.submit(_read_all, files[i::_READERS]) for i in range(_READERS)]
            for future in [writing, *reads]:
                future.result()
            return time.perf_counter() - started
    finally:
        os.unlink(name)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _drop_cached(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _read_all(files: Sequence[Path]) -> None:
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            offset = 0
            while chunk := os.pread(fd, _CHUNK, offset):
                offset += len(chunk)
        finally:
            os.close(fd)


def _write_direct(path: Path, length: int) -> None:
    buffer = mmap.mmap(-1, _CHUNK)  # page-aligned, as O_DIRECT needs
    buffer.write(os.urandom(_CHUNK))
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    try:
        view = memoryview(buffer)
        for offset in range(0, length - length % _CHUNK, _CHUNK):
            os.pwrite(fd, view, offset)
        rest = -(-(length % _CHUNK) // 4096) * 4096  # the tail, whole pages
        if rest:
            os.pwrite(fd, view[:rest], length - length % _CHUNK)
        os.fsync(fd)
    finally:
        os.close(fd)
        view.release()
        buffer.close()


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        print("usage: disk_floor.py STORE_DIR WRITE_BYTES", file=sys.stderr)
        return 2
    root, write_bytes = Path(argv[0]), int(argv[1])
    files = files_under(root)
    size = sum(p.stat().st_size for p in files)
    wall = disk_floor(files, write_bytes, root)
    print(f"read {size / 1e6:.0f} MB while writing {write_bytes / 1e6:.0f} MB: {wall:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
