"""`make bench`: issue 3's bench, through the CLI against `ashbox serve`, as a user would.

The images are bench/images.py's (2 GiB by default, generated once and cached).
Each of --runs runs starts a fresh `ashbox serve` (free port, temp data dir) and
times, alternating ashbox with its reference:

    zstd -1 -T2 of v1            (the reference of both backups)
    full backup of v1            (the image imported as a volume)
    incremental of v2            (v2's changed ranges written into the volume's file)
    zstd -d of the .zst          (the reference of the restore, into a sparse file)
    restore of the incremental   (to a new volume, checked by sha256 against v2)
    disk floor                   (bench/disk_floor.py: the restore's disk IO alone)
    rgw put floor, get floor     (with --store rgw, bench/store_floor.py: the full
                                  backup's packs PUT to radosgw and GET back, alone)

With --encrypted each run also starts a second service, whose repository is
encrypted (aes-256-gcm, a key file); the two take each ashbox step in turn,
which of them goes first alternating between runs (both restores come after
zstd -d), and the wall times are compared. With --store rgw the second service
keeps its store in a bucket of a Ceph radosgw started for the bench
(bench/object_store.py; it shares the machine's cores), beside the first one's
`file://` store, in the same way; the store requests of each step are counted
from the service's /metrics.

Printed: per step the medians of wall s, MB/s of the volume, CPU s (the service
process, all threads; the command's for zstd), peak RSS (the service's during
the step) and bytes stored (a backup's new packs plus its manifest object, or
the .zst file); then issue 3's targets with the ratio of each run's pair, their
median, and PASS or FAIL, and the restore against its disk floor (no target:
what the disk allows it).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import secrets
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from disk_floor import disk_floor, files_under
from images import (
    CACHE,
    GiB,
    Images,
    MiB,
    apply_changes,
    copy_sparse,
    prepare_images,
    settle,
    sha256,
)
from object_store import Rgw, bucket_url, rgw
from service import CONTAINER, BenchError, Measure, Service, object_id, run_command
from store_floor import get_floor, put_floor

from ashbox.config import Settings
from ashbox.storage import StoreOptions, open_store
from ashbox.storage.base import Store

__all__ = ["CACHE", "GiB", "MiB", "main", "prepare_images", "sha256"]

MB = 1_000_000
ASHBOX_STEPS = ("full backup", "incremental", "restore")
STEPS = ("zstd -1 -T2", "full backup", "incremental", "zstd -d", "restore", "disk floor")
CORES = len(os.sched_getaffinity(0))
ENCRYPTED = "encrypted "  # prefix of the encrypted repository's steps
RGW = "rgw "  # prefix of the steps with the store on radosgw


@dataclass(frozen=True, slots=True)
class Run:
    """One run's measures by step, and the manifests' sizes."""

    measures: dict[str, Measure]
    manifest_sizes: list[int]


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    unit: str
    limit: float | None  # None: shown, not judged
    value: Callable[[Run], float | None]  # one run's figure; None if not measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=2.0, help="image size (default 2)")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are shown")
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--encrypted", action="store_true", help="also on an encrypted repository")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="OPTION=VALUE",
        help="a service setting for this bench (e.g. compression_level=1); repeatable",
    )
    parser.add_argument("--keep", action="store_true", help="keep each run's temp directory")
    parser.add_argument(
        "--store",
        choices=("file", "rgw"),
        default="file",
        help="rgw: also with the store on a local Ceph radosgw (S3), beside file://",
    )
    args = parser.parse_args(argv)
    size = max(1, round(args.size_gib * GiB / MiB)) * MiB
    options = dict(_option(text) for text in args.set)
    try:
        images = prepare_images(size, args.seed)
        runs = []
        with contextlib.ExitStack() as stack:
            store: Rgw | None = None
            if args.store == "rgw":
                print("starting radosgw", file=sys.stderr)
                store = stack.enter_context(rgw(Path(tempfile.mkdtemp(prefix="rgw-", dir=CACHE))))
            for number in range(args.runs):
                print(f"run {number + 1} of {args.runs}", file=sys.stderr)
                runs.append(
                    run_once(
                        images,
                        options,
                        encrypted=args.encrypted,
                        rgw=store,
                        keep=args.keep,
                        number=number,
                    )
                )
                walls = ", ".join(f"{step} {m.wall:.2f}" for step, m in runs[-1].measures.items())
                print(f"  wall s: {walls}", file=sys.stderr)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    print_report(images, runs, options, encrypted=args.encrypted, rgw=args.store == "rgw")
    return 0


def run_once(
    images: Images,
    options: Mapping[str, str],
    *,
    encrypted: bool,
    keep: bool,
    number: int,
    rgw: Rgw | None = None,
) -> Run:
    tmp = Path(tempfile.mkdtemp(prefix="run-", dir=CACHE))
    try:
        measures: dict[str, Measure] = {}
        zst = tmp / "v1.zst"
        measures["zstd -1 -T2"] = _with_stored(
            run_command(["zstd", "-q", "-1", "-T2", "-c", str(images.v1)], stdout=zst), zst
        )
        settle(zst)  # its 1 GB would be written back during the backups that follow
        modes = {"": _Steps(images, tmp / "plain", options)}
        if encrypted:
            secret = tmp / "key"
            secret.write_text(secrets.token_hex(32))
            sealed = {**options, "encryption": "aes-256-gcm", "key_file": str(secret)}
            modes[ENCRYPTED] = _Steps(images, tmp / "sealed", sealed)
        if rgw is not None:
            on_rgw = {**options, **rgw.settings, "store": bucket_url()}
            modes[RGW] = _Steps(images, tmp / "rgw", on_rgw, store=_open_store(on_rgw))
        # The two repositories take each step in turn, the first one alternating
        # between runs, so neither always finds the machine as the other left it.
        order = list(modes.items()) if number % 2 == 0 else list(modes.items())[::-1]
        with contextlib.ExitStack() as stack:
            for _, steps in order:
                stack.enter_context(steps)
            for step in ("full backup", "incremental"):
                for prefix, steps in order:
                    measures[prefix + step] = _take(steps, step, rgw)
                if step == "full backup":
                    full_packs = files_under(modes[""].packs_dir)
            out = tmp / "v1.out"
            measures["zstd -d"] = run_command(["zstd", "-q", "-d", "-f", str(zst), "-o", str(out)])
            out.unlink()
            for prefix, steps in order:
                measures[prefix + "restore"] = _take(steps, "restore", rgw)
            plain = modes[""]
            floor = disk_floor(files_under(plain.packs_dir), plain.restored_bytes, tmp)
            measures["disk floor"] = Measure(floor)
            if rgw is not None:
                measures.update(store_floors(full_packs, options, rgw))
        return Run(measures, modes[""].manifest_sizes)
    finally:
        if keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def store_floors(packs: Sequence[Path], options: Mapping[str, str], rgw: Rgw) -> dict[str, Measure]:
    """The full backup's packs PUT into a fresh bucket with a backup's uploads in
    flight, then GET back with a restore's reads in flight (bench/store_floor.py)."""
    defaults = Settings()
    uploads = int(options.get("upload_threads", defaults.upload_threads)) + 1  # + page tables
    reads = int(options.get("pipeline_threads", defaults.pipeline_threads))
    store = _open_store({**options, **rgw.settings, "store": bucket_url()})
    stored = sum(p.stat().st_size for p in packs)
    cpu = rgw.cpu_seconds()
    put = put_floor(store, packs, uploads)
    put_cpu, cpu = rgw.cpu_seconds() - cpu, rgw.cpu_seconds()
    got = get_floor(store, len(packs), reads)
    got_cpu = rgw.cpu_seconds() - cpu
    return {
        RGW + "put floor": Measure(put, stored=stored, store_cpu=put_cpu),
        RGW + "get floor": Measure(got, store_cpu=got_cpu),
    }


def _take(steps: _Steps, step: str, rgw: Rgw | None) -> Measure:
    """One ashbox step, with what radosgw's processes spent meanwhile."""
    if rgw is None:
        return steps.take(step)
    before = rgw.cpu_seconds()
    measure = steps.take(step)
    return dataclasses.replace(measure, store_cpu=rgw.cpu_seconds() - before)


def ashbox_steps(images: Images, tmp: Path, options: Mapping[str, str]) -> dict[str, Measure]:
    """Full backup, incremental and checked restore, one after the other, on a
    fresh service (bench/peers.py runs them beside restic and borg)."""
    with _Steps(images, tmp, options) as steps:
        return {step: steps.take(step) for step in ASHBOX_STEPS}


class _Steps:
    """One repository's steps on its own `ashbox serve`: full backup of v1,
    incremental of v2 (its changes written into the volume's file), restore of
    the incremental to a new volume, checked by sha256; taken one at a time."""

    def __init__(
        self,
        images: Images,
        tmp: Path,
        options: Mapping[str, str],
        *,
        store: Store | None = None,
    ) -> None:
        self.store = store
        self.images = images
        self.tmp = tmp
        self.options = options
        self.work = tmp / "volume.img"
        self.manifest_sizes: list[int] = []
        self.restored_bytes = 0  # allocated by the restored volume
        self.packs_dir = tmp / "data" / "store" / CONTAINER / "data"
        self._ids: dict[str, str] = {}
        self._service: Service | None = None

    def __enter__(self) -> _Steps:
        self.tmp.mkdir()
        config = self.tmp / "ashbox.toml"
        config.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in self.options.items()))
        copy_sparse(self.images.v1, self.work)
        self._service = Service(
            self.tmp / "data", self.tmp / "serve.log", config=config, store=self.store
        )
        self._service.__enter__()
        volume = self._service.cli("volume", "import", str(self.work), "--name", "bench", "--wait")
        self._ids["volume"] = object_id(volume, "volume import")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._service is not None:
            self._service.__exit__(None, None, None)
        self.work.unlink(missing_ok=True)

    def take(self, step: str) -> Measure:
        service = self._service
        assert service is not None
        if step == "full backup":
            argv = ["backup", "create", self._ids["volume"], "--name", "full", "--wait"]
            full, measure = service.step(*argv)
            self._ids["full"] = object_id(full, "full backup")
            return measure
        if step == "incremental":
            apply_changes(self.images, self.work)
            argv = ["backup", "create", self._ids["volume"], "--incremental", "--name", "incr"]
            incremental, measure = service.step(*argv, "--wait")
            self._ids["incr"] = object_id(incremental, "incremental")
            self.manifest_sizes = [service.manifest_size(self._ids[b]) for b in ("full", "incr")]
            return measure
        restored, measure = service.step(
            "backup", "restore", self._ids["incr"], "--name", "r", "--wait"
        )
        path = Path(str(restored["path"]))
        digest = sha256(path)
        if digest != self.images.sha256_v2:
            raise BenchError(f"restored sha256 {digest} differs from v2's {self.images.sha256_v2}")
        print(f"  restore verified: sha256 {digest[:16]}…", file=sys.stderr)
        self.restored_bytes = path.stat().st_blocks * 512
        path.unlink()
        return measure


# The report


def targets(images: Images, *, encrypted: bool, rgw: bool = False) -> list[Target]:
    size = images.size

    def ratio(step: str, reference: str) -> Callable[[Run], float | None]:
        return lambda r: r.measures[step].wall / r.measures[reference].wall

    def cpu_floor(step: str, reference: str) -> Callable[[Run], float | None]:
        """The time `step` needs if it kept both cores busy with its own CPU and
        radosgw's, over `reference`'s wall."""

        def value(r: Run) -> float | None:
            m = r.measures[step]
            if m.cpu is None or m.store_cpu is None:
                return None
            return (m.cpu + m.store_cpu) / CORES / r.measures[reference].wall

        return value

    def stored(step: str) -> Callable[[Run], float | None]:
        return lambda r: (r.measures[step].stored or 0) / MB

    def rss(r: Run) -> float | None:
        peaks = [m.rss for step, m in r.measures.items() if step in ASHBOX_STEPS and m.rss]
        return max(peaks) / MiB if peaks else None

    found = [
        Target(
            "full backup wall / zstd -1 -T2 wall", "x", 1.1, ratio("full backup", "zstd -1 -T2")
        ),
        Target(
            "incremental wall / zstd -1 -T2 wall", "x", 0.6, ratio("incremental", "zstd -1 -T2")
        ),
        Target("bytes stored by the incremental", "MB", 45, stored("incremental")),
        Target("restore wall / zstd -d wall", "x", 1.2, ratio("restore", "zstd -d")),
        Target("restore wall / disk floor wall", "x", None, ratio("restore", "disk floor")),
        Target("peak RSS of the service", "MiB", 200, rss),
        Target("full backup stored", "MB", 1020, stored("full backup")),
        Target(
            "manifest of one backup / volume size",
            "%",
            0.01,
            lambda r: max(r.manifest_sizes) / size * 100,
        ),
    ]
    if encrypted:
        found += [
            Target(f"encrypted / unencrypted {step} wall", "x", 1.15, ratio(ENCRYPTED + step, step))
            for step in ASHBOX_STEPS
        ]
    if rgw:

        def per_gib(r: Run) -> float | None:
            steps = [r.measures[RGW + s] for s in ("full backup", "incremental")]
            stored = sum(m.stored or 0 for m in steps)
            return sum(m.requests or 0 for m in steps) / (stored / GiB) if stored else None

        def rgw_rss(r: Run) -> float | None:
            peaks = [r.measures[RGW + s].rss for s in ASHBOX_STEPS]
            known = [p for p in peaks if p]
            return max(known) / MiB if known else None

        found += [
            Target(
                "rgw / file full backup wall", "x", 1.5, ratio(RGW + "full backup", "full backup")
            ),
            Target("rgw / file restore wall", "x", 1.5, ratio(RGW + "restore", "restore")),
            Target(
                "rgw full backup CPU floor / file full backup wall",
                "x",
                None,
                cpu_floor(RGW + "full backup", "full backup"),
            ),
            Target(
                "rgw restore CPU floor / file restore wall",
                "x",
                None,
                cpu_floor(RGW + "restore", "restore"),
            ),
            Target(
                "rgw put floor / file full backup wall",
                "x",
                None,
                ratio(RGW + "put floor", "full backup"),
            ),
            Target(
                "rgw full backup / rgw put floor wall",
                "x",
                None,
                ratio(RGW + "full backup", RGW + "put floor"),
            ),
            Target(
                "rgw get floor / file restore wall", "x", None, ratio(RGW + "get floor", "restore")
            ),
            Target(
                "rgw restore / rgw get floor wall",
                "x",
                None,
                ratio(RGW + "restore", RGW + "get floor"),
            ),
            Target(
                "rgw / file incremental wall", "x", None, ratio(RGW + "incremental", "incremental")
            ),
            Target(
                "rgw / file bytes stored by the incremental",
                "x",
                1.0,
                lambda r: (
                    (r.measures[RGW + "incremental"].stored or 0)
                    / (r.measures["incremental"].stored or 1)
                ),
            ),
            Target("peak RSS of the rgw service", "MiB", 250, rgw_rss),
            Target("store requests per GiB stored (rgw backups)", "/GiB", None, per_gib),
            Target(
                "store requests of the rgw restore",
                "",
                None,
                lambda r: float(r.measures[RGW + "restore"].requests or 0),
            ),
        ]
    return found


def print_report(
    images: Images,
    runs: list[Run],
    options: Mapping[str, str],
    *,
    encrypted: bool,
    rgw: bool = False,
) -> None:
    size = images.size
    print(
        f"\nimage {size / GiB:.2f} GiB: 25% zeros (half holes), 35% text, 40% random; "
        f"v2 rewrites {images.changed_bytes / size:.2%} of it in {len(images.changes)} ranges; "
        f"medians of {len(runs)} run(s)" + (f"; settings {dict(options)}" if options else "")
    )
    steps = [
        *STEPS,
        *(ENCRYPTED + s for s in ASHBOX_STEPS if encrypted),
        *(RGW + s for s in (*ASHBOX_STEPS, "put floor", "get floor") if rgw),
    ]
    headers: tuple[str, ...] = ("step", "wall s", "MB/s", "CPU s", "peak RSS MiB", "stored MB")
    if rgw:
        headers += ("radosgw CPU s",)
    rows = []
    for step in steps:
        m = [r.measures[step] for r in runs]
        row: tuple[str, ...] = (
            step,
            _fmt(_median([x.wall for x in m]), "{:.2f}"),
            _fmt(size / MB / statistics.median([x.wall for x in m]), "{:.0f}"),
            _fmt(_median([x.cpu for x in m]), "{:.2f}"),
            _fmt(_median([x.rss for x in m]), "{:.0f}", scale=MiB),
            _fmt(_median([x.stored for x in m]), "{:.1f}", scale=MB),
        )
        if rgw:
            row += (_fmt(_median([x.store_cpu for x in m]), "{:.2f}"),)
        rows.append(row)
    print_table(headers, rows)
    print("\nissue 3 targets (each run's figure, then their median)")
    checks = []
    for target in targets(images, encrypted=encrypted, rgw=rgw):
        values = [target.value(r) for r in runs]
        median = _median(values)
        if target.limit is None:
            verdict = "info"
        else:
            verdict = "-" if median is None else ("PASS" if median <= target.limit else "FAIL")
        per_run = " ".join(_fmt(v, "{:.4g}") for v in values)
        checks.append(
            (
                target.name,
                "-" if target.limit is None else f"≤ {target.limit:g} {target.unit}",
                _fmt(median, "{:.4g}") + f" {target.unit}",
                per_run,
                verdict,
            )
        )
    print_table(("figure", "target", "median", "runs", ""), checks)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns sized to their widest cell, the first left-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for cells in (headers, *rows):
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
        )


def _median(values: list[float | None] | list[int | None] | list[float]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _fmt(value: float | None, form: str, *, scale: float = 1) -> str:
    return "-" if value is None else form.format(value / scale)


def _with_stored(measure: Measure, output: Path) -> Measure:
    return Measure(measure.wall, measure.cpu, measure.rss, output.stat().st_size)


def _open_store(options: Mapping[str, str]) -> Store:
    """The store a service with these settings writes to (to read its manifests' sizes)."""
    fields = {k: v for k, v in options.items() if k.startswith("s3_")}
    return open_store(options["store"], StoreOptions(**fields))


def _option(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--set {text}: expected OPTION=VALUE")
    return name.strip(), value.strip()


def _toml(value: str) -> str:
    if value.lstrip("-").replace(".", "", 1).isdigit():
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    sys.exit(main())
