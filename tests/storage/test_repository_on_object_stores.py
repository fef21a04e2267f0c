"""End to end: a repository backs up and restores through the S3 store on
Ceph radosgw and the Swift store on a Swift all-in-one, bytes identical."""

from __future__ import annotations

from pathlib import Path

import pytest

from ashbox.repository.check import check_repository
from ashbox.repository.repository import Repository
from ashbox.storage import Store, open_store
from ashbox.storage.options import MiB
from ashbox.volumes import create_volume_file
from tests.object_stores import RgwServer, SwiftServer, unique_name

from ..repository.conftest import make_image, sha256
from ..repository.memory_index import MemoryIndex

BLOCK = 64 * 1024


@pytest.fixture(params=["s3", "swift"])
def object_store(request: pytest.FixtureRequest) -> Store:
    if request.param == "s3":
        rgw: RgwServer = request.getfixturevalue("rgw_server")
        return open_store(f"s3://{unique_name()}/backups", rgw.options())
    swift: SwiftServer = request.getfixturevalue("swift_server")
    return open_store(f"swift://{unique_name()}/backups", swift.options())


def test_a_backup_and_its_incremental_restore_bytes_identical(
    object_store: Store, tmp_path: Path
) -> None:
    repo = Repository.open(
        object_store,
        "volumebackups",
        MemoryIndex(),
        block_size=BLOCK,
        pack_size=16 * BLOCK,
        threads=2,
        upload_threads=2,
        gc_grace_seconds=0,
    )
    size = 6 * MiB + 12345
    first = make_image(tmp_path / "v1", size, seed=1, block=BLOCK)
    repo.backup("b1", first)
    second = make_image(tmp_path / "v2", size, seed=2, block=BLOCK)
    repo.backup("b2", second, parent_id="b1")

    for backup_id, source in (("b1", first), ("b2", second)):
        target = tmp_path / f"restored-{backup_id}"
        create_volume_file(target, size)
        repo.restore(backup_id, target, new_volume=True)
        assert sha256(target) == sha256(source)
        repo.verify(backup_id)
    report = check_repository(repo, read_data=True)
    assert report.ok, report.damages
    assert report.manifests_checked == 2
    assert any(key.startswith("volumebackups/data/") for key in object_store.list(""))
