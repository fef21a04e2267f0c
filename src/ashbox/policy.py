"""Who may do what: oslo.policy with Cinder's rule names and secure-RBAC defaults.

The defaults are Cinder's current ones: readers of a project read it, members
change it, `admin` in any project is an admin of every project, and the admin
actions need `admin_api`. An operator overrides any rule in a YAML or JSON file
(`policy_file`), exactly as in Cinder; docs/policy.md lists the rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from oslo_config import cfg
from oslo_policy import policy as oslo

from ashbox.errors import Forbidden, InvalidInput

CONTEXT_IS_ADMIN = "context_is_admin"
ADMIN_API = "rule:admin_api"
READER = "rule:xena_system_admin_or_project_reader"
MEMBER = "rule:xena_system_admin_or_project_member"
# Keystone's default role hierarchy: each role implies the ones after it.
IMPLIED_ROLES = {"admin": ("member", "reader"), "member": ("reader",)}

BASE_RULES = [
    oslo.RuleDefault(CONTEXT_IS_ADMIN, "role:admin", "Who is an admin of every project."),
    oslo.RuleDefault(
        "admin_api",
        "is_admin:True or (role:admin and is_admin_project:True)",
        "Default rule for the admin APIs.",
    ),
    oslo.RuleDefault(
        "xena_system_admin_or_project_reader",
        "(role:admin) or (role:reader and project_id:%(project_id)s)",
        "An admin, or a reader of the project.",
    ),
    oslo.RuleDefault(
        "xena_system_admin_or_project_member",
        "(role:admin) or (role:member and project_id:%(project_id)s)",
        "An admin, or a member of the project.",
    ),
]

# (rule name, check string, description, [(method, path)])
_OPERATIONS: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    ("backup:get_all", READER, "List backups.", [("GET", "/backups"), ("GET", "/backups/detail")]),
    (
        "backup:backup_project_attribute",
        ADMIN_API,
        "Show a backup's project and user ids.",
        [("GET", "/backups/{backup_id}"), ("GET", "/backups/detail")],
    ),
    ("backup:create", MEMBER, "Create a backup.", [("POST", "/backups")]),
    ("backup:get", READER, "Show a backup.", [("GET", "/backups/{backup_id}")]),
    ("backup:update", MEMBER, "Update a backup.", [("PUT", "/backups/{backup_id}")]),
    ("backup:delete", MEMBER, "Delete a backup.", [("DELETE", "/backups/{backup_id}")]),
    ("backup:restore", MEMBER, "Restore a backup.", [("POST", "/backups/{backup_id}/restore")]),
    (
        "backup:backup-import",
        ADMIN_API,
        "Import a backup record.",
        [("POST", "/backups/import_record")],
    ),
    (
        "backup:export-import",
        ADMIN_API,
        "Export a backup record.",
        [("GET", "/backups/{backup_id}/export_record")],
    ),
    (
        "volume_extension:backup_admin_actions:reset_status",
        ADMIN_API,
        "Reset a backup's status.",
        [("POST", "/backups/{backup_id}/action (os-reset_status)")],
    ),
    (
        "volume_extension:backup_admin_actions:force_delete",
        ADMIN_API,
        "Delete a backup in any status.",
        [("POST", "/backups/{backup_id}/action (os-force_delete)")],
    ),
    ("volume:create", MEMBER, "Create a volume.", [("POST", "/volumes")]),
    ("volume:get", READER, "Show a volume.", [("GET", "/volumes/{volume_id}")]),
    ("volume:get_all", READER, "List volumes.", [("GET", "/volumes"), ("GET", "/volumes/detail")]),
    ("volume:delete", MEMBER, "Delete a volume.", [("DELETE", "/volumes/{volume_id}")]),
    (
        "volume_extension:volume_host_attribute",
        ADMIN_API,
        "Show a volume's host.",
        [("GET", "/volumes/{volume_id}"), ("GET", "/volumes/detail")],
    ),
    (
        "volume_extension:volume_mig_status_attribute",
        ADMIN_API,
        "Show a volume's migration status.",
        [("GET", "/volumes/{volume_id}"), ("GET", "/volumes/detail")],
    ),
    (
        "volume_extension:volume_tenant_attribute",
        READER,
        "Show a volume's project id.",
        [("GET", "/volumes/{volume_id}"), ("GET", "/volumes/detail")],
    ),
    (
        "volume_extension:volume_manage",
        ADMIN_API,
        "Manage an existing volume file.",
        [("POST", "/manageable_volumes"), ("POST", "/os-volume-manage")],
    ),
    (
        "volume_extension:volume_actions:attach",
        MEMBER,
        "Mark a volume attached.",
        [("POST", "/volumes/{volume_id}/action (os-attach)")],
    ),
    (
        "volume_extension:volume_actions:detach",
        MEMBER,
        "Mark a volume detached.",
        [("POST", "/volumes/{volume_id}/action (os-detach)")],
    ),
    (
        "volume_extension:volume_admin_actions:reset_status",
        ADMIN_API,
        "Reset a volume's status.",
        [("POST", "/volumes/{volume_id}/action (os-reset_status)")],
    ),
    (
        "volume_extension:volume_admin_actions:force_delete",
        ADMIN_API,
        "Delete a volume in error_deleting or error_backing-up too.",
        [("POST", "/volumes/{volume_id}/action (os-force_delete)")],
    ),
    (
        "volume_extension:services:index",
        ADMIN_API,
        "List the backup services (one per worker host).",
        [("GET", "/os-services")],
    ),
    (
        "volume_extension:services:update",
        ADMIN_API,
        "Enable or disable a backup service (also freeze, thaw and failover_host).",
        [
            ("PUT", "/os-services/enable"),
            ("PUT", "/os-services/disable"),
            ("PUT", "/os-services/disable-log-reason"),
            ("PUT", "/os-services/freeze"),
            ("PUT", "/os-services/thaw"),
            ("PUT", "/os-services/failover_host"),
        ],
    ),
    (
        "volume_extension:quotas:show",
        READER,
        "Show a project's quotas, with their usage, and the default quotas.",
        [
            ("GET", "/os-quota-sets/{project_id}"),
            ("GET", "/os-quota-sets/{project_id}?usage=True"),
            ("GET", "/os-quota-sets/{project_id}/defaults"),
        ],
    ),
    (
        "volume_extension:quotas:update",
        ADMIN_API,
        "Set a project's quotas.",
        [("PUT", "/os-quota-sets/{project_id}")],
    ),
    (
        "volume_extension:quotas:delete",
        ADMIN_API,
        "Reset a project's quotas to the defaults.",
        [("DELETE", "/os-quota-sets/{project_id}")],
    ),
    (
        "volume_extension:quota_classes",
        ADMIN_API,
        "Show and set the limits of a quota class.",
        [
            ("GET", "/os-quota-class-sets/{class_name}"),
            ("PUT", "/os-quota-class-sets/{class_name}"),
        ],
    ),
    (
        "limits_extension:used_limits",
        READER,
        "Show a project's limits and usage.",
        [("GET", "/limits")],
    ),
    ("volume:create_snapshot", MEMBER, "Create a snapshot.", [("POST", "/snapshots")]),
    ("volume:get_snapshot", READER, "Show a snapshot.", [("GET", "/snapshots/{snapshot_id}")]),
    (
        "volume:get_all_snapshots",
        READER,
        "List snapshots.",
        [("GET", "/snapshots"), ("GET", "/snapshots/detail")],
    ),
    (
        "volume:update_snapshot",
        MEMBER,
        "Update a snapshot.",
        [("PUT", "/snapshots/{snapshot_id}")],
    ),
    (
        "volume:delete_snapshot",
        MEMBER,
        "Delete a snapshot.",
        [("DELETE", "/snapshots/{snapshot_id}")],
    ),
    (
        "volume_extension:snapshot_admin_actions:reset_status",
        ADMIN_API,
        "Reset a snapshot's status.",
        [("POST", "/snapshots/{snapshot_id}/action (os-reset_status)")],
    ),
    (
        "volume_extension:snapshot_admin_actions:force_delete",
        ADMIN_API,
        "Delete a snapshot in any status.",
        [("POST", "/snapshots/{snapshot_id}/action (os-force_delete)")],
    ),
    ("volume_extension:type_create", ADMIN_API, "Create a volume type.", [("POST", "/types")]),
    (
        "volume_extension:type_update",
        ADMIN_API,
        "Update a volume type.",
        [("PUT", "/types/{type_id}")],
    ),
    (
        "volume_extension:type_delete",
        ADMIN_API,
        "Delete a volume type.",
        [("DELETE", "/types/{type_id}")],
    ),
    ("volume_extension:type_get", READER, "Show a volume type.", [("GET", "/types/{type_id}")]),
    ("volume_extension:type_get_all", READER, "List volume types.", [("GET", "/types")]),
    (
        "volume_extension:access_types_extra_specs",
        READER,
        "Show a volume type's extra_specs in its list and show.",
        [("GET", "/types"), ("GET", "/types/{type_id}")],
    ),
    (
        "volume_extension:access_types_qos_specs_id",
        ADMIN_API,
        "Show a volume type's qos_specs_id in its list and show.",
        [("GET", "/types"), ("GET", "/types/{type_id}")],
    ),
    (
        "volume_extension:volume_type_access",
        READER,
        "Show a volume type's os-volume-type-access:is_public.",
        [("GET", "/types"), ("GET", "/types/{type_id}")],
    ),
    (
        "volume_extension:types_extra_specs:index",
        READER,
        "List a volume type's extra specs.",
        [("GET", "/types/{type_id}/extra_specs")],
    ),
    (
        "volume_extension:types_extra_specs:show",
        READER,
        "Show one extra spec of a volume type.",
        [("GET", "/types/{type_id}/extra_specs/{key}")],
    ),
    (
        "volume_extension:types_extra_specs:create",
        ADMIN_API,
        "Add extra specs to a volume type.",
        [("POST", "/types/{type_id}/extra_specs")],
    ),
    (
        "volume_extension:types_extra_specs:update",
        ADMIN_API,
        "Set one extra spec of a volume type.",
        [("PUT", "/types/{type_id}/extra_specs/{key}")],
    ),
    (
        "volume_extension:types_extra_specs:delete",
        ADMIN_API,
        "Delete one extra spec of a volume type.",
        [("DELETE", "/types/{type_id}/extra_specs/{key}")],
    ),
    (
        "volume_extension:types_extra_specs:read_sensitive",
        ADMIN_API,
        "See every extra spec, not only multiattach, replication_enabled and "
        "RESKEY:availability_zones.",
        [("GET", "/types"), ("GET", "/types/{type_id}"), ("GET", "/types/{type_id}/extra_specs")],
    ),
    (
        "volume_extension:volume_type_encryption:create",
        ADMIN_API,
        "Make a volume type encrypted.",
        [("POST", "/types/{type_id}/encryption")],
    ),
    (
        "volume_extension:volume_type_encryption:get",
        ADMIN_API,
        "Show a volume type's encryption, or one of its fields.",
        [("GET", "/types/{type_id}/encryption"), ("GET", "/types/{type_id}/encryption/{key}")],
    ),
    (
        "volume_extension:volume_type_encryption:update",
        ADMIN_API,
        "Change a volume type's encryption.",
        [("PUT", "/types/{type_id}/encryption/{encryption_id}")],
    ),
    (
        "volume_extension:volume_type_encryption:delete",
        ADMIN_API,
        "Delete a volume type's encryption.",
        [("DELETE", "/types/{type_id}/encryption/{encryption_id}")],
    ),
    ("message:get_all", READER, "List messages.", [("GET", "/messages")]),
    ("message:get", READER, "Show message.", [("GET", "/messages/{message_id}")]),
    ("message:delete", MEMBER, "Delete message.", [("DELETE", "/messages/{message_id}")]),
]

OPERATION_RULES = [
    oslo.DocumentedRuleDefault(
        name=name,
        check_str=check,
        description=description,
        operations=[{"method": method, "path": path} for method, path in operations],
        scope_types=["project"],
    )
    for name, check, description, operations in _OPERATIONS
]
RULE_NAMES = frozenset(rule.name for rule in OPERATION_RULES)


def with_implied_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """`roles` and every role they imply, as Keystone expands them in a token."""
    result = dict.fromkeys(role.lower() for role in roles)
    for role in list(result):
        result.update(dict.fromkeys(IMPLIED_ROLES.get(role, ())))
    return tuple(result)


class Policy:
    """The rules in force: Cinder's defaults, overridden by an optional policy file."""

    def __init__(self, policy_file: str = "") -> None:
        conf = cfg.ConfigOpts()
        conf([], project="ashbox", default_config_files=[], default_config_dirs=[])
        if policy_file and not Path(policy_file).is_file():
            raise InvalidInput(f"policy_file {policy_file} is not a file")
        self._enforcer = oslo.Enforcer(conf, policy_file=policy_file or None, use_conf=False)
        self._enforcer.register_defaults([*BASE_RULES, *OPERATION_RULES])
        try:
            self._enforcer.load_rules(force_reload=True)
        except Exception as exc:  # oslo.policy raises parse errors of several kinds
            raise InvalidInput(f"Cannot load policy_file {policy_file}: {exc}") from exc

    def is_admin(self, creds: dict[str, Any]) -> bool:
        """Cinder's `context.is_admin`: the `context_is_admin` rule holds."""
        return bool(self._enforcer.enforce(CONTEXT_IS_ADMIN, {}, creds))

    def allows(self, rule: str, target: dict[str, Any], creds: dict[str, Any]) -> bool:
        if rule not in RULE_NAMES:
            raise KeyError(f"unknown policy rule {rule!r}")
        try:
            return bool(self._enforcer.enforce(rule, target, creds))
        except oslo.InvalidScope:
            return False

    def authorize(self, rule: str, target: dict[str, Any], creds: dict[str, Any]) -> None:
        """Forbidden, with Cinder's message, unless `rule` allows `creds` on `target`."""
        if not self.allows(rule, target, creds):
            raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


@cache
def default_policy() -> Policy:
    """Cinder's defaults alone, built once: loading rules costs milliseconds."""
    return Policy()
