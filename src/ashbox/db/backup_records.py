"""A backup's row as its stored record (docs/format.md, "Backup record"), and back.

The record is written by the worker that made (or imported) the backup, and
read by `ashbox repo recover` when the database is lost, and by an import.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ashbox.db import backups as backup_rows
from ashbox.db.models import Backup


def record_of(s: Session, backup: Backup) -> dict[str, object]:
    """The record of `backup` (its row and metadata), JSON values only."""
    return {
        "id": backup.id,
        "project_id": backup.project_id,
        "user_id": backup.user_id,
        "volume_id": backup.volume_id,
        "display_name": backup.display_name,
        "display_description": backup.display_description,
        "parent_id": backup.parent_id,
        "snapshot_id": backup.snapshot_id,
        "size": backup.size,
        "container": backup.container,
        "availability_zone": backup.availability_zone,
        "object_count": backup.object_count,
        "stored_size": backup.stored_size,
        "volume_type_id": backup.volume_type_id,
        "created_at": backup.created_at.isoformat(),
        "data_timestamp": backup.data_timestamp.isoformat() if backup.data_timestamp else None,
        "metadata": backup_rows.metadata_of(s, [backup.id])[backup.id],
    }


def row_values(record: dict[str, object]) -> dict[str, Any]:
    """Backup column values from a record (its metadata apart)."""
    values: dict[str, Any] = {
        key: record[key]
        for key in (
            "project_id", "user_id", "volume_id", "display_name", "display_description",
            "parent_id", "snapshot_id", "size", "container", "availability_zone",
            "object_count", "stored_size",
        )
    }  # fmt: skip
    source_type = record.get("volume_type_id")  # records before schema 0009 lack it
    values["volume_type_id"] = source_type if isinstance(source_type, str) else None
    values["created_at"] = datetime.fromisoformat(str(record["created_at"]))
    stamp = record.get("data_timestamp")
    values["data_timestamp"] = datetime.fromisoformat(str(stamp)) if stamp else None
    return values


def metadata_of_record(record: dict[str, object]) -> dict[str, str]:
    metadata = record.get("metadata") or {}
    assert isinstance(metadata, dict)
    return {str(k): str(v) for k, v in metadata.items()}
