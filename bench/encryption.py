"""Encrypted repository wall times against unencrypted ones, through the Repository API.

Uses the images of `bench/run.py` (generated once, cached) and, per run and per
mode (unencrypted and aes-256-gcm; which goes first alternates between runs): a
fresh posix store and SQLite index in a temp directory; a full backup of version 1,
an incremental of version 2 and a restore of it to a new sparse file, checked by
sha256. Prints each step's wall and CPU seconds (this process, all threads) per
mode, medians of --runs, and the ratio encrypted / unencrypted, per run and of the
medians. The page cache is warm. Then, as a figure that page-cache and neighbour
noise cannot move: the CPU seconds of the codec alone (blob id, encode, decode and
verify of every non-zero 1 MiB block of version 1, one thread), plain and encrypted
alternating, medians of --runs.

    .venv/bin/python bench/encryption.py --runs 3
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import CACHE, GiB, MiB, prepare_images, sha256

from ashbox.db.engine import Database
from ashbox.db.index import DbIndex
from ashbox.malloc import keep_freed_memory
from ashbox.repository.blob import BlobCodec
from ashbox.repository.crypto import RepositoryKeys, new_master_key
from ashbox.repository.repository import Repository
from ashbox.storage import open_store
from ashbox.volumes import create_volume_file

MODES = ("none", "aes-256-gcm")
STEPS = ("full backup", "incremental", "restore")
PASSPHRASE = b"bench passphrase"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args(argv)
    keep_freed_memory()  # as `ashbox serve` does
    images = prepare_images(max(1, round(args.size_gib * GiB / MiB)) * MiB, args.seed)
    times: dict[tuple[str, str, str], list[float]] = {}
    for run in range(args.runs):
        for mode in MODES if run % 2 == 0 else MODES[::-1]:
            for step, (wall, cpu) in run_once(images.v1, images.v2, images.sha256_v2, mode).items():
                times.setdefault(("wall", mode, step), []).append(wall)
                times.setdefault(("cpu", mode, step), []).append(cpu)
                print(
                    f"run {run + 1} {mode:12} {step:12} {wall:6.2f} s {cpu:6.2f} cpu s",
                    file=sys.stderr,
                )
    for kind in ("wall", "cpu"):
        print(f"{kind + ' s':12} {'none':>8} {'aes':>8} {'ratio':>6}  ratios per run")
        for step in STEPS:
            plain, enc = times[(kind, "none", step)], times[(kind, "aes-256-gcm", step)]
            ratios = " ".join(f"{e / p:.3f}" for p, e in zip(plain, enc, strict=True))
            mp, me = statistics.median(plain), statistics.median(enc)
            print(f"{step:12} {mp:8.2f} {me:8.2f} {me / mp:6.3f}  {ratios}")
    codec: dict[str, list[float]] = {mode: [] for mode in MODES}
    for run in range(args.runs):
        for mode in MODES if run % 2 == 0 else MODES[::-1]:
            codec[mode].append(codec_cpu(images.v1, mode))
    plain, enc = statistics.median(codec["none"]), statistics.median(codec["aes-256-gcm"])
    print(f"{'codec cpu s':12} {plain:8.2f} {enc:8.2f} {enc / plain:6.3f}")
    return 0


def codec_cpu(image: Path, mode: str) -> float:
    """CPU seconds to name, encode, decode and verify every non-zero block of `image`."""
    keys = RepositoryKeys.from_master(new_master_key()) if mode != "none" else None
    codec = BlobCodec(3, keys)
    zeros = bytes(MiB)
    buf = bytearray(MiB)
    started = _cpu()
    with image.open("rb", buffering=0) as f:
        while length := f.readinto(buf):
            if buf == zeros:
                continue
            view = memoryview(buf)[:length]
            blob_id = codec.blob_id(view)
            flags, payload = codec.encode(view)
            codec.decode(blob_id, payload, flags, length)
    return _cpu() - started


def run_once(v1: Path, v2: Path, expected_sha256: str, mode: str) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of each step, on a fresh store and index."""
    tmp = Path(tempfile.mkdtemp(prefix="crypto-", dir=CACHE))
    try:
        db = Database(f"sqlite:///{tmp / 'ashbox.db'}")
        db.migrate()
        repo = Repository.open(
            open_store(f"file://{tmp / 'store'}"),
            "volumebackups",
            DbIndex(db),
            encryption=mode,
            secret=PASSPHRASE,
        )
        target = tmp / "restored.img"
        create_volume_file(target, v2.stat().st_size)
        steps = {
            "full backup": lambda: repo.backup("full", v1),
            "incremental": lambda: repo.backup("incr", v2, parent_id="full"),
            "restore": lambda: repo.restore("incr", target, new_volume=True),
        }
        walls = {}
        for step, run in steps.items():
            cpu, started = _cpu(), time.perf_counter()
            run()
            walls[step] = (time.perf_counter() - started, _cpu() - cpu)
        if sha256(target) != expected_sha256:
            raise SystemExit(f"restore of {mode} does not match version 2")
        db.dispose()
        return walls
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
