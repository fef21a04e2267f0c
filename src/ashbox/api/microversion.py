"""Microversions: parsing and negotiating `OpenStack-API-Version: volume X.Y`.

CINDER-CONTRACT §1.1. No header means 3.0, `latest` means 3.71; a malformed
version is a 400 and one outside 3.0-3.71 a 406, with Cinder's messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ashbox.api.errors import ApiFault

HEADER = "OpenStack-API-Version"
SERVICE = "volume"
UPDATED = "2023-08-31T00:00:00Z"

_FORMAT = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


@dataclass(frozen=True, slots=True, order=True)
class APIVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        match = _FORMAT.match(text)
        if match is None:
            raise ApiFault(
                400,
                f"API Version String {text} is of invalid format. "
                "Must be of format MajorNum.MinorNum.",
            )
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, text: str) -> bool:
        return self >= APIVersion.parse(text)


MIN_VERSION = APIVersion(3, 0)
MAX_VERSION = APIVersion(3, 71)

# Backup-relevant gates (cinder/api/microversions.py).
MESSAGES = "3.3"
MESSAGES_PAGINATION = "3.5"
BACKUP_UPDATE = "3.9"
BACKUP_PROJECT = "3.18"
RESOURCE_FILTER = "3.31"
LIKE_FILTER = "3.34"
BACKUP_SORT_NAME = "3.37"
BACKUP_METADATA = "3.43"
SUPPORT_COUNT_INFO = "3.45"
BACKUP_AZ = "3.51"
SUPPORT_VOLUME_SCHEMA_CHANGES = "3.53"
BACKUP_PROJECT_USER_ID = "3.56"
ENCRYPTION_KEY_ID_IN_DETAILS = "3.64"
CLUSTER_SUPPORT = "3.7"
REPLICATION_CLUSTER = "3.26"
VOLUME_GROUP = "3.13"
GROUP_SNAPSHOTS = "3.14"
LIMITS_ADMIN_FILTER = "3.39"
SNAPSHOT_LIST_USER_ID = "3.41"
VOLUME_CREATE_FROM_BACKUP = "3.47"
SNAPSHOT_IN_USE = "3.66"
VOLUME_PROVIDER_ID = "3.21"
VOLUME_SHARED_TARGETS = "3.48"
VOLUME_CLUSTER_NAME = "3.61"
VOLUME_TYPE_ID_IN_DETAILS = "3.63"
VOLUME_CONSUMES_QUOTA = "3.65"


def negotiate(header: str | None) -> APIVersion:
    """The version a request asks for, from its `OpenStack-API-Version` header value.

    Several services may be listed comma-separated; the first `volume` entry wins.
    """
    if header is None:
        return MIN_VERSION
    for entry in header.split(","):
        words = entry.split()
        if len(words) == 2 and words[0].lower() == SERVICE:
            return _in_range(words[1])
    raise ApiFault(
        400,
        f"Invalid {HEADER} header {header.strip()!r}: "
        f"it must be of the form '{SERVICE} X.Y' or '{SERVICE} latest'.",
    )


def _in_range(text: str) -> APIVersion:
    if text.lower() == "latest":
        return MAX_VERSION
    version = APIVersion.parse(text)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise ApiFault(
            406,
            f"Version {version} is not supported by the API. "
            f"Minimum is {MIN_VERSION} and maximum is {MAX_VERSION}.",
        )
    return version
