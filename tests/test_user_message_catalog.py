"""The catalog of user-message fields (ashbox.user_messages): Cinder's codes and
texts, and how a message's event id and text are made of them (CINDER-CONTRACT
§1.9, §3.7). What each failure writes: tests/test_user_messages.py."""

from __future__ import annotations

import pytest

from ashbox.user_messages import (
    ACTIONS,
    DETAILS,
    Action,
    Detail,
    Resource,
    event_id,
    user_message,
)


def test_the_event_id_is_cinders_volume_resource_action_detail() -> None:
    made = event_id(
        Resource.VOLUME_BACKUP, Action.BACKUP_CREATE.id, Detail.BACKUP_CREATE_DRIVER_ERROR.id
    )
    assert made == "VOLUME_VOLUME_BACKUP_013_020"
    assert event_id(Resource.VOLUME, "001", "003") == "VOLUME_VOLUME_001_003"


@pytest.mark.parametrize(
    ("action", "detail", "text"),
    [
        ("013", "020", "create backup:Backup driver failed to create backup."),
        ("014", "025", "delete backup:Backup driver failed to delete backup."),
        ("015", "026", "restore backup:Backup driver failed to restore backup."),
        ("015", "027", "restore backup:Volume status is invalid."),
        ("013", "024", "create backup:" + Detail.BACKUP_SCHEDULE_ERROR.text),
        ("013", "023", "create backup:Cleanup of temporary volume/snapshot failed."),
        ("013", "006", "create backup:Not enough quota resource for operation."),
        ("001", "003", "schedule allocate volume:Could not find any available weighted backend."),
        ("008", "012", "create volume from backend storage:Driver failed to create the volume."),
        ("009", "013", "create snapshot:Snapshot failed to create."),
        ("010", "016", "delete snapshot:Snapshot failed to delete."),
        ("002", "021", "attach volume:Failed to attach volume."),
        ("013", "022", "create backup:Failed to detach volume."),
        ("900", "001", "delete volume:An unknown error occurred."),  # ashbox's own action
        ("099", "020", "unknown action:Backup driver failed to create backup."),
        ("013", "099", "create backup:An unknown error occurred."),
    ],
)
def test_the_user_message_is_the_action_and_detail_texts(
    action: str, detail: str, text: str
) -> None:
    assert user_message(action, detail) == text


def test_the_backup_fields_are_those_of_the_contract() -> None:
    backup_details = {d: DETAILS[d].text for d in DETAILS if "017" <= d <= "027"}
    assert backup_details == {
        "017": "Backup status is invalid.",
        "018": "Backup service is down.",
        "019": "Failed to get backup device from the volume service.",
        "020": "Backup driver failed to create backup.",
        "021": "Failed to attach volume.",
        "022": "Failed to detach volume.",
        "023": "Cleanup of temporary volume/snapshot failed.",
        "024": "Backup failed to schedule. Service not found for creating backup.",
        "025": "Backup driver failed to delete backup.",
        "026": "Backup driver failed to restore backup.",
        "027": "Volume status is invalid.",
    }
    assert {a: ACTIONS[a].text for a in ("013", "014", "015")} == {
        "013": "create backup",
        "014": "delete backup",
        "015": "restore backup",
    }


def test_every_code_is_three_digits_and_used_once() -> None:
    for table in (ACTIONS, DETAILS):
        assert all(len(code) == 3 and code.isdigit() for code in table)
        assert all(field.id == code for code, field in table.items())
    assert len(ACTIONS) == len([v for v in vars(Action) if v.isupper()])
    assert len(DETAILS) == len([v for v in vars(Detail) if v.isupper()])
