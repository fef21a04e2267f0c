from __future__ import annotations

import json

import pytest

from ashbox.errors import CorruptData, InvalidInput
from ashbox.repository.config import RepositoryConfig, config_key, load_or_create_config

from ..storage.memory_store import MemoryStore


def test_a_new_container_gets_a_config_with_the_block_size_asked() -> None:
    store = MemoryStore()
    config = load_or_create_config(store, "c", block_size=8192)
    assert config.block_size == 8192
    assert (config.hash, config.compression, config.encryption) == ("blake3", "zstd", "none")
    assert RepositoryConfig.from_json(store.get(config_key("c"))) == config


def test_an_existing_config_wins_over_the_block_size_asked() -> None:
    store = MemoryStore()
    first = load_or_create_config(store, "c", block_size=8192)
    assert load_or_create_config(store, "c", block_size=1 << 20) == first
    assert store.calls["put"] == 1


@pytest.mark.parametrize("block_size", [0, 1000, 4095, 6000, 32 << 20])
def test_a_bad_block_size_is_refused(block_size: int) -> None:
    with pytest.raises(InvalidInput):
        load_or_create_config(MemoryStore(), "c", block_size=block_size)


def test_the_config_is_readable_json_with_every_field() -> None:
    store = MemoryStore()
    load_or_create_config(store, "c", block_size=4096)
    doc = json.loads(store.get("c/config"))
    assert doc["format"] == "ashbox-repository"
    assert doc["format_version"] == 1
    assert doc["keys"] == []
    assert set(doc) == {
        "format", "format_version", "repository_id", "created_at", "block_size", "hash",
        "compression", "encryption", "keys",
    }  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [
        {"format_version": 3},
        {"format": "restic"},
        {"block_size": "big"},
        {"block_size": 100},
        {"encryption": "aes-256-gcm"},
        {"hash": "sha256"},
        {"created_at": "yesterday"},
        {"created_at": "2026-01-01T00:00:00"},
        {"keys": [{"kind": "wrapped"}]},
    ],
)
def test_a_config_this_version_cannot_use_is_refused(change: dict[str, object]) -> None:
    store = MemoryStore()
    load_or_create_config(store, "c", block_size=4096)
    doc = json.loads(store.get("c/config"))
    doc.update(change)
    store.put("c/config", json.dumps(doc).encode())
    with pytest.raises(CorruptData):
        load_or_create_config(store, "c", block_size=4096)


def test_a_config_that_is_not_json_is_corrupt() -> None:
    store = MemoryStore()
    store.put("c/config", b"\xff{")
    with pytest.raises(CorruptData):
        load_or_create_config(store, "c", block_size=4096)
