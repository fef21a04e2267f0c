from __future__ import annotations

from pathlib import Path

import pytest

from ashbox.cli.exit_codes import ExitCode
from ashbox.cli.main import build_parser, main
from ashbox.cli.serve_command import settings_for


def _serve_args(*argv: str):
    return build_parser().parse_args(["serve", *argv])


@pytest.mark.parametrize(
    "argv",
    [
        ["volume", "create", "--name", "v"],  # no --size
        ["volume", "create", "--size", "0"],
        ["volume", "create", "--size", "two"],
        ["volume", "show", "v", "-f", "yaml"],
        ["backup", "restore"],
        ["backup", "frobnicate"],
        ["serve", "--port", "70000"],
        [],
    ],
)
def test_bad_command_lines_exit_2(argv, capsys):
    assert main(argv) == ExitCode.USAGE
    assert "usage: ashbox" in capsys.readouterr().err


def test_show_and_list_default_to_tables():
    for argv in (["volume", "show", "v"], ["volume", "list"], ["backup", "list"]):
        assert build_parser().parse_args(argv).format == "table"


def test_backup_create_flags_default_to_a_plain_full_backup():
    args = build_parser().parse_args(["backup", "create", "v1"])
    assert (args.incremental, args.force, args.wait, args.name, args.container) == (
        False,
        False,
        False,
        None,
        None,
    )


def test_serve_uses_the_configuration_when_no_flag_is_given(monkeypatch, tmp_path):
    for name in ("ASHBOX_STORE", "ASHBOX_PORT", "ASHBOX_HOST", "ASHBOX_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "ashbox.toml"
    config.write_text('port = 9000\nstore = "file:///srv/backups"\n')
    monkeypatch.setenv("ASHBOX_STORE", "file:///mnt/nfs/backups")
    settings = settings_for(_serve_args("--config", str(config)))
    assert settings.port == 9000
    assert settings.store == "file:///mnt/nfs/backups"  # the environment beats the file
    assert settings.host == "127.0.0.1"


def test_serve_flags_override_the_file_and_the_environment(monkeypatch, tmp_path):
    config = tmp_path / "ashbox.toml"
    config.write_text('port = 9000\nhost = "127.0.0.2"\n')
    monkeypatch.setenv("ASHBOX_STORE", "file:///mnt/nfs/backups")
    args = _serve_args(
        "--config", str(config), "--port", "8123", "--host", "::1", "--data-dir", "d",
        "--store", "file:///elsewhere",
    )  # fmt: skip
    settings = settings_for(args)
    assert (settings.host, settings.port) == ("::1", 8123)
    assert settings.data_dir == Path("d")
    assert settings.resolved_store == "file:///elsewhere"


def test_serve_with_an_unreadable_configuration_exits_2(tmp_path, capsys):
    missing = tmp_path / "missing.toml"
    assert main(["serve", "--config", str(missing)]) == ExitCode.USAGE
    assert capsys.readouterr().err.startswith(f"error: Cannot read configuration file {missing}")


def test_version_is_printed(capsys):
    assert main(["--version"]) == ExitCode.OK
    assert capsys.readouterr().out.startswith("ashbox 0.")


@pytest.mark.parametrize(
    ("argv", "url", "token"),
    [
        (["backup", "list"], None, None),
        (["--url", "http://a", "backup", "list"], "http://a", None),
        (["backup", "list", "--url", "http://b", "--token", "t"], "http://b", "t"),
        (
            ["--url", "http://a", "--token", "s", "volume", "list", "--url", "http://b"],
            "http://b",
            "s",
        ),
    ],
)
def test_url_and_token_go_before_or_after_the_command(argv, url, token):
    args = build_parser().parse_args(argv)
    assert (args.url, args.token) == (url, token)
