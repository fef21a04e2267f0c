"""Fixtures of the CLI tests: a FakeCinder served over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fake_cinder import FakeCinder, served


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCinder]:
    """A FakeCinder on a free port of 127.0.0.1, which `ashbox` finds through
    `ASHBOX_URL`; the token is the default one."""
    fake = FakeCinder()
    with served(fake) as url:
        monkeypatch.setenv("ASHBOX_URL", url)
        monkeypatch.delenv("ASHBOX_TOKEN", raising=False)
        yield fake
