"""The manager: what a worker does for each task (create, restore, delete a backup).

It plays the part of Cinder's backup manager (CINDER-CONTRACT §3), with the
state transitions of docs/states.md, and drives `ashbox.repository`.
"""
