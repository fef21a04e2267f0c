from __future__ import annotations

import os
import socket

from ashbox.cli.client import CinderClient
from ashbox.cli.context import POLL_SECONDS
from ashbox.cli.exit_codes import ExitCode

from .fake_cinder import Run

GiB = 1024**3


def _progress(done: int, total: int = 4 * GiB) -> dict[str, object]:
    return {"os-backup-progress:done_bytes": done, "os-backup-progress:total_bytes": total}


def test_volume_create_posts_size_and_name_and_prints_the_new_volume_as_json(fake):
    run = Run("volume", "create", "--size", "3", "--name", "v1", "-f", "json")
    assert run.code == ExitCode.OK
    assert fake.bodies("POST", "/v3/volumes") == [{"volume": {"size": 3, "name": "v1"}}]
    shown = run.json()
    assert shown["name"] == "v1"
    assert shown["id"] in fake.volumes
    assert "path" in shown


def test_volume_import_manages_the_absolute_path_in_place(fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = Run("volume", "import", "disk.img", "--name", "v2", "-f", "json")
    assert run.code == ExitCode.OK
    path = os.path.join(str(tmp_path), "disk.img")
    assert fake.bodies("POST", "/v3/manageable_volumes") == [
        {"volume": {"host": None, "ref": {"source-name": path}, "name": "v2"}}
    ]
    assert run.json()["path"] == path


def test_volume_import_with_wait_returns_once_the_volume_is_available(fake):
    run = Run("volume", "import", "/dev/sdz", "--wait", "-f", "json")
    assert run.code == ExitCode.OK
    assert run.json()["status"] == "available"
    assert run.sleeps == []  # asked at once: the volume was available
    (get,) = [r for r in fake.requests if r.method == "GET"]
    assert get.headers["X-Ashbox-Wait"] == "1"


def test_every_request_carries_the_token_and_the_microversion(fake, monkeypatch):
    monkeypatch.setenv("ASHBOX_TOKEN", "alice:p1")
    Run("volume", "list")
    (request,) = fake.requests
    assert request.headers["X-Auth-Token"] == "alice:p1"
    assert request.headers["OpenStack-API-Version"] == "volume 3.64"
    assert request.headers["Accept"] == "application/json"
    assert (request.method, request.path) == ("GET", "/v3/volumes/detail")


def test_the_token_defaults_to_cinders_noauth_admin(fake):
    Run("volume", "list")
    assert fake.requests[-1].headers["X-Auth-Token"] == "admin:admin"


def test_the_url_defaults_to_the_local_service(monkeypatch):
    monkeypatch.delenv("ASHBOX_URL", raising=False)
    assert CinderClient.from_environment().url == "http://127.0.0.1:8776"


def test_the_url_comes_from_the_flag_before_the_environment(fake, monkeypatch):
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("ASHBOX_URL", f"http://127.0.0.1:{closed.getsockname()[1]}/")
        assert Run("--url", fake.url + "/", "volume", "list").code == ExitCode.OK
    assert [r.path for r in fake.requests] == ["/v3/volumes/detail"]


def test_a_name_is_looked_up_with_the_name_query_parameter(fake):
    fake.add_volume("my disk")
    assert Run("volume", "show", "my disk").code == ExitCode.OK
    assert fake.requests[-1].params == {"name": "my disk"}


def test_volume_show_finds_a_volume_by_name_and_shows_its_path(fake):
    fake.add_volume("data")
    run = Run("volume", "show", "data")
    assert run.code == ExitCode.OK
    assert "| path " in run.out
    assert "/data/volumes/data.img" in run.out


def test_a_name_that_two_volumes_share_is_refused(fake):
    fake.add_volume("twin")
    fake.add_volume("twin")
    run = Run("volume", "delete", "twin")
    assert run.code == ExitCode.USAGE
    assert run.err == "error: More than one volume is named 'twin'; give its ID.\n"
    assert len(fake.volumes) == 2


def test_an_unknown_name_is_not_found(fake):
    run = Run("volume", "show", "nothing")
    assert run.code == ExitCode.NOT_FOUND
    assert run.err == "error: No volume with a name or ID of 'nothing' exists.\n"


def test_volume_delete_deletes_by_id(fake):
    volume = fake.add_volume("old")
    assert Run("volume", "delete", volume["id"]).code == ExitCode.OK
    assert fake.volumes == {}


def test_backup_create_sends_every_option_and_shows_the_detail(fake):
    volume = fake.add_volume("v1")
    run = Run(
        "backup", "create", "v1", "--incremental", "--name", "b", "--container", "c",
        "--force", "-f", "json",
    )  # fmt: skip
    assert run.code == ExitCode.OK
    assert fake.bodies("POST", "/v3/backups") == [
        {
            "backup": {
                "volume_id": volume["id"],
                "name": "b",
                "container": "c",
                "incremental": True,
                "force": True,
            }
        }
    ]
    assert run.json()["status"] == "creating"
    assert run.sleeps == []


def test_backup_create_wait_polls_and_draws_progress(fake):
    fake.add_volume("v1")
    fake.next_timeline = [
        _progress(0),
        _progress(GiB),
        _progress(3 * GiB),
        {
            "status": "available",
            "os-backup-progress:done_bytes": None,
            "os-backup-progress:total_bytes": None,
        },
    ]
    run = Run("backup", "create", "v1", "--wait", "-f", "json")
    assert run.code == ExitCode.OK
    assert run.sleeps == [POLL_SECONDS] * 3
    assert run.json()["status"] == "available"
    lines = run.err.splitlines()  # not a terminal: a line per status, or per 5 s
    assert lines[0] == "creating [" + "." * 30 + "]   0%  0 B / 4.0 GiB"
    rate = 3 * GiB / (2 * POLL_SECONDS) / 1e6  # of the last progress seen: 3 GiB after 2 polls
    assert lines[1] == "available [" + "#" * 30 + f"] 100%  4.0 GiB / 4.0 GiB  {rate:.1f} MB/s"
    assert len(lines) == 2


def test_backup_create_wait_does_not_sleep_when_the_service_holds_each_get(fake):
    fake.holds_waits = True
    fake.add_volume("v1")
    fake.next_timeline = [_progress(0), _progress(GiB), {"status": "available"}]
    run = Run("backup", "create", "v1", "--wait", "-f", "json")
    assert run.code == ExitCode.OK
    assert run.json()["status"] == "available"
    assert run.sleeps == []
    polls = [r for r in fake.requests if r.method == "GET" and r.path.startswith("/v3/backups/")]
    assert [p.headers["X-Ashbox-Wait"] for p in polls] == ["1"] * 3


def test_backup_create_wait_sleeps_between_gets_the_service_did_not_hold(fake):
    fake.add_volume("v1")
    fake.next_timeline = [_progress(0), {"status": "available"}]
    run = Run("backup", "create", "v1", "--wait")
    assert run.code == ExitCode.OK
    assert run.sleeps == [POLL_SECONDS]


def test_backup_create_wait_exits_1_with_the_fail_reason_when_the_backup_fails(fake):
    fake.add_volume("v1")
    fake.next_timeline = [
        _progress(GiB),
        {"status": "error", "fail_reason": "Volume file is gone."},
    ]
    run = Run("backup", "create", "v1", "--wait")
    assert run.code == ExitCode.FAILED
    assert run.err.splitlines()[-1].endswith("ended in status error: Volume file is gone.")
    assert "| status " in run.out


def test_backup_list_shows_a_row_per_backup_with_the_stored_size(fake):
    volume = fake.add_volume("v1")
    fake.add_backup(volume["id"], "nightly")
    fake.add_backup(volume["id"], "weekly")
    run = Run("backup", "list")
    assert run.code == ExitCode.OK
    assert "| Stored " in run.out
    assert "nightly" in run.out
    assert "weekly" in run.out
    assert "1000 (1000 B)" in run.out
    assert len(Run("backup", "list", "-f", "json").json()) == 2


def test_restore_to_a_new_volume_waits_and_shows_the_volume_with_its_path(fake):
    backup = fake.add_backup(fake.add_volume("v1")["id"], "b1")
    fake.next_timeline = [
        _progress(GiB),
        {"status": "available", "_volume": {"status": "available"}},
    ]
    run = Run("backup", "restore", "b1", "--name", "copy", "--wait", "-f", "json")
    assert run.code == ExitCode.OK
    assert fake.bodies("POST", f"/v3/backups/{backup['id']}/restore") == [
        {"restore": {"volume_id": None, "name": "copy"}}
    ]
    shown = run.json()
    assert shown["name"] == "copy"
    assert shown["status"] == "available"
    assert shown["path"] == "/data/volumes/copy.img"


def test_restore_to_an_existing_volume_names_it(fake):
    backup = fake.add_backup(fake.add_volume("v1")["id"])
    target = fake.add_volume("target")
    run = Run("backup", "restore", backup["id"], "--volume", "target")
    assert run.code == ExitCode.OK
    assert fake.bodies("POST", f"/v3/backups/{backup['id']}/restore") == [
        {"restore": {"volume_id": target["id"], "name": None}}
    ]


def test_restore_wait_exits_1_when_the_target_volume_ends_in_error_restoring(fake):
    backup = fake.add_backup(fake.add_volume("v1")["id"])
    fake.add_volume("target")
    fake.next_timeline = [{"status": "available", "_volume": {"status": "error_restoring"}}]
    run = Run("backup", "restore", backup["id"], "--volume", "target", "--wait")
    assert run.code == ExitCode.FAILED
    assert run.err.splitlines()[-2].endswith("is in status error_restoring")
    assert "the restore of backup" in run.err.splitlines()[-1]


def test_restore_with_both_a_volume_and_a_name_is_bad_usage(fake):
    run = Run("backup", "restore", "b", "--volume", "v", "--name", "n")
    assert run.code == ExitCode.USAGE
    assert "not allowed with argument" in run.err


def test_backup_delete_wait_returns_when_the_backup_is_gone(fake):
    backup = fake.add_backup(fake.add_volume("v1")["id"])
    fake.next_timeline = [{}, None]
    run = Run("backup", "delete", backup["id"], "--wait")
    assert run.code == ExitCode.OK
    assert run.sleeps == [POLL_SECONDS]
    assert fake.backups == {}
    assert run.err.splitlines()[-1] == "deleted"


def test_backup_delete_wait_exits_1_when_the_delete_fails(fake):
    backup = fake.add_backup(fake.add_volume("v1")["id"])
    fake.next_timeline = [{"status": "error_deleting", "fail_reason": "store is read-only"}]
    run = Run("backup", "delete", backup["id"], "--wait")
    assert run.code == ExitCode.FAILED
    assert "error_deleting: store is read-only" in run.err


def test_backup_delete_of_a_backup_with_dependents_prints_cinders_refusal(fake):
    backup = fake.add_backup(fake.add_volume("v1")["id"])
    path = f"/v3/backups/{backup['id']}"
    message = "Invalid backup: Incremental backups exist for this backup."
    fake.refuse("DELETE", path, 400, "badRequest", message)
    run = Run("backup", "delete", backup["id"])
    assert run.code == ExitCode.USAGE
    assert run.err == "error: Invalid backup: Incremental backups exist for this backup.\n"
