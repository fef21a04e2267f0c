"""`make bench-sparse`: a 256 GiB sparse volume holding 4 GiB of data, beside the 2 GiB image.

Issue 3, "Scale": backup and restore take time proportional to the data (holes
are never read) with the same peak RSS as the 2 GiB image. The big volume is
cut from two bench images (v1 of --seed and of --seed + 1, each as
bench/images.py makes them): 64 pieces of 64 MiB spread evenly over 256 GiB,
the rest holes. For each of --runs runs, on one fresh `ashbox serve`: full
backup and restore to a new volume of the 2 GiB v1, then of the big volume.
The big restore is checked piece by piece, and its data must lie only in the
pieces (SEEK_DATA). Prints wall seconds, seconds per GiB of data and peak RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from images import CACHE, GiB, Images, MiB, prepare_images, sha256
from service import BenchError, Measure, Service, object_id

BIG_SIZE = 256 * GiB
PIECE = 64 * MiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args(argv)
    try:
        small = prepare_images(2 * GiB, args.seed)
        sources = [small, prepare_images(2 * GiB, args.seed + 1)]
        big, pieces = prepare_big(sources, args.seed)
        data = len(pieces) * PIECE
        results: dict[str, list[Measure]] = {}
        for number in range(args.runs):
            print(f"run {number + 1} of {args.runs}", file=sys.stderr)
            for name, measure in run_once(small, big, pieces).items():
                results.setdefault(name, []).append(measure)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"\nmedians of {args.runs} run(s); the big volume: {BIG_SIZE / GiB:.0f} GiB, "
        f"{data / GiB:.0f} GiB of data in {len(pieces)} pieces"
    )
    print(f"{'step':22} {'wall s':>8} {'s per data GiB':>15} {'peak RSS MiB':>13}")
    for name, measures in results.items():
        wall = statistics.median(m.wall for m in measures)
        amount = small.size if name.startswith("2 GiB") else data
        rss = statistics.median(m.rss or 0 for m in measures) / MiB
        print(f"{name:22} {wall:8.2f} {wall / (amount / GiB):15.2f} {rss:13.0f}")
    return 0


def prepare_big(sources: list[Images], seed: int) -> tuple[Path, list[tuple[int, str]]]:
    """The big sparse image (cached) and its pieces: (offset, sha256 of the piece)."""
    path = CACHE / f"scale-{BIG_SIZE // GiB}g-s{seed}.img"
    count = sum(s.size for s in sources) // PIECE
    stride = BIG_SIZE // count // MiB * MiB
    pieces: list[tuple[int, str]] = []
    tmp = path.with_suffix(".tmp")
    cached = path.exists()
    with open(path if cached else tmp, "rb" if cached else "wb") as out:
        if not cached:
            print(f"generating {path.name}", file=sys.stderr)
            out.truncate(BIG_SIZE)
        i = 0
        for source in sources:
            with source.v1.open("rb") as src:
                for start in range(0, source.size, PIECE):
                    offset = i * stride + (stride - PIECE) // 2 // MiB * MiB
                    if cached:
                        piece = os.pread(out.fileno(), PIECE, offset)
                    else:
                        piece = os.pread(src.fileno(), PIECE, start)
                        os.pwrite(out.fileno(), piece, offset)
                    pieces.append((offset, hashlib.sha256(piece).hexdigest()))
                    i += 1
        if not cached:
            os.fsync(out.fileno())
    if not cached:
        tmp.rename(path)
    return path, pieces


def run_once(small: Images, big: Path, pieces: list[tuple[int, str]]) -> dict[str, Measure]:
    tmp = Path(tempfile.mkdtemp(prefix="scale-", dir=CACHE))
    measures: dict[str, Measure] = {}
    try:
        with Service(tmp / "data", tmp / "serve.log") as service:
            for name, source in (("2 GiB", small.v1), ("256 GiB", big)):
                volume = service.cli("volume", "import", str(source), "--name", name, "--wait")
                volume_id = object_id(volume, "volume import")
                backup, measures[f"{name} full backup"] = service.step(
                    "backup", "create", volume_id, "--name", name, "--wait"
                )
                restored, measures[f"{name} restore"] = service.step(
                    "backup", "restore", object_id(backup, "backup"), "--name", "r", "--wait"
                )
                path = Path(str(restored["path"]))
                if source == big:
                    check_big(path, pieces)
                elif sha256(path) != sha256(source):
                    raise BenchError("the 2 GiB restore differs from its source")
                path.unlink()
        return measures
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_big(path: Path, pieces: list[tuple[int, str]]) -> None:
    """Each piece restored; no data outside the pieces."""
    with path.open("rb") as f:
        fd = f.fileno()
        for offset, digest in pieces:
            if hashlib.sha256(os.pread(fd, PIECE, offset)).hexdigest() != digest:
                raise BenchError(f"the restored piece at {offset} differs")
        starts = {offset for offset, _ in pieces}
        pos = 0
        while True:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            if not any(s <= data < s + PIECE for s in starts):
                raise BenchError(f"the restored volume holds data at {data}, outside the pieces")
            pos = max(os.lseek(fd, data, os.SEEK_HOLE), data + 1)
            if pos >= os.fstat(fd).st_size:
                break


if __name__ == "__main__":
    sys.exit(main())
