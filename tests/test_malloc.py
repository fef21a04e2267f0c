"""The malloc tuning of long-running commands, against the real C library."""

from __future__ import annotations

import random
import resource
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
