"""The malloc tuning of long-running commands, against the real C library."""

from __future__ import annotations

import random
import resource
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from ashbox.malloc import keep_freed_memory
from tests.needs import unavailable

MiB = 1 << 20


def _block(size: int) -> bytes:
    """A block of `size` bytes with every page touched, as a decoded block has."""
    block = bytearray(size)
    block[::4096] = b"\1" * len(range(0, size, 4096))
    return bytes(block)


def _faults_of_blocks(rounds: int) -> int:
    """Page faults while two threads make batches of blocks of 1-4 MiB that
    this thread frees, as the backup and restore pools do."""
    rng = random.Random(1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with ThreadPoolExecutor(2) as pool:
        for _ in range(rounds):
            sizes = [rng.randrange(MiB, 4 * MiB) for _ in range(8)]
            blocks = list(pool.map(_block, sizes))
            del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_freed_blocks_are_reused_without_new_page_faults() -> None:
    if not keep_freed_memory():
        unavailable("glibc's mallopt")
    _faults_of_blocks(2)  # the heaps grow once
    faults = _faults_of_blocks(30)
    # Without the tuning this touched about 90,000 new pages here.
    assert faults < 15_000, f"{faults} page faults"


_GIVE_BACK = """
import sys
from concurrent.futures import ThreadPoolExecutor
from ashbox.malloc import give_back_freed_memory, keep_freed_memory

def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096

if not keep_freed_memory():
    sys.exit(3)
with ThreadPoolExecutor(2) as pool:
    blocks = list(pool.map(lambda n: b"\\1" * n, [3 << 20] * 10))
del blocks
kept = resident()
give_back_freed_memory()
print(kept - resident())
"""


def test_blocks_made_by_pool_threads_go_back_to_the_kernel_when_asked() -> None:
    # In a process of its own, as in `ashbox serve`: malloc's arenas are set
    # up before any thread allocates.
    done = subprocess.run([sys.executable, "-c", _GIVE_BACK], capture_output=True, text=True)
    if done.returncode == 3:
        unavailable("glibc's mallopt")
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 24 * MiB  # the ten 3 MiB blocks, made in two threads
