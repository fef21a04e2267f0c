"""What a store needs to know besides its URL: endpoints, credentials, timeouts,
retries and limits (docs/stores.md). Built from the settings by `StoreOptions.of`.

The fields are named as the `Settings` options they come from; secrets stay
out of `repr` (and so out of logs and tracebacks).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ashbox.errors import InvalidInput

if TYPE_CHECKING:
    from ashbox.config import Settings

MiB = 1024 * 1024
ADDRESSING_STYLES = ("auto", "path", "virtual")
SWIFT_AUTH_VERSIONS = ("1", "3")


@dataclass(frozen=True, slots=True)
class StoreOptions:
    s3_endpoint_url: str = ""  # empty: AWS itself
    s3_region: str = ""  # empty: boto3's configuration chain
    s3_access_key: str = ""  # empty (with s3_secret_key): boto3's credential chain
    s3_secret_key: str = field(default="", repr=False)
    s3_addressing_style: str = "auto"  # auto | path | virtual
    store_ca_bundle: str = ""  # PEM file of the CAs to trust over HTTPS
    store_verify_tls: bool = True
    swift_auth_url: str = ""
    swift_auth_version: str = "1"  # 1 (tempauth, swauth) | 3 (Keystone v3)
    swift_user: str = ""  # v1: account:user
    swift_key: str = field(default="", repr=False)  # v1 key or v3 password
    swift_project_name: str = ""
    swift_user_domain_name: str = "Default"
    swift_project_domain_name: str = "Default"
    swift_region_name: str = ""
    store_timeout_seconds: float = 30.0  # connect, and each read of an answer
    store_retries: int = 5  # attempts after the first one for a transient failure
    store_bandwidth: int = 0  # bytes per second, shared by every store of a process; 0: unlimited
    store_concurrency: int = 16  # requests in flight per store; 0: unlimited
    store_multipart_threshold: int = 32 * MiB
    store_part_size: int = 8 * MiB

    def __post_init__(self) -> None:
        if self.s3_addressing_style not in ADDRESSING_STYLES:
            raise InvalidInput(
                f"Bad value for configuration option s3_addressing_style: "
                f"{self.s3_addressing_style!r} (one of {', '.join(ADDRESSING_STYLES)})"
            )
        version = self.swift_auth_version.removesuffix(".0")
        if version not in SWIFT_AUTH_VERSIONS:
            raise InvalidInput(
                f"Bad value for configuration option swift_auth_version: "
                f"{self.swift_auth_version!r} (1 or 3)"
            )
        object.__setattr__(self, "swift_auth_version", version)
        for name in ("store_retries", "store_bandwidth", "store_concurrency"):
            if getattr(self, name) < 0:
                raise InvalidInput(f"Configuration option {name} cannot be negative.")
        if self.store_timeout_seconds <= 0:
            raise InvalidInput("Configuration option store_timeout_seconds must be positive.")
        if self.store_part_size < 1 or self.store_multipart_threshold < 1:
            raise InvalidInput(
                "Configuration options store_part_size and store_multipart_threshold "
                "must be positive."
            )

    @classmethod
    def of(cls, settings: Settings) -> StoreOptions:
        """The store options of `settings`."""
        return cls(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(cls)})
