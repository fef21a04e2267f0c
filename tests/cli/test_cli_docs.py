from __future__ import annotations

import dataclasses
from pathlib import Path

from ashbox.cli.main import main
from ashbox.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_configuration_option_is_documented_with_its_variable():
    text = (DOCS / "configuration.md").read_text()
    for field in dataclasses.fields(Settings):
        row = f"| `{field.name}` | `ASHBOX_{field.name.upper()}` |"
        assert row in text, field.name


COMMANDS = [
    "volume create",
    "volume import",
    "volume show",
    "volume list",
    "volume delete",
    "backup create",
    "backup show",
    "backup list",
    "backup restore",
    "backup delete",
    "backup update",
    "backup reset-status",
    "backup force-delete",
    "backup export",
    "backup import",
    "volume reset-status",
    "snapshot create",
    "snapshot show",
    "snapshot list",
    "snapshot update",
    "snapshot delete",
    "snapshot reset-status",
    "quota show",
    "quota defaults",
    "quota update",
    "quota delete",
    "limits",
    "message list",
    "message show",
    "message delete",
    "serve",
    "repo stats",
    "repo check",
    "repo rebuild-index",
    "repo gc",
    "repo recover",
    "backup verify",
    "repo key list",
    "repo key add",
    "repo key remove",
]


def test_every_cli_command_is_documented(capsys):
    text = (DOCS / "cli.md").read_text()
    for command in COMMANDS:
        assert main([*command.split(), "--help"]) == 0
        assert f"ashbox {command}" in text, command
    capsys.readouterr()
