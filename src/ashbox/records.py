"""Read-only views of volumes and backups handed to the API and the CLI.

They are plain values, detached from any database session, so callers above
`backups/` never see SQLAlchemy objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ashbox.policy import Policy


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asks: Cinder's request context, reduced to what ashbox checks.

    `roles` include the implied ones (admin: member, reader); `is_admin` is the
    policy's `context_is_admin` on them, set by whoever builds the context.
    """

    user_id: str
    project_id: str
    is_admin: bool = False
    roles: tuple[str, ...] = ()
    is_admin_project: bool = True
    policy: Policy | None = field(default=None, compare=False, repr=False)
    # Decisions already taken, by (rule, project): a list view asks the same for each item.
    _decided: dict[tuple[str, str], bool] = field(default_factory=dict, compare=False, repr=False)

    def creds(self) -> dict[str, object]:
        """The credentials oslo.policy checks rules against."""
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "roles": list(self.roles),
            "is_admin": self.is_admin,
            "is_admin_project": self.is_admin_project,
        }

    def allows(self, rule: str, project_id: str | None = None) -> bool:
        """Whether `rule` allows this caller on a resource of `project_id` (default: its own)."""
        key = (rule, project_id or self.project_id)
        if key not in self._decided:
            self._decided[key] = self._policy().allows(rule, self._target(key[1]), self.creds())
        return self._decided[key]

    def authorize(self, rule: str, project_id: str | None = None) -> None:
        """Forbidden, with Cinder's message, unless `rule` allows this caller."""
        self._policy().authorize(rule, self._target(project_id or self.project_id), self.creds())

    def _target(self, project_id: str) -> dict[str, object]:
        return {"project_id": project_id, "user_id": self.user_id}

    def _policy(self) -> Policy:
        if self.policy is not None:
            return self.policy
        from ashbox.policy import default_policy

        return default_policy()


@dataclass(frozen=True, slots=True)
class Progress:
    """Bytes done of bytes total of the task running on a backup."""

    done_bytes: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class VolumeRecord:
    id: str
    project_id: str
    user_id: str
    name: str | None
    description: str | None
    size: int  # GiB
    status: str
    previous_status: str | None
    path: str
    managed_file: bool
    availability_zone: str
    bootable: bool
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime | None
    volume_type_id: str | None = None
    volume_type_name: str | None = None
    encryption_key_id: str | None = None  # encrypted volumes' (ashbox.keymgr)


@dataclass(frozen=True, slots=True)
class VolumeTypeRecord:
    id: str
    name: str
    description: str | None
    is_public: bool
    extra_specs: dict[str, str | None]
    created_at: datetime
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class EncryptionRecord:
    """A volume type's encryption (Cinder's `encryption` table)."""

    encryption_id: str
    volume_type_id: str
    provider: str
    cipher: str | None
    key_size: int | None
    control_location: str
    created_at: datetime
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    id: str
    project_id: str
    user_id: str
    volume_id: str
    name: str | None
    description: str | None
    size: int  # GiB
    status: str
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class BackupRecord:
    id: str
    project_id: str
    user_id: str
    volume_id: str
    name: str | None
    description: str | None
    status: str
    size: int  # GiB
    container: str | None
    availability_zone: str | None
    parent_id: str | None
    fail_reason: str | None
    object_count: int
    num_dependent_backups: int
    snapshot_id: str | None
    data_timestamp: datetime | None
    restore_volume_id: str | None
    encryption_key_id: str | None
    host: str | None
    service: str | None
    stored_size: int
    created_at: datetime
    updated_at: datetime | None
    metadata: dict[str, str] = field(default_factory=dict)
    progress: Progress | None = None
    queued: bool = False  # its task waits for a worker (a free slot, a live host)

    @property
    def is_incremental(self) -> bool:
        return self.parent_id is not None

    @property
    def has_dependent_backups(self) -> bool:
        return self.num_dependent_backups > 0


@dataclass(frozen=True, slots=True)
class RestoreRecord:
    backup_id: str
    volume_id: str
    volume_name: str | None


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """A host's workers as one service (os-services)."""

    binary: str
    host: str
    zone: str
    disabled: bool
    disabled_reason: str | None
    updated_at: datetime
    up: bool
    store_error: str | None = None  # what the store said to its last probe; None: it answered


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A user message (CINDER-CONTRACT §1.9) as the API shows it: `user_message`
    read from its action and detail, `guaranteed_until` its `created_at` plus
    `message_ttl`."""

    id: str
    project_id: str
    request_id: str
    resource_type: str | None
    resource_uuid: str | None
    event_id: str
    action_id: str
    detail_id: str
    message_level: str
    user_message: str
    created_at: datetime
    guaranteed_until: datetime


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A list request after the API parsed it (CINDER-CONTRACT §1.5).

    `filters` are exact matches and `like_filters` substring matches, both on
    record field names (`name`, `status`, `volume_id`, ...); `sort` is
    [(field, "asc"|"desc")], `id` is appended as tie-breaker by the query.
    """

    filters: dict[str, str] = field(default_factory=dict)
    like_filters: dict[str, str] = field(default_factory=dict)
    sort: list[tuple[str, str]] = field(default_factory=lambda: [("created_at", "desc")])
    limit: int | None = None
    marker: str | None = None
    offset: int = 0
    all_tenants: bool = False
