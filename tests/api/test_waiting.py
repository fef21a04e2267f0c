"""`X-Ashbox-Wait`: a GET of a busy backup or volume held until it moves on (docs/api.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from ashbox.api import waiting
from tests.api.conftest import Api

WAIT = {"X-Ashbox-Wait": "30"}


def test_a_waiting_get_answers_with_the_finished_backup_and_says_it_waited(api: Api) -> None:
    volume_id = api.volume()
    api.write(volume_id, b"data" * 4096)
    backup_id = api.start_backup(volume_id)
    r = api.get(f"/backups/{backup_id}", headers=WAIT)
    assert r.status_code == 200, r.text
    assert r.json()["backup"]["status"] == "available"
    assert r.headers["X-Ashbox-Wait"] == "30"
    assert api.show_volume(volume_id)["status"] == "available"


def test_a_get_without_the_header_answers_at_once_as_cinder_does(api: Api) -> None:
    backup_id = api.backup(api.volume())
    api.stack.set_backup_status(backup_id, "creating")
    started = time.monotonic()
    r = api.get(f"/backups/{backup_id}")
    assert time.monotonic() - started < 5
    assert r.json()["backup"]["status"] == "creating"
    assert "X-Ashbox-Wait" not in r.headers


def test_a_backup_that_stays_busy_is_answered_when_the_wait_is_over(api: Api) -> None:
    backup_id = api.backup(api.volume())
    api.stack.set_backup_status(backup_id, "creating")  # no task will move it on
    started = time.monotonic()
    r = api.get(f"/backups/{backup_id}", headers={"X-Ashbox-Wait": "0.3"})
    assert time.monotonic() - started >= 0.3
    assert r.status_code == 200
    assert r.json()["backup"]["status"] == "creating"
    assert r.headers["X-Ashbox-Wait"] == "0.3"


def test_an_announced_change_answers_a_waiting_get_before_any_recheck(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(waiting, "RECHECK_SECONDS", 60.0)  # only the announcement can answer
    backup_id = api.backup(api.volume())
    api.stack.set_backup_status(backup_id, "creating")

    def finish() -> None:
        api.stack.set_backup_status(backup_id, "available")
        api.stack.changes.announce(backup_id)

    status, took = _answer_to_a_wait_during(api, backup_id, finish)
    assert status == "available"
    assert took < 20  # long before the 30 s asked


def test_a_change_made_elsewhere_is_found_by_the_recheck(api: Api) -> None:
    """Another process's worker announces nothing here: the GET reads again."""
    backup_id = api.backup(api.volume())
    api.stack.set_backup_status(backup_id, "creating")
    status, took = _answer_to_a_wait_during(
        api, backup_id, lambda: api.stack.set_backup_status(backup_id, "available")
    )
    assert status == "available"
    assert took < 20  # long before the 30 s asked


def _answer_to_a_wait_during(
    api: Api, backup_id: str, change: Callable[[], None]
) -> tuple[str, float]:
    """The status a GET waiting 30 s answers with, and the seconds it took,
    when `change` runs 0.2 s after it was sent."""
    timer = threading.Timer(0.2, change)
    timer.start()
    started = time.monotonic()
    r = api.get(f"/backups/{backup_id}", headers=WAIT)
    timer.join()
    return str(r.json()["backup"]["status"]), time.monotonic() - started


def test_a_waiting_get_of_a_volume_answers_once_its_backup_is_done(api: Api) -> None:
    volume_id = api.volume()
    api.write(volume_id, b"v" * 65536)
    api.start_backup(volume_id)
    r = api.get(f"/volumes/{volume_id}", headers=WAIT)
    assert r.status_code == 200, r.text
    assert r.json()["volume"]["status"] == "available"
    assert r.headers["X-Ashbox-Wait"] == "30"


@pytest.mark.parametrize("value", ["0", "-1", "61", "soon", "nan", "inf", ""])
def test_a_bad_wait_is_refused_with_a_message(api: Api, value: str) -> None:
    backup_id = api.backup(api.volume())
    for path in (f"/backups/{backup_id}", f"/volumes/{api.volume()}"):
        r = api.get(path, headers={"X-Ashbox-Wait": value})
        assert r.status_code == 400, r.text
        message = r.json()["badRequest"]["message"]
        assert message == (
            "Invalid input received: X-Ashbox-Wait must be a number of seconds above 0 "
            f"and at most 60, not {value!r}."
        )


def test_a_waiting_get_of_a_missing_backup_is_404(api: Api) -> None:
    r = api.get("/backups/00000000-0000-0000-0000-000000000000", headers=WAIT)
    assert r.status_code == 404
