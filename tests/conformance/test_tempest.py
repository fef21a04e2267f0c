"""Tempest 47.0.0 and cinder-tempest-plugin's backup tests pass against ashbox behind Keystone.

The selection and every expected skip: docs/conformance.md.
"""

from __future__ import annotations

import pytest

from tests.conformance.tempest_run import run_conformance
from tests.keystone_server import Keystone
from tests.server import Server

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.slow]

# Each selected test that skips, and the reason Tempest or the plugin gives.
EXPECTED_SKIPS = {
    "tempest.api.volume.test_volumes_backup.VolumesBackupsTest"
    ".test_backup_create_attached_volume": "compute service is not available",
    "tempest.api.volume.test_volumes_backup.VolumesBackupsTest"
    ".test_bootable_volume_backup_and_restore": "image service is not available",
    "tempest.api.volume.test_volumes_backup.VolumesBackupsTest"
    ".test_volume_backup_incremental": "compute service is not available",
    "tempest.scenario.test_volume_backup_restore.TestVolumeBackupRestore"
    ".test_volume_backup_restore": "compute service is not available",
    **{
        f"cinder_tempest_plugin.rbac.v3.test_backups.ProjectReaderTests{v}.test_{action}_backup": (
            "bugs/2017110"
        )
        for v, action in [("33", "create"), ("33", "delete"), ("33", "restore"), ("39", "update")]
    },
}


def test_the_selected_tempest_tests_pass_or_skip_for_want_of_nova_and_glance(
    tempest: None,
    keystone: Keystone,
    keystone_ashbox: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    run = run_conformance(keystone, tmp_path_factory.mktemp("tempest"))
    report = run.report()
    print(report)
    failed = [r.name for r in run.results if r.status not in ("success", "skip", "xfail")]
    assert not failed, report
    skipped = {r.name: r.reason for r in run.by_status("skip")}
    assert skipped.keys() == EXPECTED_SKIPS.keys(), report
    for name, reason in EXPECTED_SKIPS.items():
        assert reason in skipped[name], (name, skipped[name])
