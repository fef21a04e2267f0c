"""The fields of a user message: resource types, actions and details, with Cinder's codes.

CINDER-CONTRACT §1.9 and §3.7. The codes and the texts are Cinder's own
(`cinder/message/message_field.py`, as of its current master), so that a
message reads the same to a user and to a script as one Cinder wrote: its
`event_id` is `VOLUME_<resource type>_<action id>_<detail id>` and its
`user_message` is `<action text>:<detail text>`. Only the actions and details
ashbox can have a use for are carried here, and one action of ashbox's own
(900, `delete volume`: Cinder has none for it); an id this catalog does not
know reads as Cinder reads one it does not know (`unknown action`, and the
text of `UNKNOWN_ERROR`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Resource(StrEnum):
    """What a message is about (its `resource_type`)."""

    VOLUME = "VOLUME"
    VOLUME_SNAPSHOT = "VOLUME_SNAPSHOT"
    VOLUME_BACKUP = "VOLUME_BACKUP"


class Level(StrEnum):
    """A message's `message_level`: the values Cinder suggests."""

    ERROR = "ERROR"
    WARNING = "WARNING"
    INFO = "INFO"


@dataclass(frozen=True, slots=True)
class Field:
    """An action or a detail: Cinder's three-digit id and its text."""

    id: str
    text: str


class Action:
    """What was being done when the message was written."""

    SCHEDULE_ALLOCATE_VOLUME = Field("001", "schedule allocate volume")
    ATTACH_VOLUME = Field("002", "attach volume")
    CREATE_VOLUME_FROM_BACKEND = Field("008", "create volume from backend storage")
    SNAPSHOT_CREATE = Field("009", "create snapshot")
    SNAPSHOT_DELETE = Field("010", "delete snapshot")
    BACKUP_CREATE = Field("013", "create backup")
    BACKUP_DELETE = Field("014", "delete backup")
    BACKUP_RESTORE = Field("015", "restore backup")
    # ashbox's own: Cinder has no action for deleting a volume; 900 is outside
    # the numbers Cinder gives (from 001), so it can never mean another of its.
    DELETE_VOLUME = Field("900", "delete volume")


class Detail:
    """What went wrong."""

    UNKNOWN_ERROR = Field("001", "An unknown error occurred.")
    NO_BACKEND_AVAILABLE = Field("003", "Could not find any available weighted backend.")
    QUOTA_EXCEED = Field("006", "Not enough quota resource for operation.")
    DRIVER_FAILED_CREATE = Field("012", "Driver failed to create the volume.")
    SNAPSHOT_CREATE_ERROR = Field("013", "Snapshot failed to create.")
    SNAPSHOT_IS_BUSY = Field("015", "Snapshot is busy.")
    SNAPSHOT_DELETE_ERROR = Field("016", "Snapshot failed to delete.")
    BACKUP_INVALID_STATE = Field("017", "Backup status is invalid.")
    BACKUP_SERVICE_DOWN = Field("018", "Backup service is down.")
    BACKUP_CREATE_DEVICE_ERROR = Field(
        "019", "Failed to get backup device from the volume service."
    )
    BACKUP_CREATE_DRIVER_ERROR = Field("020", "Backup driver failed to create backup.")
    ATTACH_ERROR = Field("021", "Failed to attach volume.")
    DETACH_ERROR = Field("022", "Failed to detach volume.")
    BACKUP_CREATE_CLEANUP_ERROR = Field("023", "Cleanup of temporary volume/snapshot failed.")
    BACKUP_SCHEDULE_ERROR = Field(
        "024", "Backup failed to schedule. Service not found for creating backup."
    )
    BACKUP_DELETE_DRIVER_ERROR = Field("025", "Backup driver failed to delete backup.")
    BACKUP_RESTORE_ERROR = Field("026", "Backup driver failed to restore backup.")
    VOLUME_INVALID_STATE = Field("027", "Volume status is invalid.")


ACTIONS: dict[str, Field] = {f.id: f for f in vars(Action).values() if isinstance(f, Field)}
DETAILS: dict[str, Field] = {f.id: f for f in vars(Detail).values() if isinstance(f, Field)}
UNKNOWN_ACTION = "unknown action"


def event_id(resource_type: str, action_id: str, detail_id: str) -> str:
    """`VOLUME_VOLUME_BACKUP_013_020`: the event a message is of, as Cinder names it."""
    return f"VOLUME_{resource_type}_{action_id}_{detail_id}"


def action_text(action_id: str) -> str:
    found = ACTIONS.get(action_id)
    return found.text if found is not None else UNKNOWN_ACTION


def detail_text(detail_id: str) -> str:
    found = DETAILS.get(detail_id)
    return found.text if found is not None else Detail.UNKNOWN_ERROR.text


def user_message(action_id: str, detail_id: str) -> str:
    """`create backup:Backup driver failed to create backup.`: what a user reads."""
    return f"{action_text(action_id)}:{detail_text(detail_id)}"
