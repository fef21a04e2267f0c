"""`ashbox token create`: the token printed once, its hash kept, the file private."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

from ashbox.cli.main import main
from ashbox.tokens import digest, load_tokens


def test_create_appends_the_hash_and_prints_the_token(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    printed = []
    for user in ("alice", "bob"):
        out = io.StringIO()
        argv = ["token", "create", "--tokens-file", str(tokens), "--user", user]
        code = main([*argv, "--project", "p1", "--role", "admin", "-f", "json"], stdout=out)
        assert code == 0
        printed.append(json.loads(out.getvalue()))
    entries = load_tokens(tokens)
    assert [entries[digest(p["token"])].user_id for p in printed] == ["alice", "bob"]
    assert entries[digest(printed[0]["token"])].roles == ("admin",)
    assert printed[0]["token"] not in tokens.read_text()
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600


def test_bad_names_and_a_missing_file_are_usage_errors(tmp_path: Path) -> None:
    err = io.StringIO()
    argv = ["token", "create", "--tokens-file", str(tmp_path / "t"), "--user", "a b"]
    assert main([*argv, "--project", "p"], stderr=err) == 2
    assert "Bad user id" in err.getvalue()
    assert not (tmp_path / "t").exists()
    assert main(["token", "create", "--user", "a", "--project", "p"], stderr=io.StringIO()) == 2


def test_a_file_that_does_not_parse_is_never_appended_to(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text("[[token]]\nsha256 = 'short'\n")
    err = io.StringIO()
    argv = ["token", "create", "--tokens-file", str(tokens), "--user", "a", "--project", "p"]
    assert main(argv, stderr=err) == 2
    assert "sha256 must be 64" in err.getvalue()
    assert tokens.read_text() == "[[token]]\nsha256 = 'short'\n"
