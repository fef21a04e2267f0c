"""The manager: what a worker does for each task (create, restore, delete and
import backups; create, manage and delete volumes; snapshot; collect garbage).

It plays the part of Cinder's backup manager (CINDER-CONTRACT §3), with the
transitions of docs/states.md, and drives `ashbox.repository` and `ashbox.volumes`.
"""
