from __future__ import annotations

import io

from ashbox.cli.progress import ProgressBar, render_bar

MiB = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bar_shows_bytes_done_of_total_and_the_rate():
    assert render_bar("creating", 256 * MiB, 1024 * MiB, 50e6, width=10) == (
        "creating [##........]  25%  256.0 MiB / 1.0 GiB  50.0 MB/s"
    )


def test_a_bar_without_a_rate_leaves_it_out():
    assert render_bar("restoring", 0, 4 * MiB, None, width=4) == (
        "restoring [....]   0%  0 B / 4.0 MiB"
    )


def test_a_full_bar_is_all_filled():
    assert render_bar("available", 10, 10, None, width=4).startswith("available [####] 100%")


def test_a_task_that_has_not_measured_its_work_is_starting():
    assert render_bar("creating", 0, 0, None, width=4) == "creating [    ] starting"


def test_a_task_that_ends_before_measuring_its_work_ends_with_its_status_alone():
    stream = io.StringIO()
    bar = ProgressBar(stream, interactive=False)
    bar.update("creating", 0, 0)
    bar.finish("available", complete=True)
    assert stream.getvalue() == "creating [" + " " * 30 + "] starting\navailable\n"


def test_without_byte_counts_the_bar_says_it_waits_for_a_worker():
    assert render_bar("creating", None, None, None, width=3) == (
        "creating [   ] waiting for a worker"
    )


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_ends_its_line():
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(stream, interactive=True, clock=clock)
    bar.update("creating", None, None)
    clock.now += 1
    bar.update("creating", 0, 100 * MiB)
    clock.now += 2
    bar.update("creating", 100_000_000, 100 * MiB)
    bar.finish("available", complete=True)
    frames = stream.getvalue().split("\r")[1:]
    assert frames[0].rstrip() == "creating [" + " " * 30 + "] waiting for a worker"
    assert frames[2].startswith("creating [")
    assert frames[2].endswith("50.0 MB/s")  # 100 MB in 2 s
    assert frames[-1].startswith("available [" + "#" * 30 + "] 100%")
    assert frames[-1].endswith("\n")
    assert len(frames[1]) >= len(frames[0])  # a shorter frame is padded over the longer one


def test_off_a_terminal_lines_are_written_on_status_change_and_every_few_seconds():
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(stream, interactive=False, clock=clock, line_seconds=5)
    for done in range(0, 10):
        bar.update("creating", done * MiB, 10 * MiB)
        clock.now += 1
    bar.finish("available", complete=True)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert [line.split("]")[1].split()[0] for line in lines] == ["0%", "50%", "100%"]
    assert lines[-1].startswith("available")


def test_the_rate_starts_again_when_the_task_restarts_from_fewer_bytes():
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(stream, interactive=True, clock=clock)
    bar.update("creating", 0, 1000 * MiB)
    clock.now += 1
    bar.update("creating", 500_000_000, 1000 * MiB)
    clock.now += 1
    bar.update("creating", 0, 1000 * MiB)  # the worker died; another one started over
    assert stream.getvalue().split("\r")[-1].rstrip().endswith("0 B / 1000.0 MiB")
    clock.now += 1
    bar.update("creating", 10_000_000, 1000 * MiB)
    assert stream.getvalue().split("\r")[-1].rstrip().endswith("10.0 MB/s")


def test_a_failed_task_keeps_the_bytes_it_reached():
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(stream, interactive=False, clock=clock)
    bar.update("creating", 3 * MiB, 10 * MiB)
    bar.finish("error", complete=False)
    assert stream.getvalue().splitlines()[-1].startswith("error [#########")
    assert "3.0 MiB / 10.0 MiB" in stream.getvalue().splitlines()[-1]


def test_a_task_that_never_reported_bytes_ends_with_its_status_alone():
    stream = io.StringIO()
    bar = ProgressBar(stream, interactive=False)
    bar.finish("available", complete=True)
    assert stream.getvalue() == "available\n"
