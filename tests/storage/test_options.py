"""The store options in the configuration: TOML values, ASHBOX_* variables,
booleans, and StoreOptions built from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from ashbox.config import Settings, load_settings
from ashbox.errors import InvalidInput
from ashbox.storage import StoreOptions


def test_store_options_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "ashbox.toml"
    config.write_text(
        'store = "s3://backups/site-a"\n'
        's3_endpoint_url = "https://s3.example:7480"\n'
        "store_verify_tls = false\n"
        "store_bandwidth = 104857600\n"
        "store_timeout_seconds = 10\n"
    )
    env = {
        "ASHBOX_S3_SECRET_KEY": "from-env",
        "ASHBOX_STORE_CONCURRENCY": "4",
        "ASHBOX_SWIFT_AUTH_VERSION": "3",
    }
    options = StoreOptions.of(load_settings(config, env))
    assert options.s3_endpoint_url == "https://s3.example:7480"
    assert options.store_verify_tls is False
    assert options.store_bandwidth == 100 * 1024 * 1024
    assert options.store_timeout_seconds == 10.0
    assert options.s3_secret_key == "from-env"
    assert options.store_concurrency == 4
    assert options.swift_auth_version == "3"


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("1", True), ("TRUE", True), ("false", False), ("0", False), ("no", False)],
)
def test_a_boolean_option_reads_true_and_false_texts(text: str, value: bool) -> None:
    settings = load_settings(None, {"ASHBOX_STORE_VERIFY_TLS": text})
    assert settings.store_verify_tls is value


def test_a_bad_boolean_or_number_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        load_settings(None, {"ASHBOX_STORE_VERIFY_TLS": "maybe"})
    with pytest.raises(InvalidInput):
        load_settings(None, {"ASHBOX_STORE_BANDWIDTH": "100M"})


def test_every_store_option_is_a_setting_with_the_same_default() -> None:
    settings = Settings()
    assert StoreOptions.of(settings) == StoreOptions()
