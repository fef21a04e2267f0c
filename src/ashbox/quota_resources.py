"""Cinder's quota resources, in the order its quota sets show them: shared by
the quotas' rows (ashbox.db.quotas) and the command that prints them, which
must not load the database layer."""

QUOTA_RESOURCES = (
    "volumes",
    "snapshots",
    "gigabytes",
    "backups",
    "backup_gigabytes",
    "groups",
    "per_volume_gigabytes",
)
