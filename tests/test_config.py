"""Settings from defaults, a TOML file and ASHBOX_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from ashbox.config import Settings, load_settings
from ashbox.errors import InvalidInput


def test_environment_overrides_the_file_and_converts_types(tmp_path: Path) -> None:
    config = tmp_path / "ashbox.toml"
    config.write_text('data_dir = "/srv/a"\nport = 9000\nstore = "file:///mnt/nfs"\n')
    settings = load_settings(config, {"ASHBOX_PORT": "9100", "ASHBOX_DATA_DIR": "/srv/b"})
    assert settings.port == 9100 and settings.data_dir == Path("/srv/b")
    assert settings.resolved_store == "file:///mnt/nfs"


def test_defaults_put_everything_under_the_data_dir() -> None:
    settings = load_settings(None, {"ASHBOX_DATA_DIR": "/srv/x"})
    assert settings.resolved_database_url == "sqlite:////srv/x/ashbox.db"
    assert settings.resolved_store == "file:///srv/x/store"
    assert Settings().port == 8776


def test_unknown_options_and_bad_values_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "ashbox.toml"
    config.write_text("colour = 1\n")
    with pytest.raises(InvalidInput, match="Unknown configuration options: colour"):
        load_settings(config, {})
    with pytest.raises(InvalidInput, match="Bad value for configuration option port"):
        load_settings(None, {"ASHBOX_PORT": "eighty"})


def test_keystone_authtoken_comes_from_its_table_and_per_option_variables(
    tmp_path: Path,
) -> None:
    config = tmp_path / "ashbox.toml"
    config.write_text(
        'auth_strategy = "keystone"\n[keystone_authtoken]\n'
        'www_authenticate_uri = "https://ks/v3"\nauth_url = "https://ks/v3"\n'
        'insecure = false\nmemcached_servers = ["m1:11211", "m2:11211"]\n'
    )
    settings = load_settings(config, {"ASHBOX_KEYSTONE_AUTHTOKEN_PASSWORD": "s3cret"})
    assert settings.keystone_authtoken == {
        "www_authenticate_uri": "https://ks/v3",
        "auth_url": "https://ks/v3",
        "insecure": "false",
        "memcached_servers": "m1:11211,m2:11211",
        "password": "s3cret",
    }
    only_env = load_settings(None, {"ASHBOX_KEYSTONE_AUTHTOKEN_AUTH_URL": "http://k/v3"})
    assert only_env.keystone_authtoken == {"auth_url": "http://k/v3"}
    config.write_text("[keystone_authtoken]\nauth_url = {nested = 1}\n")
    with pytest.raises(InvalidInput, match="keystone_authtoken"):
        load_settings(config, {})


def test_the_example_deployment_configuration_loads() -> None:
    example = Path(__file__).resolve().parents[1] / "deploy" / "ashbox.toml"
    settings = load_settings(example, {})
    assert settings.auth_strategy == "keystone"
    assert settings.resolved_database_url.startswith("postgresql+psycopg://")
    assert settings.keystone_authtoken["www_authenticate_uri"].startswith("https://")
