"""The backup API: validation, state changes and task creation, one transaction each.

`api/` and `cli/` call this package and nothing below it (DESIGN.md §1).
"""
