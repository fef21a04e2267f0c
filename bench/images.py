"""The bench's images: version 1 of a raw volume image and version 2 of it.

Version 1 (issue 3, "The bench"): about 25% zeros (half holes, half written zero
blocks), 35% compressible log-like text and 40% random bytes, in extents of
64 KiB to 16 MiB (log-uniform, 4 KiB aligned). Version 2 is version 1 with 1% of
its 4 KiB blocks rewritten with random bytes at scattered random offsets, plus
one contiguous 16 MiB region rewritten. Both are generated once from a seed and
cached under bench/.cache/; a JSON file written last lists v2's changed ranges.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
PAGE = 4 * KiB
CACHE = Path(__file__).resolve().parent / ".cache"
V1_FORMAT = 1  # of the v1 generator: bump when it changes
V2_FORMAT = 2  # of the v2 change plan: bump when it changes
MIN_EXTENT = 64 * KiB
MAX_EXTENT = 16 * MiB
SHARES = {"hole": 0.125, "zero": 0.125, "text": 0.35, "random": 0.40}
SCATTERED_SHARE = 0.01  # of the 4 KiB blocks, rewritten one by one
REGION = 16 * MiB  # and one contiguous region rewritten
TEXT_POOL_SIZE = 4 * MiB + 12_345  # not a multiple of a block: text blocks do not repeat
CHUNK = 4 * MiB


@dataclass(frozen=True, slots=True)
class Extent:
    offset: int
    length: int
    kind: str


@dataclass(frozen=True, slots=True)
class Images:
    v1: Path
    v2: Path
    size: int
    sha256_v2: str
    changes: list[tuple[int, int]]  # (offset, length) where v2 was rewritten, ascending

    @property
    def changed_bytes(self) -> int:
        return sum(n for _, n in self.changes)


def prepare_images(size: int, seed: int) -> Images:
    """Version 1 and 2 of the image, generated once and then taken from the cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    v1 = CACHE / f"image-{size // MiB}m-s{seed}-f{V1_FORMAT}-v1.img"
    if not v1.exists():  # renamed into place when whole
        _timed(f"generating {v1.name}", lambda: write_v1(v1, size, seed))
    stem = CACHE / f"image-{size // MiB}m-s{seed}-f{V1_FORMAT}-c{V2_FORMAT}"
    v2, meta = Path(f"{stem}-v2.img"), Path(f"{stem}.json")
    if not meta.exists():  # written last: its presence means v2 is whole
        _timed(f"generating {v2.name}", lambda: write_v2(v1, v2, meta, size, seed))
    data = json.loads(meta.read_text())
    changes = [(int(o), int(n)) for o, n in data["changes"]]
    return Images(v1, v2, int(data["size"]), str(data["sha256_v2"]), changes)


def write_v1(path: Path, size: int, seed: int) -> None:
    rng = random.Random(seed)
    extents = plan_extents(size, rng)
    pool = text_pool(rng)
    zeros = bytes(CHUNK)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        f.truncate(size)  # holes stay holes: only the other extents are written
        for extent in extents:
            if extent.kind == "hole":
                continue
            f.seek(extent.offset)
            phase = rng.randrange(len(pool))
            left = extent.length
            while left:
                n = min(left, CHUNK)
                if extent.kind == "zero":
                    f.write(zeros[:n])
                elif extent.kind == "random":
                    f.write(rng.randbytes(n))
                else:
                    n = min(n, len(pool) - phase)
                    f.write(pool[phase : phase + n])
                    phase = (phase + n) % len(pool)
                left -= n
    tmp.rename(path)


def write_v2(v1: Path, v2: Path, meta: Path, size: int, seed: int) -> None:
    rng = random.Random(f"{seed} v2 changes {V2_FORMAT}")
    changes = plan_changes(size, rng)
    tmp = v2.with_suffix(".tmp")
    copy_sparse(v1, tmp)
    with tmp.open("r+b") as f:
        for offset, length in changes:
            f.seek(offset)
            f.write(rng.randbytes(length))
    tmp.rename(v2)
    meta.write_text(json.dumps({"size": size, "sha256_v2": sha256(v2), "changes": changes}))


def plan_extents(size: int, rng: random.Random) -> list[Extent]:
    """Extents of 64 KiB to 16 MiB (log-uniform, 4 KiB aligned) whose kinds fill SHARES."""
    budget = {kind: int(share * size) // PAGE * PAGE for kind, share in SHARES.items()}
    budget["random"] += size - sum(budget.values())
    extents: list[Extent] = []
    offset = 0
    while offset < size:
        kinds = [k for k, left in budget.items() if left > 0]
        kind = rng.choices(kinds, weights=[budget[k] for k in kinds])[0]
        length = int(math.exp(rng.uniform(math.log(MIN_EXTENT), math.log(MAX_EXTENT))))
        length = min(max(PAGE, length // PAGE * PAGE), budget[kind], size - offset)
        extents.append(Extent(offset, length, kind))
        budget[kind] -= length
        offset += length
    return extents


def plan_changes(size: int, rng: random.Random) -> list[tuple[int, int]]:
    """SCATTERED_SHARE of the 4 KiB blocks, drawn uniformly, and one REGION at a
    random 4 KiB-aligned offset; merged into ascending disjoint ranges."""
    pages = size // PAGE
    region_pages = min(REGION // PAGE, pages)
    start = rng.randrange(pages - region_pages + 1)
    chosen = set(rng.sample(range(pages), round(pages * SCATTERED_SHARE)))
    chosen.update(range(start, start + region_pages))
    changes: list[tuple[int, int]] = []
    for page in sorted(chosen):
        if changes and changes[-1][0] + changes[-1][1] == page * PAGE:
            changes[-1] = (changes[-1][0], changes[-1][1] + PAGE)
        else:
            changes.append((page * PAGE, PAGE))
    return changes


def text_pool(rng: random.Random) -> bytes:
    """Log-like lines with varying numbers: compressible, but not one repeated block."""
    levels = ("INFO", "INFO", "INFO", "DEBUG", "WARNING", "ERROR")
    paths = ("/v3/backups", "/v3/backups/detail", "/v3/volumes", "/v3/volumes/detail")
    methods = ("GET", "GET", "POST", "DELETE")
    lines = []
    total = 0
    t = 1_714_558_830.0
    while total < TEXT_POOL_SIZE:
        t += rng.expovariate(20)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
        line = (
            f"{stamp}.{int(t * 1e6) % 1_000_000:06d}Z {rng.choice(levels):7} "
            f"ashbox.api.access req-{rng.getrandbits(32):08x} {rng.choice(methods)} "
            f"{rng.choice(paths)} status={rng.choice((200, 200, 202, 404))} "
            f"bytes={rng.randrange(100, 90_000)} took={rng.randrange(1, 900)}ms "
            f"worker=w{rng.randrange(8)}\n"
        )
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:TEXT_POOL_SIZE]


def apply_changes(images: Images, target: Path) -> None:
    """Write into `target` (a copy of v1), in place, the ranges where v2 differs."""
    with images.v2.open("rb") as src, target.open("r+b") as dst:
        for offset, length in images.changes:
            dst.seek(offset)
            dst.write(os.pread(src.fileno(), length, offset))
        dst.flush()
        os.fsync(dst.fileno())


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_sparse(src: Path, dst: Path) -> None:
    """A sparse copy, settled (`settle`) before it returns."""
    subprocess.run(["cp", "--sparse=always", "--reflink=auto", str(src), str(dst)], check=True)
    settle(dst)


def settle(path: Path) -> None:
    """Write `path` back to the disk: a timed step must not share the machine
    with the kernel flushing the gigabytes a setup or an earlier step wrote
    (the reference commands read settled files)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _timed(what: str, step: Callable[[], None]) -> None:
    started = time.monotonic()
    print(what, file=sys.stderr)
    step()
    print(f"  done in {time.monotonic() - started:.1f} s", file=sys.stderr)
