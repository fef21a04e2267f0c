"""Configuration: defaults for the embedded mode, one TOML file, `ASHBOX_*` variables.

Precedence, lowest first: defaults, the TOML file, the environment, command-line
flags (applied by the caller with `dataclasses.replace`). Every option is listed
in docs/configuration.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ashbox.errors import InvalidInput

MiB = 1024 * 1024
ENCRYPTIONS = ("none", "aes-256-gcm")
NOTIFICATION_DRIVERS = ("log", "noop", "messaging")
KEY_MANAGERS = ("embedded", "barbican")
# ASHBOX_KEYSTONE_AUTHTOKEN_AUTH_URL=... sets keystone_authtoken's auth_url.
AUTHTOKEN_ENV = "ASHBOX_KEYSTONE_AUTHTOKEN_"


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("ashbox-data")
    database_url: str = ""  # default: sqlite:///<data_dir>/ashbox.db
    store: str = ""  # default: file://<data_dir>/store; or s3://bucket/pre, swift://container/pre
    s3_endpoint_url: str = ""  # the S3 server; empty: AWS
    s3_region: str = ""  # empty: boto3's own configuration (AWS_REGION, ~/.aws/config)
    s3_access_key: str = ""  # empty (with s3_secret_key): boto3's credential chain
    s3_secret_key: str = field(default="", repr=False)
    s3_addressing_style: str = "auto"  # auto | path | virtual
    store_ca_bundle: str = ""  # PEM file of the CAs trusted for the store's HTTPS
    store_verify_tls: bool = True
    swift_auth_url: str = ""  # e.g. https://keystone:5000/v3 or http://proxy:8080/auth/v1.0
    swift_auth_version: str = "1"  # 1 (tempauth) | 3 (Keystone v3)
    swift_user: str = ""  # v1: account:user
    swift_key: str = field(default="", repr=False)  # v1 key, v3 password
    swift_project_name: str = ""
    swift_user_domain_name: str = "Default"
    swift_project_domain_name: str = "Default"
    swift_region_name: str = ""
    store_timeout_seconds: float = 30.0  # connect, and each wait for the server to answer
    store_retries: int = 5  # retries of a request failing transiently (5xx, throttled, timeout)
    store_bandwidth: int = 0  # bytes per second per process, all stores together; 0: no limit
    store_concurrency: int = 16  # requests in flight per store per process; 0: no limit
    store_multipart_threshold: int = 32 * MiB  # S3 puts, S3/Swift gets this large go in parts
    store_part_size: int = 8 * MiB  # at least 5 MiB (S3's smallest part)
    database_pool_size: int = 10  # connections each process keeps open (PostgreSQL)
    database_max_overflow: int = 20  # more connections a process may open at a peak
    volumes_dir: str = ""  # default: <data_dir>/volumes
    volume_roots: str = ""  # ":"-separated; default: the working directory and the temp dir
    shared_volume_roots: str = ""  # ":"-separated dirs that every worker mounts
    host: str = "127.0.0.1"
    port: int = 8776
    auth_strategy: str = "noauth"  # noauth | token | keystone
    tokens_file: str = ""  # auth_strategy = "token": hashed static tokens (ashbox.tokens)
    keystone_authtoken: dict[str, str] = field(default_factory=dict)  # auth_token's options
    policy_file: str = ""  # oslo.policy overrides of Cinder's rules
    tls_cert: str = ""  # PEM certificate chain; with tls_key the API speaks HTTPS
    tls_key: str = ""
    availability_zone: str = "nova"
    volume_backend_name: str = "ashbox"  # the capability volume types' extra specs may ask for
    default_volume_type: str = "__DEFAULT__"  # the type of a volume created without one
    worker_name: str = ""  # default: the machine's host name
    default_container: str = "volumebackups"
    max_concurrent_operations: int = 2  # creates and restores one host runs at once; 0: no limit
    worker_tasks: int = 4  # tasks of any kind one worker process runs at once
    service_down_seconds: float = 60.0  # a worker silent this long is down
    lease_seconds: float = 60.0
    heartbeat_seconds: float = 10.0
    poll_seconds: float = 0.5
    max_attempts: int = 3
    block_size: int = 1 * MiB
    pack_size: int = 16 * MiB
    compression_level: int = 1
    pipeline_threads: int = 2
    upload_threads: int = 2
    encryption: str = "none"  # of containers created from now on: none | aes-256-gcm
    key_file: str = ""  # holds the passphrase or key of the encrypted containers
    metrics_enabled: bool = True  # the API serves GET /metrics (docs/metrics.md), with no token
    metrics_host: str = "127.0.0.1"  # the address `ashbox worker` serves its metrics on
    metrics_port: int = 0  # `ashbox worker`'s metrics port, one per process of a host; 0: none
    quota_volumes: int = 10  # each project's default limits (Cinder's); -1: unlimited
    quota_snapshots: int = 10
    quota_gigabytes: int = 1000  # GiB of volumes and snapshots
    quota_backups: int = 10
    quota_backup_gigabytes: int = 1000  # GiB: each backup counts its volume's size
    quota_groups: int = 10
    per_volume_size_limit: int = -1  # GiB, the largest volume one may create
    notification_driver: str = "log"  # log | noop | messaging (oslo.messaging)
    notification_transport_url: str = ""  # messaging: e.g. rabbit://user:pass@host:5672/
    notification_topics: str = "notifications"  # ","-separated, as oslo.messaging's topics
    key_manager: str = "embedded"  # embedded | barbican (through castellan)
    key_manager_master_key_file: str = ""  # embedded; default: <data_dir>/key-manager.key
    key_manager_options: dict[str, str] = field(default_factory=dict)  # castellan's, "group.opt"
    message_ttl: int = 2592000  # seconds a user message is kept (Cinder's message_ttl)
    message_reap_interval: int = 86400  # seconds between two reaps of expired messages
    gc_grace_seconds: float = 3600.0
    gc_interval_seconds: float = 3600.0
    gc_repack_live_fraction: float = 0.5
    config_file: str = ""  # set by load_settings: the file the settings came from

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'ashbox.db'}"

    @property
    def resolved_store(self) -> str:
        return self.store or f"file://{self.data_dir.resolve() / 'store'}"

    @property
    def resolved_volumes_dir(self) -> Path:
        return Path(self.volumes_dir) if self.volumes_dir else self.data_dir.resolve() / "volumes"

    @property
    def resolved_volume_roots(self) -> list[Path]:
        given = [r for r in self.volume_roots.split(":") if r]
        if given:
            roots = [Path(r) for r in given]
        else:
            roots = [Path.cwd(), Path(tempfile.gettempdir()), Path("/tmp")]
        return [Path(os.path.realpath(r)) for r in roots]

    @property
    def resolved_shared_volume_roots(self) -> list[Path]:
        return [Path(os.path.realpath(r)) for r in self.shared_volume_roots.split(":") if r]

    @property
    def reserved_paths(self) -> list[Path]:
        """The service's own files: no volume may be managed from them."""
        paths = [self.data_dir, self.resolved_volumes_dir]
        database = self.resolved_database_url
        if database.startswith("sqlite:///"):
            db = Path(database.removeprefix("sqlite:///"))
            paths += [db.with_name(db.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
        if self.resolved_store.startswith("file://"):
            paths.append(Path(self.resolved_store.removeprefix("file://")))
        if self.config_file:
            paths.append(Path(self.config_file))
        if self.key_file:
            paths.append(Path(self.key_file))
        paths.append(self.resolved_key_manager_master_key_file)
        return [Path(os.path.realpath(p)) for p in paths]

    @property
    def resolved_key_manager_master_key_file(self) -> Path:
        if self.key_manager_master_key_file:
            return Path(self.key_manager_master_key_file)
        return self.data_dir.resolve() / "key-manager.key"

    @property
    def resolved_worker_name(self) -> str:
        return self.worker_name or os.uname().nodename


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from the TOML file (if any) overlaid by `ASHBOX_*` variables."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    path = config_file or (Path(env["ASHBOX_CONFIG"]) if "ASHBOX_CONFIG" in env else None)
    if path is not None:
        try:
            with path.open("rb") as f:
                values.update(tomllib.load(f))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"Cannot read configuration file {path}: {exc}") from exc
    for option in dataclasses.fields(Settings):
        key = "ASHBOX_" + option.name.upper()
        if key in env:
            values[option.name] = env[key]
    authtoken = {
        name.removeprefix(AUTHTOKEN_ENV).lower(): value
        for name, value in env.items()
        if name.startswith(AUTHTOKEN_ENV)
    }
    if authtoken:
        from_file = values.get("keystone_authtoken", {})
        values["keystone_authtoken"] = {
            **(from_file if isinstance(from_file, dict) else {}),
            **authtoken,
        }
    if path is not None:
        values["config_file"] = str(path)
    return settings_from(values)


def settings_from(values: Mapping[str, object]) -> Settings:
    """Settings from plain values (strings are converted); unknown names are an error."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InvalidInput(f"Unknown configuration options: {', '.join(unknown)}")
    converted: dict[str, object] = {}
    default = Settings()
    for name, raw in values.items():
        kind = type(getattr(default, name))
        try:
            if name in _TABLES_OF_TABLES:
                table = json.loads(raw) if isinstance(raw, str) else raw  # a variable: JSON
                if not isinstance(table, dict):
                    raise TypeError("expected a table")
                converted[name] = dict(_flat(table))
            else:
                converted[name] = _convert(raw, kind)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"Bad value for configuration option {name}: {raw!r}") from exc
    settings = dataclasses.replace(default, **converted)  # type: ignore[arg-type]
    _check_encryption(settings)
    _check_notifications(settings)
    _check_key_manager(settings)
    return settings


def _check_key_manager(settings: Settings) -> None:
    if settings.key_manager not in KEY_MANAGERS:
        raise InvalidInput(
            f"Bad value for configuration option key_manager: {settings.key_manager!r} "
            f"(one of {', '.join(KEY_MANAGERS)})"
        )


def _check_notifications(settings: Settings) -> None:
    if settings.notification_driver not in NOTIFICATION_DRIVERS:
        raise InvalidInput(
            "Bad value for configuration option notification_driver: "
            f"{settings.notification_driver!r} (one of {', '.join(NOTIFICATION_DRIVERS)})"
        )
    if settings.notification_driver == "messaging" and not settings.notification_transport_url:
        raise InvalidInput(
            "Configuration option notification_driver = messaging needs notification_transport_url."
        )


def _check_encryption(settings: Settings) -> None:
    if settings.encryption not in ENCRYPTIONS:
        raise InvalidInput(
            f"Bad value for configuration option encryption: {settings.encryption!r} "
            f"(one of {', '.join(ENCRYPTIONS)})"
        )
    if settings.encryption != "none" and not settings.key_file:
        raise InvalidInput(
            f"Configuration option encryption = {settings.encryption} needs key_file."
        )


def _convert(raw: object, kind: type) -> object:
    if kind is dict and isinstance(raw, dict):
        return {str(k): _option_text(v) for k, v in raw.items()}
    if isinstance(raw, kind) and not (kind is int and isinstance(raw, bool)):
        return raw
    if kind is bool and isinstance(raw, str) and raw.strip().lower() in _BOOLEANS:
        return _BOOLEANS[raw.strip().lower()]
    if kind is bool and isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if issubclass(kind, Path) and isinstance(raw, str):
        return Path(raw)
    if kind in (int, float) and isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
        return kind(raw)
    if kind is str and isinstance(raw, str):
        return raw
    raise TypeError(f"expected {kind.__name__}")


# Options whose tables may hold tables: castellan's option groups.
_TABLES_OF_TABLES = frozenset({"key_manager_options"})
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _flat(table: Mapping[object, object], prefix: str = "") -> Iterator[tuple[str, str]]:
    """A table's options; a table within it gives `<its name>.<option>`
    (castellan's `[key_manager_options.barbican]` → `barbican.<option>`)."""
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flat(value, f"{name}.")
        else:
            yield name, _option_text(value)


def _option_text(value: object) -> str:
    """A TOML value as the text an oslo.config option expects (true → "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_option_text(v) for v in value)
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TypeError("expected a string, number, boolean or list")
