"""SQLAlchemy models: volumes, snapshots, backups (CINDER-CONTRACT §4), tasks, the
outbox, the repository index.

Every schema change here comes with an Alembic migration in db/migrations.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import JSON, TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Volume(Base):
    __tablename__ = "volumes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    display_description: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)  # GiB
    status: Mapped[str] = mapped_column(String(255))
    previous_status: Mapped[str | None] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)
    managed_file: Mapped[bool] = mapped_column(Boolean)  # True: ashbox created the file
    availability_zone: Mapped[str] = mapped_column(String(255))
    # The worker name of the host whose files hold the volume; None: a path every worker mounts.
    host: Mapped[str | None] = mapped_column(String(255))
    bootable: Mapped[bool] = mapped_column(Boolean, default=False)
    encryption_key_id: Mapped[str | None] = mapped_column(String(36))  # ashbox.keymgr
    volume_type_id: Mapped[str | None] = mapped_column(String(36))
    # Loaded when read (a list loads its rows' at once: ashbox.db.volumes).
    volume_type: Mapped[VolumeType | None] = relationship(
        primaryjoin="foreign(Volume.volume_type_id) == VolumeType.id", viewonly=True
    )
    volume_metadata: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_volumes_deleted_project", "deleted", "project_id"),)


class VolumeType(Base):
    """A volume type (Cinder's `volume_types`): its extra specs say what a
    volume of it needs of the backend (ashbox.volume_type_specs)."""

    __tablename__ = "volume_types"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    extra_specs: Mapped[dict[str, str | None]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), onupdate=utcnow)

    __table_args__ = (UniqueConstraint("name", name="uq_volume_types_name"),)


class VolumeTypeEncryption(Base):
    """A volume type's encryption: its volumes get a key of their own."""

    __tablename__ = "volume_type_encryption"

    encryption_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    volume_type_id: Mapped[str] = mapped_column(String(36))
    provider: Mapped[str] = mapped_column(String(255))
    cipher: Mapped[str | None] = mapped_column(String(255))
    key_size: Mapped[int | None] = mapped_column(Integer)
    control_location: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), onupdate=utcnow)

    __table_args__ = (UniqueConstraint("volume_type_id", name="uq_volume_type_encryption_type"),)


class Backup(Base):
    __tablename__ = "backups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[str] = mapped_column(String(255))
    volume_id: Mapped[str] = mapped_column(String(36))
    host: Mapped[str | None] = mapped_column(String(255))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    container: Mapped[str | None] = mapped_column(String(255))
    parent_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(255))
    fail_reason: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)  # GiB
    display_name: Mapped[str | None] = mapped_column(String(255))
    display_description: Mapped[str | None] = mapped_column(String(255))
    service_metadata: Mapped[str | None] = mapped_column(String(255))
    service: Mapped[str | None] = mapped_column(String(255))
    object_count: Mapped[int] = mapped_column(Integer, default=0)
    temp_volume_id: Mapped[str | None] = mapped_column(String(36))
    temp_snapshot_id: Mapped[str | None] = mapped_column(String(36))
    num_dependent_backups: Mapped[int] = mapped_column(Integer, default=0)
    snapshot_id: Mapped[str | None] = mapped_column(String(36))
    data_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime())
    restore_volume_id: Mapped[str | None] = mapped_column(String(36))
    encryption_key_id: Mapped[str | None] = mapped_column(String(36))
    volume_type_id: Mapped[str | None] = mapped_column(String(36))  # its volume's, when taken
    stored_size: Mapped[int] = mapped_column(BigInteger, default=0)  # new bytes this backup stored
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_backups_deleted_project", "deleted", "project_id"),
        Index("ix_backups_volume", "volume_id"),
        Index("ix_backups_parent", "parent_id"),
    )


class BackupMetadata(Base):
    __tablename__ = "backup_metadata"

    backup_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("backups.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class Task(Base):
    """A unit of work on one resource; created in the transaction that changes
    the resource's status (DESIGN §2). `attempts` is the fencing token of a run."""

    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    resource_type: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(String(36))
    payload: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    pinned_host: Mapped[str | None] = mapped_column(String(255))
    pinned_zone: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), onupdate=utcnow)

    __table_args__ = (
        Index("ix_tasks_state", "state", "lease_expires_at"),
        Index("ix_tasks_resource", "resource_id"),
    )


class ProjectQuota(Base):
    """A limit an admin set for one project (os-quota-sets), over its class's."""

    __tablename__ = "quotas"

    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(255), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)  # -1: unlimited


class QuotaClass(Base):
    """A limit of a quota class (os-quota-class-sets); class `default` holds the
    limits of every project without its own, over the configuration's."""

    __tablename__ = "quota_classes"

    class_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(255), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)  # -1: unlimited


class Service(Base):
    """A host's workers as Cinder's `cinder-backup` service (os-services): their
    heartbeat (`updated_at`) says whether they are up, `disabled` whether they
    may claim work. Every worker process of a host reports on the same row."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    availability_zone: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)  # heartbeat
    modified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # an admin's change
    store_error: Mapped[str | None] = mapped_column(String(255))  # None: the store answers

    __table_args__ = (UniqueConstraint("host", "binary", name="uq_services_host_binary"),)


class Snapshot(Base):
    """A point-in-time copy of a volume (CINDER-CONTRACT §1.7); a file beside it."""

    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(255))
    volume_id: Mapped[str] = mapped_column(String(36))
    display_name: Mapped[str | None] = mapped_column(String(255))
    display_description: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)  # GiB
    status: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)
    snapshot_metadata: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_snapshots_deleted_project", "deleted", "project_id"),
        Index("ix_snapshots_volume", "volume_id"),
    )


class Outbox(Base):
    """What followed from a status transition, written in its transaction
    (ashbox.db.lifecycle) and delivered after its commit (ashbox.relay)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_type: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_outbox_created", "created_at"),)


class Notification(Base):
    """A usage notification (CINDER-CONTRACT §3.6), written in the transaction of
    the transition it tells of and sent after its commit by a worker
    (ashbox.worker.notifier), which is its publisher; `sent_at` is set once sent."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_notifications_sent", "sent_at", "id"),)


class Message(Base):
    """A user message (CINDER-CONTRACT §1.9, §3.7): why an operation of the
    project's failed; kept `message_ttl` seconds from `created_at`."""

    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255))
    request_id: Mapped[str] = mapped_column(String(255))
    resource_type: Mapped[str | None] = mapped_column(String(255))
    resource_uuid: Mapped[str | None] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(String(255))
    action_id: Mapped[str] = mapped_column(String(10))
    detail_id: Mapped[str] = mapped_column(String(10))
    message_level: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_messages_project", "project_id", "created_at"),
        Index("ix_messages_created", "created_at"),
    )


class EncryptionKey(Base):
    """A key of the embedded key manager (ashbox.keymgr.embedded), wrapped with
    its master key: nonce, then AES-256-GCM ciphertext and tag."""

    __tablename__ = "encryption_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Container(Base):
    """One repository; its row is the lock that orders reuse against reclaim."""

    __tablename__ = "containers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Pack(Base):
    __tablename__ = "packs"

    container: Mapped[str] = mapped_column(String(255), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # pending | live | dead
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    owner_backup_id: Mapped[str | None] = mapped_column(String(36))  # while pending
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # when it died; NULL: long ago

    __table_args__ = (
        Index("ix_packs_owner", "owner_backup_id"),
        Index("ix_packs_state", "container", "state"),
    )


class Blob(Base):
    __tablename__ = "blobs"

    container: Mapped[str] = mapped_column(String(255), primary_key=True)
    blob_id: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    pack_id: Mapped[str] = mapped_column(String(64))
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(Integer)
    raw_length: Mapped[int] = mapped_column(Integer)
    flags: Mapped[int] = mapped_column(Integer)
    base_blob_id: Mapped[bytes | None] = mapped_column(LargeBinary(32))  # page deltas

    __table_args__ = (
        Index("ix_blobs_pack", "container", "pack_id"),
        Index("ix_blobs_base", "container", "base_blob_id"),
    )


class BlobRef(Base):
    """Backup `backup_id` relies on blob `blob_id`; a blob with no ref is dead."""

    __tablename__ = "blob_refs"

    backup_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    container: Mapped[str] = mapped_column(String(255), primary_key=True)
    blob_id: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)

    __table_args__ = (Index("ix_blob_refs_blob", "container", "blob_id"),)
