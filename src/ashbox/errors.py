"""The domain errors of ashbox, defined once.

    AshboxError
    ├── NotFound           → 404   BackupNotFound, VolumeNotFound, SnapshotNotFound,
    │                              MessageNotFound, ObjectNotFound, RepositoryNotFound,
    │                              KeySlotNotFound, VolumeTypeNotFound,
    │                              VolumeTypeExtraSpecsNotFound, VolumeTypeEncryptionNotFound
    ├── InvalidInput       → 400   InvalidBackup, InvalidVolume, InvalidSnapshot (Cinder's
    │                              "Invalid ...: " texts), KeyRequired, WrongKey (an
    │                              encrypted repository's key), EncryptedBackupOperationFailed
    │                              (an encrypted backup restored to another type; workers)
    ├── InvalidState       → 400   InvalidBackupState, InvalidVolumeState, InvalidSnapshotState
    │                              (a status does not allow the request)
    ├── Forbidden          → 403
    ├── QuotaExceeded      → 413
    ├── Conflict           → 409   VolumeTypeExists
    ├── CorruptData        → 500   CorruptPack, CorruptManifest, CorruptBlob
    ├── VolumeIOError      → 500   (a volume or snapshot file could not be read or written;
    │                              raised in workers only)
    ├── StoreError         → 503   (the backup store failed or is unreachable)
    ├── DatabaseUnavailable → 503  (the database cannot take writes: its disk is full)
    └── TaskCancelled      → 409   LeaseLost (a running task must stop; workers only)

The HTTP mapping lives in `ashbox.api.errors`, the exit codes in `ashbox.cli`.
Messages follow CINDER-CONTRACT §1.6 word for word where Cinder has one.
"""

from __future__ import annotations


class AshboxError(Exception):
    """Base of every error ashbox raises on purpose; `message` is shown to users."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(AshboxError):
    pass


class BackupNotFound(NotFound):
    def __init__(self, backup_id: str) -> None:
        super().__init__(f"Backup {backup_id} could not be found.")
        self.backup_id = backup_id


class VolumeNotFound(NotFound):
    def __init__(self, volume_id: str) -> None:
        super().__init__(f"Volume {volume_id} could not be found.")
        self.volume_id = volume_id


class SnapshotNotFound(NotFound):
    def __init__(self, snapshot_id: str) -> None:
        super().__init__(f"Snapshot {snapshot_id} could not be found.")
        self.snapshot_id = snapshot_id


class MessageNotFound(NotFound):
    def __init__(self, message_id: str) -> None:
        super().__init__(f"Message {message_id} could not be found.")
        self.message_id = message_id


class ServiceNotFound(NotFound):
    """No enabled, up service of `binary` (on `host`, if given) can take the work."""

    def __init__(self, binary: str, host: str | None = None) -> None:
        where = f" on host {host}" if host is not None else ""
        super().__init__(f"Service {binary} could not be found{where}.")
        self.binary = binary
        self.host = host


class ObjectNotFound(NotFound):
    """An object (pack, manifest, config) is missing from the backup store."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Object {key} could not be found in the backup store.")
        self.key = key


class RepositoryNotFound(NotFound):
    """A container of the store holds no repository (no config object)."""

    def __init__(self, container: str) -> None:
        super().__init__(f"Container {container} holds no repository (it has no config).")
        self.container = container


class KeySlotNotFound(NotFound):
    def __init__(self, container: str, slot_id: str) -> None:
        super().__init__(f"Repository {container} has no key slot {slot_id}.")
        self.container = container
        self.slot_id = slot_id


class VolumeTypeNotFound(NotFound):
    def __init__(self, type_id: str, *, by_name: bool = False) -> None:
        super().__init__(
            f"Volume type with name {type_id} could not be found."
            if by_name
            else f"Volume type {type_id} could not be found."
        )
        self.type_id = type_id


class VolumeTypeExtraSpecsNotFound(NotFound):
    def __init__(self, type_id: str, key: str) -> None:
        super().__init__(f"Volume Type {type_id} has no extra specs with key {key}.")


class VolumeTypeEncryptionNotFound(NotFound):
    def __init__(self, type_id: str) -> None:
        super().__init__(f"Volume type encryption for type {type_id} does not exist.")


class InvalidInput(AshboxError):
    """A request is malformed; the message is complete as given."""


class InvalidBackup(InvalidInput):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid backup: {reason}")
        self.reason = reason


class InvalidVolume(InvalidInput):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid volume: {reason}")
        self.reason = reason


class InvalidSnapshot(InvalidInput):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid snapshot: {reason}")
        self.reason = reason


class KeyRequired(InvalidInput):
    """An encrypted repository was opened without a key (passphrase or key file)."""

    def __init__(self, container: str) -> None:
        super().__init__(
            f"Repository {container} is encrypted: configure its key (key_file or "
            "ASHBOX_KEY_FILE) to use it."
        )
        self.container = container


class WrongKey(InvalidInput):
    """The key given opens none of an encrypted repository's key slots."""

    def __init__(self, container: str) -> None:
        super().__init__(f"The key given does not open repository {container}.")
        self.container = container


class EncryptedBackupOperationFailed(InvalidInput):
    """An encrypted backup cannot go onto a volume of another type (§3.9)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Backup operation of an encrypted volume failed: {reason}")


class InvalidState(AshboxError):
    """A compare-and-swap on a status found another status than expected."""


class InvalidBackupState(InvalidState):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid backup: {reason}")
        self.reason = reason


class InvalidVolumeState(InvalidState):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid volume: {reason}")
        self.reason = reason


class InvalidSnapshotState(InvalidState):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid snapshot: {reason}")
        self.reason = reason


class Forbidden(AshboxError):
    pass


class QuotaExceeded(AshboxError):
    pass


class Conflict(AshboxError):
    pass


class VolumeTypeExists(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"Volume Type {name} already exists.")


class CorruptData(AshboxError):
    """Stored bytes do not match what the format or their id promises."""


class CorruptPack(CorruptData):
    pass


class CorruptManifest(CorruptData):
    pass


class CorruptBlob(CorruptData):
    pass


class VolumeIOError(AshboxError):
    """A volume or snapshot file could not be opened, read or written."""


class StoreError(AshboxError):
    """The backup store failed (I/O error, unreachable server)."""


class KeyManagerError(AshboxError):
    """The key manager could not make, find, clone or delete a key."""


class DatabaseUnavailable(AshboxError):
    """The database refused a write it cannot take now (its disk is full)."""


class TaskCancelled(AshboxError):
    """A running task must stop: its resource left the status the task works
    in (force delete, reset), or its worker is stopping."""


class LeaseLost(TaskCancelled):
    """The task's lease passed to another worker (or could not be renewed in
    time): this run must not commit anything more."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"Task {task_id} is no longer leased to this worker.")
        self.task_id = task_id


class PackAbandoned(TaskCancelled):
    """A pack was abandoned (marked dead) before its writer committed it: the
    writer had lost its task to another run, which discarded its packs, or
    its backup had ended. Like LeaseLost, the run must commit nothing more."""

    def __init__(self, pack_id: str) -> None:
        super().__init__(
            f"Pack {pack_id} was abandoned before its upload was committed: "
            "another run of this backup took it over."
        )
