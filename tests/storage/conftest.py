"""The `store` fixture: one shared suite runs against every Store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ashbox.storage import Store, open_store

from .memory_store import MemoryStore


@pytest.fixture(params=["posix", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "posix":
        yield open_store(f"file://{tmp_path / 'store'}")
    else:
        yield MemoryStore()
