"""`make bench`: time full backup, incremental and restore through the CLI, as a user would.

Generates (once, cached under bench/.cache/) a raw image of --size-gib GiB, 25% zeros
(half holes, half written zero blocks), 35% compressible log-like text and 40% random
bytes in extents of 64 KiB to 16 MiB, and a second version with 2% of it changed in a
few extents. Then, for each of --runs runs, on a fresh `ashbox serve` (free port, temp
data dir): imports a copy of version 1 as a volume, backs it up in full, writes the
changes of version 2 into it, backs it up incrementally, restores that backup to a new
volume and checks the restored bytes' sha256 against version 2. Prints a table of
medians beside `cat` and `zstd -1 -T2` of the same file.

CPU seconds are the service process's for the ashbox steps (utime+stime of all its
threads from /proc/<pid>/stat), and the command's own for cat and zstd. Peak RSS is
the service's during each step (VmHWM from /proc/<pid>/status, reset before it).
The page cache is warm for every step: the image was just written or read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
ALIGN = 4 * KiB
FORMAT_VERSION = 1  # of the generated images: bump when the generator changes
CACHE = Path(__file__).resolve().parent / ".cache"
MIN_EXTENT = 64 * KiB
MAX_EXTENT = 16 * MiB
SHARES = {"hole": 0.125, "zero": 0.125, "text": 0.35, "random": 0.40}
CHANGED_SHARE = 0.02
CHANGED_EXTENTS = 6
TEXT_POOL_SIZE = 4 * MiB + 12_345  # not a multiple of a block: text blocks do not repeat
CHUNK = 4 * MiB
STEPS = ("full backup", "incremental", "restore")


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
    changes: list[tuple[int, int]]  # (offset, length) where v2 differs from v1


@dataclass(frozen=True, slots=True)
class Measure:
    wall: float
    cpu: float | None
    rss: int | None  # bytes
    stored: int | None  # bytes


class BenchError(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=2.0, help="image size (default 2)")
    parser.add_argument("--runs", type=int, default=1, help="runs; medians are shown")
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--keep", action="store_true", help="keep each run's temp directory")
    args = parser.parse_args(argv)
    size = max(1, round(args.size_gib * GiB / MiB)) * MiB
    try:
        images = prepare_images(size, args.seed)
        results: dict[str, list[Measure]] = {}
        for run in range(args.runs):
            print(f"run {run + 1} of {args.runs}", file=sys.stderr)
            for step, measure in run_once(images, keep=args.keep).items():
                results.setdefault(step, []).append(measure)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    print_table(images, results, args.runs)
    return 0


# The images


def prepare_images(size: int, seed: int) -> Images:
    """Version 1 and 2 of the image, generated once and then taken from the cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    stem = CACHE / f"image-{size // MiB}m-s{seed}-f{FORMAT_VERSION}"
    v1, v2, meta = (Path(f"{stem}-v1.img"), Path(f"{stem}-v2.img"), Path(f"{stem}.json"))
    if not meta.exists():  # written last: its presence means both images are whole
        started = time.monotonic()
        print(f"generating {v1.name} and {v2.name} ({size / GiB:.2f} GiB)", file=sys.stderr)
        rng = random.Random(seed)
        write_image(v1, size, plan_extents(size, rng), rng)
        changes = plan_changes(size, rng)
        _copy_sparse(v1, v2)
        with v2.open("r+b") as f:
            for offset, length in changes:
                f.seek(offset)
                f.write(rng.randbytes(length))
        meta.write_text(
            json.dumps({"size": size, "sha256_v2": sha256(v2), "changes": changes}, indent=1)
        )
        print(f"generated in {time.monotonic() - started:.1f} s", file=sys.stderr)
    data = json.loads(meta.read_text())
    changes = [(int(o), int(n)) for o, n in data["changes"]]
    return Images(v1, v2, int(data["size"]), str(data["sha256_v2"]), changes)


def plan_extents(size: int, rng: random.Random) -> list[Extent]:
    """Extents of 64 KiB to 16 MiB (log-uniform, 4 KiB aligned) whose kinds fill SHARES."""
    budget = {kind: int(share * size) // ALIGN * ALIGN for kind, share in SHARES.items()}
    budget["random"] += size - sum(budget.values())
    extents: list[Extent] = []
    offset = 0
    while offset < size:
        kinds = [k for k, left in budget.items() if left > 0]
        kind = rng.choices(kinds, weights=[budget[k] for k in kinds])[0]
        length = int(math.exp(rng.uniform(math.log(MIN_EXTENT), math.log(MAX_EXTENT))))
        length = min(max(ALIGN, length // ALIGN * ALIGN), budget[kind], size - offset)
        extents.append(Extent(offset, length, kind))
        budget[kind] -= length
        offset += length
    return extents


def plan_changes(size: int, rng: random.Random) -> list[tuple[int, int]]:
    """CHANGED_EXTENTS extents, one in each equal zone of the image, CHANGED_SHARE in all."""
    length = max(ALIGN, int(size * CHANGED_SHARE / CHANGED_EXTENTS) // ALIGN * ALIGN)
    zone = size // CHANGED_EXTENTS // ALIGN * ALIGN
    changes = []
    for i in range(CHANGED_EXTENTS):
        room = max(0, zone - length) // ALIGN
        changes.append((i * zone + rng.randrange(room + 1) * ALIGN, min(length, size)))
    return changes


def write_image(path: Path, size: int, extents: list[Extent], rng: random.Random) -> None:
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


# One run


def run_once(images: Images, *, keep: bool) -> dict[str, Measure]:
    tmp = Path(tempfile.mkdtemp(prefix="run-", dir=CACHE))
    try:
        measures = {
            "cat": run_reference(["cat", str(images.v1)], tmp / "cat.out", discard=True),
        }
        zst = tmp / "x.zst"
        measures["zstd -1 -T2"] = run_reference(
            ["zstd", "-q", "-1", "-T2", "-c", str(images.v1)], zst, discard=False
        )
        work = tmp / "volume.img"
        _copy_sparse(images.v1, work)
        with Service(tmp / "data", tmp / "serve.log") as service:
            volume = service.cli("volume", "import", str(work), "--name", "bench", "--wait")
            volume_id = _id(volume, "volume import")
            _, measures["full backup"] = service.step(
                "backup", "create", volume_id, "--name", "full", "--wait"
            )
            apply_changes(images, work)
            incremental, measures["incremental"] = service.step(
                "backup", "create", volume_id, "--incremental", "--name", "incr", "--wait"
            )
            restored, measures["restore"] = service.step(
                "backup", "restore", _id(incremental, "incremental"), "--name", "restored", "--wait"
            )
            digest = sha256(Path(str(restored["path"])))
            if digest != images.sha256_v2:
                raise BenchError(f"restored sha256 {digest} differs from v2 {images.sha256_v2}")
            print(f"restore verified: sha256 {digest}", file=sys.stderr)
        return measures
    finally:
        if keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run_reference(argv: list[str], output: Path, *, discard: bool) -> Measure:
    """Wall time and CPU of one command writing its stdout to `output`.

    No peak RSS: a forked child's ru_maxrss counts this Python process's pages from
    before the exec, so it would report the bench's size, not the command's.
    """
    if shutil.which(argv[0]) is None:
        raise BenchError(f"{argv[0]} is not installed (apt-get install {argv[0]})")
    with open(os.devnull if discard else output, "wb") as out:
        started = time.monotonic()
        process = subprocess.Popen(argv, stdout=out)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise BenchError(f"{' '.join(argv)} exited {process.returncode}")
    stored = None if discard else output.stat().st_size
    return Measure(wall, usage.ru_utime + usage.ru_stime, None, stored)


def apply_changes(images: Images, work: Path) -> None:
    """Writes into the volume's file, in place, the extents where v2 differs from v1."""
    with images.v2.open("rb") as src, work.open("r+b") as dst:
        for offset, length in images.changes:
            dst.seek(offset)
            dst.write(os.pread(src.fileno(), length, offset))
        dst.flush()
        os.fsync(dst.fileno())


def _id(printed: dict[str, object], what: str) -> str:
    if not isinstance(printed.get("id"), str):
        raise BenchError(f"{what} printed no id")
    return str(printed["id"])


class Service:
    """`ashbox serve` in a subprocess on a free loopback port, and the CLI against it."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.log = log
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ashbox = _ashbox_command()
        self.process: subprocess.Popen[bytes] | None = None
        self.last: dict[str, object] = {}

    def __enter__(self) -> Service:
        argv = [*self.ashbox, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"ashbox serve exited {self.process.returncode}: {self._tail()}")
            try:
                httpx.get(self.url + "/", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise BenchError(f"ashbox serve did not answer within 60 s: {self._tail()}")

    def __exit__(self, *exc: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # as Ctrl-C
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def cli(self, *argv: str) -> dict[str, object]:
        """Runs `ashbox ARGV -f json`; the object it printed."""
        env = {**os.environ, "ASHBOX_URL": self.url}
        done = subprocess.run(
            [*self.ashbox, *argv, "-f", "json"], env=env, capture_output=True, check=False
        )
        if done.returncode:
            raise BenchError(
                f"ashbox {' '.join(argv)} exited {done.returncode}: "
                f"{done.stderr.decode(errors='replace').strip()}\n{self._tail()}"
            )
        result = json.loads(done.stdout)
        if not isinstance(result, dict):
            raise BenchError(f"ashbox {' '.join(argv)} printed no object")
        return result

    def step(self, *argv: str) -> tuple[dict[str, object], Measure]:
        """Runs one timed CLI command; the object printed and the service's costs."""
        assert self.process is not None
        pid = self.process.pid
        _reset_peak_rss(pid)
        cpu_before = _cpu_seconds(pid)
        started = time.monotonic()
        result = self.cli(*argv)
        wall = time.monotonic() - started
        cpu = _cpu_seconds(pid) - cpu_before
        stored = None
        if argv[:2] == ("backup", "create"):
            value = result.get("os-backup-stats:stored_size")
            stored = value if isinstance(value, int) else None
        return result, Measure(wall, cpu, _peak_rss(pid), stored)

    def _tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()[-20:]
        return "service log:\n" + "\n".join(lines)


def _ashbox_command() -> list[str]:
    beside = Path(sys.executable).parent / "ashbox"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ashbox")
    if found is None:
        raise BenchError("the ashbox command is not installed (make install)")
    return [found]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    """utime + stime of the process, all its threads included."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss(pid: int) -> int | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * KiB
    return None


def _reset_peak_rss(pid: int) -> None:
    """Makes VmHWM start again from the current RSS, so it is the peak of the next step."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError as exc:
        print(f"peak RSS is since the service started ({exc})", file=sys.stderr)


# Report


def print_table(images: Images, results: dict[str, list[Measure]], runs: int) -> None:
    size = images.size
    med = {step: _median(ms) for step, ms in results.items()}
    zstd_wall = med["zstd -1 -T2"].wall
    print(
        f"\nimage {size / GiB:.2f} GiB ({size} bytes): 25% zeros (half holes), 35% text, "
        f"40% random; v2 changes {sum(n for _, n in images.changes) / size:.1%} in "
        f"{len(images.changes)} extents; medians of {runs} run(s); {os.cpu_count()} CPUs"
    )
    headers = ("step", "wall s", "MB/s", "CPU s", "peak RSS MiB", "stored MiB", "x zstd")
    rows = []
    for step in ("cat", "zstd -1 -T2", *STEPS):
        m = med[step]
        rows.append(
            (
                step,
                f"{m.wall:.2f}",
                f"{size / m.wall / 1e6:.0f}",
                "-" if m.cpu is None else f"{m.cpu:.2f}",
                "-" if m.rss is None else f"{m.rss / MiB:.0f}",
                "-" if m.stored is None else f"{m.stored / MiB:.1f}",
                f"{m.wall / zstd_wall:.2f}",
            )
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for cells in (headers, *rows):
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
        )
    print(
        "CPU s: the service process (all threads) for ashbox steps, the command itself for cat "
        "and zstd; peak RSS: the service's during the step; stored: bytes the backup added to "
        "the store, or the size of the .zst file."
    )


def _median(measures: list[Measure]) -> Measure:
    def mid(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    wall = mid([m.wall for m in measures])
    rss = mid([m.rss for m in measures])
    stored = mid([m.stored for m in measures])
    return Measure(
        wall if wall is not None else math.nan,
        mid([m.cpu for m in measures]),
        None if rss is None else int(rss),
        None if stored is None else int(stored),
    )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_sparse(src: Path, dst: Path) -> None:
    subprocess.run(["cp", "--sparse=always", "--reflink=auto", str(src), str(dst)], check=True)


if __name__ == "__main__":
    sys.exit(main())
