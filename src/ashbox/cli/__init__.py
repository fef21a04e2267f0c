"""The `ashbox` command line: a client of the service's Cinder v3 API, and `ashbox serve`.

Commands and options: docs/cli.md. Exit codes are defined once, in `exit_codes`.
"""
