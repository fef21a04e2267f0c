"""The repository: the backup format v1 as a library (DESIGN.md §3, docs/format.md).

`Repository` is the facade; the modules below it are the format's nouns:
config, blob, pack, manifest, index (protocol), writer (backup), reader (restore).
It never imports the API, the database or the manager.
"""
