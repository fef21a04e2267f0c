"""`make bench-peers`: restic and borg beside ashbox on the bench's images.

For each of --runs runs and each tool in turn (ashbox, restic, borg), on a fresh
repository in a temp directory: full backup of a copy of v1, incremental after
v2's changed ranges are written into that copy, restore of the incremental
(sparse, except restic 0.14's, which has no --sparse; checked by sha256
against v2). Prints the medians of each step's wall seconds and peak RSS, and
the bytes each backup added to the repository.

ashbox runs as in `make bench` (through the CLI against `ashbox serve`; peak RSS
is the service's). restic and borg run as commands with their default settings
(restic encrypts, as it must; borg with `--encryption=none`), their peak RSS
from /usr/bin/time. Their packages are Debian's `restic` and `borgbackup`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from images import CACHE, GiB, Images, MiB, apply_changes, copy_sparse, prepare_images, sha256
from run import ASHBOX_STEPS, MB, ashbox_steps, print_table
from service import BenchError, Measure, run_command

TOOLS = ("ashbox", "restic", "borg")
PASSWORD = "bench password"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args(argv)
    images = prepare_images(max(1, round(args.size_gib * GiB / MiB)) * MiB, args.seed)
    runners: dict[str, Callable[[Images, Path], dict[str, Measure]]] = {
        "ashbox": lambda im, tmp: ashbox_steps(im, tmp / "ashbox", {}),
        "restic": restic_steps,
        "borg": borg_steps,
    }
    results: dict[str, list[dict[str, Measure]]] = {tool: [] for tool in TOOLS}
    try:
        for number in range(args.runs):
            for tool in TOOLS:
                print(f"run {number + 1} of {args.runs}: {tool}", file=sys.stderr)
                tmp = Path(tempfile.mkdtemp(prefix=f"peer-{tool}-", dir=CACHE))
                try:
                    results[tool].append(runners[tool](images, tmp))
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    print_report(images, results)
    return 0


def restic_steps(images: Images, tmp: Path) -> dict[str, Measure]:
    repo, work, out = tmp / "repo", tmp / "volume.img", tmp / "out"
    env = {
        **os.environ,
        "RESTIC_REPOSITORY": str(repo),
        "RESTIC_PASSWORD": PASSWORD,
        "RESTIC_CACHE_DIR": str(tmp / "cache"),
    }
    run_command(["restic", "init"], env=env)
    copy_sparse(images.v1, work)

    def backup() -> Measure:
        return run_command(["restic", "backup", "--host", "bench", work.name], env=env, cwd=tmp)

    def restore() -> Measure:
        argv = ["restic", "restore", "latest", "--target", str(out)]  # 0.14: no --sparse
        return run_command(argv, env=env)

    return _steps(images, work, repo, out / work.name, backup, restore)


def borg_steps(images: Images, tmp: Path) -> dict[str, Measure]:
    repo, work, out = tmp / "repo", tmp / "volume.img", tmp / "out"
    env = {
        **os.environ,
        "BORG_REPO": str(repo),
        "BORG_PASSPHRASE": PASSWORD,
        "BORG_BASE_DIR": str(tmp / "base"),
    }
    run_command(["borg", "init", "--encryption=none"], env=env)
    copy_sparse(images.v1, work)
    names = iter(("full", "incr"))

    def backup() -> Measure:
        return run_command(["borg", "create", f"::{next(names)}", work.name], env=env, cwd=tmp)

    def restore() -> Measure:
        out.mkdir()
        return run_command(["borg", "extract", "--sparse", "::incr"], env=env, cwd=out)

    return _steps(images, work, repo, out / work.name, backup, restore)


def _steps(
    images: Images,
    work: Path,
    repo: Path,
    restored: Path,
    backup: Callable[[], Measure],
    restore: Callable[[], Measure],
) -> dict[str, Measure]:
    measures = {}
    for step in ASHBOX_STEPS[:2]:
        if step == "incremental":
            apply_changes(images, work)
        before = _tree_size(repo)
        m = backup()
        measures[step] = Measure(m.wall, m.cpu, m.rss, _tree_size(repo) - before)
    measures["restore"] = restore()
    digest = sha256(restored)
    if digest != images.sha256_v2:
        raise BenchError(f"restored sha256 {digest} differs from v2's {images.sha256_v2}")
    return measures


def print_report(images: Images, results: dict[str, list[dict[str, Measure]]]) -> None:
    runs = len(results["ashbox"])
    print(f"\nimage {images.size / GiB:.2f} GiB; medians of {runs} run(s)")
    headers = ("tool", "full s", "incr s", "restore s", "full MB", "incr MB", "peak RSS MiB")
    rows = []
    for tool in TOOLS:
        measures = results[tool]
        peaks = [max((m.rss or 0) for m in run.values()) for run in measures]
        rows.append(
            (
                tool,
                *(
                    _fmt(_median(measures, step, lambda m: m.wall), "{:.2f}")
                    for step in ASHBOX_STEPS
                ),
                *(
                    _fmt(_median(measures, step, lambda m: m.stored), "{:.1f}", MB)
                    for step in ASHBOX_STEPS[:2]
                ),
                _fmt(statistics.median(peaks) or None, "{:.0f}", MiB),
            )
        )
    print_table(headers, rows)
    print("peak RSS: ashbox's service process, the command for restic and borg (max of the steps)")


def _median(
    runs: list[dict[str, Measure]], step: str, pick: Callable[[Measure], float | None]
) -> float | None:
    values = [v for run in runs if (v := pick(run[step])) is not None]
    return statistics.median(values) if values else None


def _tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _fmt(value: float | None, form: str, scale: float = 1) -> str:
    return "-" if value is None else form.format(value / scale)


if __name__ == "__main__":
    sys.exit(main())
