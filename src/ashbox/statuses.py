"""Statuses, resource types and task kinds; the values are Cinder's strings (docs/states.md)."""

from __future__ import annotations

from enum import StrEnum


class ResourceType(StrEnum):
    BACKUP = "backup"
    VOLUME = "volume"
    SNAPSHOT = "snapshot"
    TASK = "task"
    CONTAINER = "container"  # a repository; gc's resource, it has no status


class BackupStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    DELETED = "deleted"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    RESTORING = "restoring"


class VolumeStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    DELETED = "deleted"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    IN_USE = "in-use"
    BACKING_UP = "backing-up"
    ERROR_BACKING_UP = "error_backing-up"
    RESTORING_BACKUP = "restoring-backup"
    ERROR_RESTORING = "error_restoring"
    MANAGING = "managing"
    ERROR_MANAGING = "error_managing"


class SnapshotStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    DELETED = "deleted"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    BACKING_UP = "backing-up"


class TaskKind(StrEnum):
    CREATE_BACKUP = "create_backup"
    RESTORE_BACKUP = "restore_backup"
    DELETE_BACKUP = "delete_backup"
    IMPORT_BACKUP = "import_backup"
    CREATE_VOLUME = "create_volume"
    MANAGE_VOLUME = "manage_volume"
    DELETE_VOLUME = "delete_volume"
    CREATE_SNAPSHOT = "create_snapshot"
    DELETE_SNAPSHOT = "delete_snapshot"
    COLLECT_GARBAGE = "collect_garbage"


class TaskState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# Statuses that a running task moves on by itself (docs/states.md): a client
# may ask a GET to wait them out (`X-Ashbox-Wait`, docs/api.md).
TRANSITIONAL_BACKUP = frozenset(
    {BackupStatus.CREATING, BackupStatus.RESTORING, BackupStatus.DELETING}
)
TRANSITIONAL_VOLUME = frozenset(
    {
        VolumeStatus.CREATING,
        VolumeStatus.MANAGING,
        VolumeStatus.BACKING_UP,
        VolumeStatus.RESTORING_BACKUP,
        VolumeStatus.DELETING,
    }
)
TRANSITIONAL_SNAPSHOT = frozenset(
    {SnapshotStatus.CREATING, SnapshotStatus.DELETING, SnapshotStatus.BACKING_UP}
)
