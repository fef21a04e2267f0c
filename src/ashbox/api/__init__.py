"""The HTTP API: OpenStack Block Storage (Cinder) v3 backups and volumes on Starlette.

`create_app` (in `app`) builds the application around the `Service` of `ashbox.backups`; the API
never touches storage or volumes itself (DESIGN.md §1). Reference: docs/api.md and
CINDER-CONTRACT.md §1.
"""
