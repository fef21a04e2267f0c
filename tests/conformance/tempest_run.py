"""Tempest against ashbox behind a real Keystone: the workspace, the run, the results.

Tempest 47.0.0 and cinder-tempest-plugin live in their own venv, built by
`scripts/conformance-venv.sh` (`.venv-conformance-tempest`, or the venv named
by `ASHBOX_TEMPEST_VENV`). A workspace is a directory holding etc/tempest.conf;
`tempest run --config-file` makes its `.stestr.conf` itself, so nothing is
registered under ~/.tempest. docs/conformance.md lists the selected tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.keystone_server import REGION, Credentials, Keystone

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("ASHBOX_TEMPEST_VENV", REPO / ".venv-conformance-tempest"))
# The regex Cinder's own gate uses for its backup jobs.
BACKUP_REGEX = "(test_volume_backup|test_volumes_backup|test_snapshot_backup)"
# cinder-tempest-plugin's secure-RBAC tests of backups (they skip unless enforce_scope).
RBAC_REGEX = r"cinder_tempest_plugin\.rbac\.v3\.test_backups\."
# Tempest's os-services tests (admin): the backup services of the workers.
SERVICES_REGEX = r"tempest\.api\.volume\.admin\.test_volume_services"
# Tempest's quota and limits tests (they count backups too).
QUOTAS_REGEX = (
    r"tempest\.api\.volume\.(admin\.test_volume_quota|admin\.test_volume_snapshot_quotas"
    r"|test_volume_absolute_limits)"
)
# Tempest's volume type tests (admin), and its user message tests, which make their
# message with a volume of a type no backend can hold.
TYPES_REGEX = r"tempest\.api\.volume\.admin\.(test_volume_types|test_user_messages)"
SELECTED_REGEX = f"({BACKUP_REGEX}|{RBAC_REGEX}|{SERVICES_REGEX}|{QUOTAS_REGEX}|{TYPES_REGEX})"
# Classes that skip when Tempest is told there is no Neutron (create_default_network),
# though the tests selected from them touch Neutron only where they need Nova too.
NEUTRON_GATED_REGEX = (
    r"^tempest\.api\.volume\.(test_volumes_backup\.VolumesBackupsTest\."
    r"|test_volumes_snapshots\.VolumesSnapshotTestJSON\.test_snapshot_backup)"
)
# Selected tests that cannot run without Nova and Glance, and fail (not skip) without them.
NOT_RUN = {
    "cinder_tempest_plugin.api.volume.test_volume_backup.VolumesBackupsTest"
    ".test_incremental_backup": "needs Glance and Nova (an image-backed volume, a server), "
    "and has no services decorator to skip without them",
    "tempest.api.volume.admin.test_volume_services.VolumesServicesTestJSON"
    ".test_get_service_by_volume_host_name": "needs a cinder-volume service on the volume's "
    "host; ashbox's workers are cinder-backup services only",
    "tempest.api.volume.admin.test_volume_quotas.VolumeQuotasAdminTestJSON"
    ".test_quota_usage_after_volume_transfer": "needs volume transfers (os-volume-transfer), "
    "which ashbox does not have",
    "tempest.api.volume.admin.test_volume_quotas_negative.VolumeQuotasNegativeTestJSON"
    ".test_volume_extend_gigabytes_quota_deviation": "needs volume extend (os-extend), which "
    "ashbox does not have",
    "tempest.api.volume.admin.test_volume_types.VolumeTypesTest"
    ".test_volume_crud_with_volume_type_and_extra_specs": "needs volume retype (os-retype), "
    "which ashbox does not have",
}
MIN_MICROVERSION = "3.0"
MAX_MICROVERSION = "3.71"  # src/ashbox/api/microversion.py
_PARSER = Path(__file__).with_name("subunit_results.py")


@dataclass(frozen=True, slots=True)
class TestResult:
    test_id: str
    status: str  # success | fail | skip | xfail | uxsuccess
    reason: str  # the skip reason, or the failure's last traceback line
    details: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        """The id without its [id-...,tags] suffix."""
        return self.test_id.split("[", 1)[0]


@dataclass(frozen=True, slots=True)
class TempestRun:
    results: list[TestResult]
    returncode: int
    workspaces: list[Path]  # each holds tempest.log (requests, responses) and results.subunit
    not_run: dict[str, str] = field(default_factory=dict)  # test name: why it is left out

    def merged(self, later: TempestRun) -> TempestRun:
        """These results, with `later`'s replacing those of the same tests."""
        by_id = {r.test_id: r for r in self.results} | {r.test_id: r for r in later.results}
        return TempestRun(
            sorted(by_id.values(), key=_key),
            self.returncode or later.returncode,
            self.workspaces + later.workspaces,
            self.not_run | later.not_run,
        )

    def counts(self) -> Counter[str]:
        kinds = {"success": "passed", "skip": "skipped", "xfail": "passed"}
        return Counter(kinds.get(r.status, "failed") for r in self.results)

    def summary(self) -> str:
        counts = self.counts()
        return f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"

    def by_status(self, status: str) -> list[TestResult]:
        return [r for r in self.results if r.status == status]

    def report(self) -> str:
        """One line per test, then each failure's details, then the summary."""
        lines = [f"{r.status:8} {r.name}  {r.reason}".rstrip() for r in self.results]
        for r in self.results:
            if r.status in ("fail", "uxsuccess") and r.details:
                lines.append(f"\n===== {r.test_id}")
                lines.extend(f"--- {name}\n{text}" for name, text in r.details.items())
        lines.extend(f"not run  {name}  {why}" for name, why in sorted(self.not_run.items()))
        lines.append(self.summary())
        return "\n".join(lines)


def tempest_available() -> str | None:
    """Why Tempest cannot run here, or None when it can."""
    if not (VENV / "bin" / "tempest").exists():
        return f"Tempest: no {VENV}/bin/tempest (run scripts/conformance-venv.sh)"
    return None


def tempest_conf(
    keystone: Keystone,
    workspace: Path,
    *,
    enforce_scope: bool = True,
    neutron: bool = False,
    accounts_file: Path | None = None,
    build_timeout: int = 120,
) -> str:
    """etc/tempest.conf for `keystone`'s catalog (see `Keystone.register_block_storage`).

    Dynamic credentials unless `accounts_file` names pre-provisioned accounts
    (Tempest's accounts.yaml). `neutron` only tells Tempest it may assume
    Neutron: with dynamic credentials that makes it clean up security groups
    through a `network` endpoint, which this catalog lacks.
    """
    admin = keystone.admin
    assert admin is not None, "keystone not started"
    if accounts_file is None:
        auth = f"""\
use_dynamic_credentials = true
admin_username = {admin.username}
admin_password = {admin.password}
admin_project_name = {admin.project_name}
admin_domain_name = Default
"""
    else:
        auth = f"""\
use_dynamic_credentials = false
test_accounts_file = {accounts_file}
"""
    return f"""\
[DEFAULT]
log_file = {workspace / "tempest.log"}
debug = true

[oslo_concurrency]
lock_path = {workspace / "lock"}

[auth]
{auth}create_isolated_networks = false

[identity]
uri_v3 = {keystone.auth_url}
region = {REGION}
v3_endpoint_type = public


[service_available]
cinder = true
nova = false
glance = false
neutron = {str(neutron).lower()}
swift = false

[validation]
run_validation = false

[volume]
catalog_type = block-storage
endpoint_type = publicURL
region = {REGION}
backup_driver = posix
storage_protocol = file
vendor_name = ashbox
min_microversion = {MIN_MICROVERSION}
max_microversion = {MAX_MICROVERSION}
volume_size = 1
build_interval = 1
build_timeout = {build_timeout}

[volume-feature-enabled]
backup = true
snapshot = true
clone = false
manage_volume = false
manage_snapshot = false
extend_attached_volume = false

[enforce_scope]
cinder = {str(enforce_scope).lower()}
"""


def accounts_yaml(accounts: dict[str, tuple[Credentials, list[str]]]) -> str:
    """Tempest's accounts.yaml: one entry per user, with its project and roles."""
    entries = []
    for _label, (creds, roles) in sorted(accounts.items()):
        entry = {
            "username": creds.username,
            "password": creds.password,
            "project_name": creds.project_name,
            "user_domain_name": creds.user_domain_name,
            "project_domain_name": creds.project_domain_name,
            "roles": roles,
        }
        entries.append(entry)
    return json.dumps(entries, indent=1)  # YAML is a superset of JSON


def provision_accounts(keystone: Keystone, *, projects: int = 2) -> str:
    """Pre-provisioned accounts (accounts.yaml) for Tempest: in each of `projects`
    projects a member and a reader, as a `primary` + `project_reader` class needs."""
    accounts: dict[str, tuple[Credentials, list[str]]] = {}
    batch = uuid.uuid4().hex[:8]
    for n in range(1, projects + 1):
        project = f"tempest-accounts-{batch}-{n}"
        for role in ("member", "reader"):
            creds = keystone.create_user(f"tempest-{role}-{batch}-{n}", project, roles=(role,))
            accounts[creds.username] = (creds, [role])
    return accounts_yaml(accounts)


def write_workspace(workspace: Path, conf: str) -> Path:
    """etc/tempest.conf and an empty stestr repository (what `tempest init` makes,
    without registering the workspace under ~/.tempest)."""
    (workspace / "etc").mkdir(parents=True, exist_ok=True)
    (workspace / "lock").mkdir(exist_ok=True)
    path = workspace / "etc" / "tempest.conf"
    path.write_text(conf)
    if not (workspace / ".stestr").exists():
        subprocess.run(
            [str(VENV / "bin" / "stestr"), "init"],
            cwd=workspace,
            capture_output=True,
            timeout=60,
            check=True,
        )
    return path


def list_tests(workspace: Path, regex: str = BACKUP_REGEX) -> list[str]:
    """The test ids `tempest run --regex` would select."""
    result = subprocess.run(
        [*_tempest(workspace), "--list-tests", "--regex", regex],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return sorted(line for line in result.stdout.splitlines() if "." in line and " " not in line)


def run_tempest(
    workspace: Path,
    regex: str = BACKUP_REGEX,
    *,
    exclude: str | None = None,
    concurrency: int = 2,
    timeout: float = 3600,
) -> TempestRun:
    """`tempest run --regex`; every test's result read from its subunit stream.
    The tests of NOT_RUN are excluded, and `exclude` too."""
    cmd = [*_tempest(workspace), "--regex", regex, "--concurrency", str(concurrency), "--subunit"]
    excluded = [re.escape(name) for name in NOT_RUN] + ([exclude] if exclude else [])
    cmd += ["--exclude-regex", "|".join(excluded)]
    stream = workspace / "results.subunit"
    log = workspace / "tempest-run.log"
    with stream.open("wb") as out, log.open("wb") as err:
        proc = subprocess.run(cmd, cwd=workspace, stdout=out, stderr=err, timeout=timeout)
    with stream.open("rb") as data:
        parsed = subprocess.run(
            [str(VENV / "bin" / "python"), str(_PARSER)],
            stdin=data,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    results = _per_test(map(json.loads, parsed.stdout.splitlines()))
    not_run = {name: why for name, why in NOT_RUN.items() if re.search(regex, name)}
    return TempestRun(results, proc.returncode, [workspace], not_run)


def run_conformance(
    keystone: Keystone, root: Path, *, regex: str = SELECTED_REGEX, concurrency: int = 2
) -> TempestRun:
    """The selected tests against the block-storage service in `keystone`'s catalog.

    Two passes. First with dynamic credentials (Tempest makes its own projects
    and users as Keystone's admin) and no Neutron: every selected test. Then
    the Neutron-gated classes again, with pre-provisioned accounts and Neutron
    said to be there: with dynamic credentials that would make Tempest clean up
    security groups through a Neutron this cloud lacks; pre-provisioned
    accounts carry no network, and the selected tests that do need one also
    need Nova, so they still skip with Tempest's own reason.
    """
    dynamic = root / "dynamic"
    write_workspace(dynamic, tempest_conf(keystone, dynamic))
    first = run_tempest(dynamic, regex, concurrency=concurrency)
    accounts = root / "accounts"
    accounts.mkdir(parents=True, exist_ok=True)
    accounts_file = accounts / "accounts.yaml"
    if not accounts_file.exists():
        accounts_file.write_text(provision_accounts(keystone))
    conf = tempest_conf(keystone, accounts, neutron=True, accounts_file=accounts_file)
    write_workspace(accounts, conf)
    gated = NEUTRON_GATED_REGEX
    if regex != SELECTED_REGEX:
        gated = f"(?=.*{regex}){gated}"
    second = run_tempest(accounts, gated, concurrency=concurrency)
    return first.merged(second)


def _tempest(workspace: Path) -> list[str]:
    conf = workspace / "etc" / "tempest.conf"
    return [str(VENV / "bin" / "tempest"), "run", "--config-file", str(conf)]


def _per_test(records: Iterable[dict[str, Any]]) -> list[TestResult]:
    """One result per selected test. A class skipped or broken in setUpClass is
    reported once, as `setUpClass (module.Class)`: each of its tests takes that result."""
    listed: list[str] = []
    results: dict[str, TestResult] = {}
    classes: dict[str, TestResult] = {}
    for record in records:
        test_id, status = record["id"], record["status"]
        if status == "exists":
            listed.append(test_id)
            continue
        result = TestResult(test_id, status, record["reason"], record["details"])
        match = re.fullmatch(r"(setUpClass|tearDownClass) \((.+)\)", test_id)
        if match and match.group(1) == "setUpClass":
            classes[match.group(2)] = result
        else:
            results[test_id] = result
    for test_id in listed:
        if test_id in results:
            continue
        owner = classes.get(test_id.split("[", 1)[0].rsplit(".", 1)[0])
        status, reason = (owner.status, owner.reason) if owner else ("fail", "no result")
        details = owner.details if owner and status != "skip" else {}
        results[test_id] = TestResult(test_id, status, reason, details)
    return sorted(results.values(), key=_key)


def _key(result: TestResult) -> tuple[str, str]:
    return (result.status, result.name)


if __name__ == "__main__":  # python -m tests.conformance.tempest_run WORKSPACE: list the tests
    print("\n".join(list_tests(Path(sys.argv[1]))))
