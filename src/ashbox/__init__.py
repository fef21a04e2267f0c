"""ashbox: volume backups speaking the OpenStack Block Storage v3 backup API."""

__version__ = "0.1.0"
