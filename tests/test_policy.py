"""The policy: Cinder's defaults as docs/auth.md lists them, and what each persona may do."""

from __future__ import annotations

from pathlib import Path

import pytest

from ashbox.policy import OPERATION_RULES, Policy, with_implied_roles

DOC = Path(__file__).resolve().parents[1] / "docs" / "auth.md"


def test_the_documented_rules_are_the_codes() -> None:
    table = DOC.read_text().split("| rule | default | operations |", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    documented = {row.split("|")[1].strip(" `"): row.split("|")[2].strip(" `") for row in rows}
    assert documented == {rule.name: rule.check_str for rule in OPERATION_RULES}


@pytest.mark.parametrize(
    ("roles", "project", "rule", "allowed"),
    [
        (["reader"], "p1", "backup:get", True),
        (["reader"], "p1", "backup:create", False),
        (["member"], "p1", "backup:create", True),
        (["member"], "p2", "backup:get", False),  # another project's resource
        (["member"], "p1", "volume_extension:backup_admin_actions:reset_status", False),
        (["admin"], "p2", "volume_extension:backup_admin_actions:reset_status", True),
        (["admin"], "p2", "backup:delete", True),  # admin in any project
        ([], "p1", "backup:get", False),
    ],
)
def test_personas(roles: list[str], project: str, rule: str, allowed: bool) -> None:
    expanded = list(with_implied_roles(roles))
    policy = Policy()
    creds = {"user_id": "u", "project_id": "p1", "roles": expanded}
    creds["is_admin"] = policy.is_admin(creds)
    assert policy.allows(rule, {"project_id": project, "user_id": "u"}, creds) is allowed


def test_implied_roles_follow_keystones_defaults() -> None:
    assert with_implied_roles(["Admin"]) == ("admin", "member", "reader")
    assert with_implied_roles(["member", "auditor"]) == ("member", "auditor", "reader")


def test_an_unknown_rule_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        Policy().allows("backup:fly", {}, {})
