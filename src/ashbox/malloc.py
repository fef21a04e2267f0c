"""Keep freed memory in the process instead of handing it back to the kernel.

A backup or restore allocates and frees a few MiB per block (read ranges,
compressed and decompressed blocks). glibc serves such sizes with fresh mmaps
or trims them off its heaps once freed, so every block touched new pages: a
restore of the 2 GiB bench image took ~300,000 page faults and ~0.7 s of
system time for them, on a machine that backs memory lazily. With a fixed
mmap threshold of 32 MiB and a trim threshold of 256 MiB, freed blocks are
reused (1,000 faults, 0.1 s); the peak resident size is what the pipeline
holds at once, as before. Called once by each long-running command.

One malloc arena serves every thread. The pools' workers make the blocks and
the caller thread frees them; with an arena per thread each freed block went
back to the arena of the thread that made it, where neither the other
threads nor malloc_trim could use it: 30 MiB of blocks made by two pool
threads stayed resident after a trim, and none with one arena. The lock is
taken a few thousand times a second; the bench's backups and restores ran
no slower in one process (three alternated pairs each).

What a task freed is kept for the task's next blocks, not for the next task:
the worker gives it back to the kernel whenever its last running task ends
(`give_back_freed_memory`), so an idle service holds only what it uses, and
a backup does not start on top of the heap a restore left behind. In one
process, the 2 GiB bench image's backup and restore, then bench/scale.py's
256 GiB volume's, peaked at 162, 122, 186 and 144 MiB before, and at 157,
108, 161 and 109 MiB with one arena given back between tasks.
"""

from __future__ import annotations

import ctypes
import logging

from ashbox import libc

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 32 << 20  # the largest glibc accepts on 64-bit hosts
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as the module docstring says; False where the C
    library has no `mallopt` (musl, other systems) or refuses."""
    mallopt = libc.function("mallopt", [ctypes.c_int, ctypes.c_int])
    if mallopt is None:
        return False
    done = all(
        mallopt(option, value)
        for option, value in (
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (_M_ARENA_MAX, 1),
        )
    )
    if not done:
        log.info("malloc tuning refused: freed memory goes back to the kernel")
    return done


def give_back_freed_memory() -> bool:
    """Return the free memory of every malloc arena to the kernel (glibc's
    malloc_trim); False where the C library has none."""
    trim = libc.function("malloc_trim", [ctypes.c_size_t])
    return trim is not None and bool(trim(0))
