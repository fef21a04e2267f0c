from __future__ import annotations

import socket

import pytest

from ashbox import errors
from ashbox.cli.exit_codes import ExitCode, exit_code_for_error, exit_code_for_status
from ashbox.cli.main import main

from .fake_cinder import Answer, Run, json_answer


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_the_exit_codes_are_the_documented_numbers():
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, ExitCode.USAGE),
        (404, ExitCode.NOT_FOUND),
        (403, ExitCode.REFUSED),
        (409, ExitCode.REFUSED),
        (413, ExitCode.REFUSED),
        (405, ExitCode.USAGE),
        (500, ExitCode.SERVER_ERROR),
        (503, ExitCode.SERVER_ERROR),
    ],
)
def test_each_http_error_status_has_its_exit_code(status, code):
    assert exit_code_for_status(status) is code


def test_every_domain_error_maps_to_an_exit_code_that_is_not_ok():
    for cls in [errors.AshboxError, *_subclasses(errors.AshboxError)]:
        error = cls.__new__(cls)
        assert exit_code_for_error(error) is not ExitCode.OK, cls


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.BackupNotFound("b1"), ExitCode.NOT_FOUND),
        (errors.InvalidInput("bad"), ExitCode.USAGE),
        (errors.InvalidBackupState("wrong"), ExitCode.USAGE),
        (errors.QuotaExceeded("over"), ExitCode.REFUSED),
        (errors.StoreError("down"), ExitCode.SERVER_ERROR),
        (errors.CorruptPack("bad trailer"), ExitCode.SERVER_ERROR),
        (errors.TaskCancelled("gone"), ExitCode.FAILED),
    ],
)
def test_domain_errors_map_by_kind(error, code):
    assert exit_code_for_error(error) is code


def test_a_bad_request_prints_the_cinder_fault_message_and_exits_2(fake):
    volume = fake.add_volume("v1", status="in-use")

    message = "Invalid volume: Backing up an in-use volume must use the force flag."
    fake.refuse("POST", "/v3/backups", 400, "badRequest", message)
    run = Run("backup", "create", volume["id"])
    assert run.code == ExitCode.USAGE
    assert run.err == (
        "error: Invalid volume: Backing up an in-use volume must use the force flag.\n"
    )
    assert run.out == ""


def test_an_unknown_backup_prints_cinders_message_and_exits_3(fake):
    run = Run("backup", "show", "11111111-2222-3333-4444-555555555555")
    assert run.code == ExitCode.NOT_FOUND
    assert run.err == "error: Backup 11111111-2222-3333-4444-555555555555 could not be found.\n"


def test_a_server_error_without_a_json_body_shows_the_status_and_exits_6(fake):
    fake.answer("GET", "/v3/volumes/detail", Answer(500, b"<html>oops</html>", "text/html"))
    run = Run("volume", "list")
    assert run.code == ExitCode.SERVER_ERROR
    assert run.err == "error: HTTP 500 Internal Server Error\n"


def test_an_answer_that_is_not_cinders_exits_6(fake):
    fake.answer("GET", "/v3/volumes/detail", json_answer(200, {"items": []}))
    run = Run("volume", "list")
    assert run.code == ExitCode.SERVER_ERROR
    assert "without a list 'volumes'" in run.err


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>ok</html>", "the service answered with no JSON body: Expecting value"),
        (b"", "the service answered with no JSON body: Expecting value"),
        (b"[1, 2]", "the service answered with JSON that is not an object"),
    ],
)
def test_a_success_that_is_not_a_json_object_exits_6(fake, body, message):
    fake.answer("GET", "/v3/backups/detail", Answer(200, body, "text/html"))
    run = Run("backup", "list")
    assert run.code == ExitCode.SERVER_ERROR
    assert run.err.startswith(f"error: {message}")


def test_a_server_that_cannot_be_reached_exits_4(capsys):
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        code = main(["--url", url, "backup", "list"])
    assert code == ExitCode.UNREACHABLE
    assert capsys.readouterr().err == (
        f"error: cannot reach the ashbox service at {url}: [Errno 111] Connection refused\n"
    )


def test_a_url_that_is_not_http_exits_4(capsys):
    assert main(["--url", "ftp://127.0.0.1", "backup", "list"]) == ExitCode.UNREACHABLE
    assert capsys.readouterr().err.startswith(
        "error: cannot reach the ashbox service at ftp://127.0.0.1: the URL must be"
    )


def test_bad_usage_exits_2_with_argparses_message(capsys):
    assert main(["backup", "create"]) == ExitCode.USAGE
    assert "the following arguments are required: VOLUME" in capsys.readouterr().err


def test_help_exits_0(capsys):
    assert main(["backup", "--help"]) == ExitCode.OK
    assert "restore" in capsys.readouterr().out
