"""A file size limit for this process: EFBIG on demand, as from a filesystem that
holds no larger file (ext4 with 4 KiB blocks: 16 TiB), whatever the test host's is."""

from __future__ import annotations

import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def file_size_limit(size: int) -> Iterator[None]:
    """Files of this process, its worker threads' too, at most `size` bytes inside the
    block: past it the kernel answers EFBIG (SIGXFSZ, its default, is ignored)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
