"""Volume types, their extra specs and their encryption, as Cinder's API manages
them (`types`, `types_manage`, `types_extra_specs`, `volume_type_encryption`).

A type says two things ashbox acts on: its extra specs, which its volumes need
of the backend (ashbox.volume_type_specs: a volume whose type the backend
cannot match ends in `error`), and its encryption, which gives each of its
volumes a key (docs/keys.md). Cinder's rules hold: a type in use keeps its
extra specs and encryption, and cannot be deleted; the default type cannot be
deleted either. Private types are seen by admins only: ashbox has no
per-project type access (docs/volume-types.md).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ashbox.config import Settings
from ashbox.db import quotas as quota_rows
from ashbox.db import volume_types as type_rows
from ashbox.db.engine import Database
from ashbox.db.models import VolumeType, VolumeTypeEncryption
from ashbox.errors import (
    InvalidInput,
    VolumeTypeEncryptionNotFound,
    VolumeTypeExists,
    VolumeTypeExtraSpecsNotFound,
    VolumeTypeNotFound,
)
from ashbox.records import EncryptionRecord, RequestContext, VolumeTypeRecord

log = logging.getLogger(__name__)

CREATE_RULE = "volume_extension:type_create"
UPDATE_RULE = "volume_extension:type_update"
DELETE_RULE = "volume_extension:type_delete"
GET_RULE = "volume_extension:type_get"
GET_ALL_RULE = "volume_extension:type_get_all"
SPECS_INDEX_RULE = "volume_extension:types_extra_specs:index"
SPECS_SHOW_RULE = "volume_extension:types_extra_specs:show"
SPECS_CREATE_RULE = "volume_extension:types_extra_specs:create"
SPECS_UPDATE_RULE = "volume_extension:types_extra_specs:update"
SPECS_DELETE_RULE = "volume_extension:types_extra_specs:delete"
READ_SENSITIVE_RULE = "volume_extension:types_extra_specs:read_sensitive"
ENCRYPTION_GET_RULE = "volume_extension:volume_type_encryption:get"
ENCRYPTION_CREATE_RULE = "volume_extension:volume_type_encryption:create"
ENCRYPTION_UPDATE_RULE = "volume_extension:volume_type_encryption:update"
ENCRYPTION_DELETE_RULE = "volume_extension:volume_type_encryption:delete"
# The extra specs anyone who may read a type sees; the others need READ_SENSITIVE_RULE.
USER_VISIBLE_EXTRA_SPECS = ("RESKEY:availability_zones", "multiattach", "replication_enabled")
DEFAULT = "default"  # GET /types/default
# Cinder's refusals to change a type a volume has.
_IN_USE_SPECS = "Volume Type is currently in use."
_IN_USE_ENCRYPTION = "Cannot {verb} encryption specs. Volume type in use."

Specs = dict[str, str | None]


class VolumeTypeOps:
    db: Database
    settings: Settings

    def list_volume_types(
        self, ctx: RequestContext, *, is_public: bool | None = True
    ) -> list[VolumeTypeRecord]:
        """The public types; an admin chooses public (True), private (False) or all (None)."""
        ctx.authorize(GET_ALL_RULE)
        with self.db.reading() as s:
            rows = type_rows.list_types(s, public=is_public if ctx.is_admin else True)
            return [type_record(t, ctx) for t in rows]

    def get_volume_type(self, ctx: RequestContext, type_id: str) -> VolumeTypeRecord:
        """A type by id, or the default type for `default`."""
        ctx.authorize(GET_RULE)
        with self.db.reading() as s:
            if type_id == DEFAULT:
                found = default_type(s, self.settings)
                if found is None:
                    raise VolumeTypeNotFound(self.settings.default_volume_type, by_name=True)
                return type_record(found, ctx)
            return type_record(visible_type(s, ctx, type_id), ctx)

    def create_volume_type(
        self,
        ctx: RequestContext,
        *,
        name: str,
        description: str | None = None,
        extra_specs: Specs | None = None,
        is_public: bool = True,
    ) -> VolumeTypeRecord:
        ctx.authorize(CREATE_RULE)
        if not name.strip():
            raise InvalidInput("Volume type name can not be empty.")
        try:
            with self.db.transaction() as s:
                if type_rows.type_named(s, name) is not None:
                    raise VolumeTypeExists(name)
                row = VolumeType(
                    id=str(uuid.uuid4()),
                    name=name,
                    description=description,
                    is_public=is_public,
                    extra_specs=dict(extra_specs or {}),
                    created_at=datetime.now(UTC),
                )
                s.add(row)
                s.flush()
                record = type_record(row, ctx)
        except IntegrityError:  # another request made the name first
            raise VolumeTypeExists(name) from None
        log.info("volume type created type_id=%s name=%s", record.id, name)
        return record

    def update_volume_type(
        self,
        ctx: RequestContext,
        type_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        is_public: bool | None = None,
    ) -> VolumeTypeRecord:
        ctx.authorize(UPDATE_RULE)
        if name is not None and not name.strip():
            raise InvalidInput("Volume type name can not be empty.")
        if name is None and description is None and is_public is None:
            raise InvalidInput(
                "Specify volume type name, description, is_public or a combination thereof."
            )
        try:
            with self.db.transaction() as s:
                row = visible_type(s, ctx, type_id)
                if name is not None and name != row.name:
                    if row.name == self.settings.default_volume_type:
                        raise InvalidInput("The default volume type cannot be renamed.")
                    if type_rows.type_named(s, name) is not None:
                        raise VolumeTypeExists(name)
                    quota_rows.rename_type(s, row.name, name)
                    row.name = name
                if description is not None:
                    row.description = description
                if is_public is not None:
                    row.is_public = is_public
                row.updated_at = datetime.now(UTC)
                s.flush()
                return type_record(row, ctx)
        except IntegrityError:
            raise VolumeTypeExists(str(name)) from None

    def delete_volume_type(self, ctx: RequestContext, type_id: str) -> None:
        ctx.authorize(DELETE_RULE)
        with self.db.transaction() as s:
            row = visible_type(s, ctx, type_id, lock="update")
            if row.name == self.settings.default_volume_type:
                raise InvalidInput(
                    f"The volume type {row.id} is a default volume type and cannot be deleted."
                )
            if type_rows.in_use(s, row.id):
                raise InvalidInput("Target volume type is still in use.")
            encryption = type_rows.encryption_of(s, row.id)
            if encryption is not None:
                s.delete(encryption)
            s.delete(row)
        log.info("volume type deleted type_id=%s", type_id)

    def volume_type_extra_specs(self, ctx: RequestContext, type_id: str) -> Specs:
        ctx.authorize(SPECS_INDEX_RULE)
        with self.db.reading() as s:
            return visible_specs(ctx, visible_type(s, ctx, type_id).extra_specs)

    def volume_type_extra_spec(self, ctx: RequestContext, type_id: str, key: str) -> str | None:
        ctx.authorize(SPECS_SHOW_RULE)
        with self.db.reading() as s:
            specs = visible_specs(ctx, visible_type(s, ctx, type_id).extra_specs)
        if key not in specs:
            raise VolumeTypeExtraSpecsNotFound(type_id, key)
        return specs[key]

    def add_volume_type_extra_specs(
        self, ctx: RequestContext, type_id: str, specs: Mapping[str, str | None]
    ) -> None:
        """Add these specs, changing those the type has (POST .../extra_specs)."""
        ctx.authorize(SPECS_CREATE_RULE)
        self._merge_specs(ctx, type_id, specs)

    def set_volume_type_extra_spec(
        self, ctx: RequestContext, type_id: str, key: str, value: str | None
    ) -> None:
        """Set one spec (PUT .../extra_specs/{key})."""
        ctx.authorize(SPECS_UPDATE_RULE)
        self._merge_specs(ctx, type_id, {key: value})

    def _merge_specs(
        self, ctx: RequestContext, type_id: str, specs: Mapping[str, str | None]
    ) -> None:
        with self.db.transaction() as s:
            row = _changeable_type(s, ctx, type_id)
            merged = {**row.extra_specs, **specs}
            _refuse_cacheable_multiattach(merged)
            row.extra_specs = merged
            row.updated_at = datetime.now(UTC)

    def delete_volume_type_extra_spec(self, ctx: RequestContext, type_id: str, key: str) -> None:
        ctx.authorize(SPECS_DELETE_RULE)
        with self.db.transaction() as s:
            row = _changeable_type(s, ctx, type_id)
            if key not in row.extra_specs:
                raise VolumeTypeExtraSpecsNotFound(type_id, key)
            row.extra_specs = {k: v for k, v in row.extra_specs.items() if k != key}
            row.updated_at = datetime.now(UTC)

    def volume_type_encryption(self, ctx: RequestContext, type_id: str) -> EncryptionRecord | None:
        ctx.authorize(ENCRYPTION_GET_RULE)
        with self.db.reading() as s:
            visible_type(s, ctx, type_id)
            found = type_rows.encryption_of(s, type_id)
            return encryption_record(found) if found is not None else None

    def create_volume_type_encryption(
        self, ctx: RequestContext, type_id: str, fields: Mapping[str, Any]
    ) -> EncryptionRecord:
        ctx.authorize(ENCRYPTION_CREATE_RULE)
        with self.db.transaction() as s:
            _changeable_type(s, ctx, type_id, _IN_USE_ENCRYPTION.format(verb="create"))
            if type_rows.encryption_of(s, type_id) is not None:
                raise InvalidInput(f"Volume type encryption for type {type_id} already exists.")
            row = VolumeTypeEncryption(
                encryption_id=str(uuid.uuid4()),
                volume_type_id=type_id,
                provider=fields["provider"],
                cipher=fields.get("cipher"),
                key_size=fields.get("key_size"),
                control_location=fields["control_location"],
                created_at=datetime.now(UTC),
            )
            s.add(row)
            s.flush()
            return encryption_record(row)

    def update_volume_type_encryption(
        self, ctx: RequestContext, type_id: str, fields: Mapping[str, Any]
    ) -> None:
        ctx.authorize(ENCRYPTION_UPDATE_RULE)
        with self.db.transaction() as s:
            _changeable_type(s, ctx, type_id, _IN_USE_ENCRYPTION.format(verb="update"))
            row = _encryption(s, type_id)
            for name in ("provider", "cipher", "key_size", "control_location"):
                if name in fields:
                    setattr(row, name, fields[name])
            row.updated_at = datetime.now(UTC)

    def delete_volume_type_encryption(self, ctx: RequestContext, type_id: str) -> None:
        ctx.authorize(ENCRYPTION_DELETE_RULE)
        with self.db.transaction() as s:
            _changeable_type(s, ctx, type_id, _IN_USE_ENCRYPTION.format(verb="delete"))
            s.delete(_encryption(s, type_id))


def visible_type(
    s: Session, ctx: RequestContext, type_id: str, *, lock: type_rows.Lock = None
) -> VolumeType:
    """The type, if the caller may see it: a private one only an admin sees."""
    row = type_rows.get_type(s, type_id, lock=lock)
    if row is None or not (row.is_public or ctx.is_admin):
        raise VolumeTypeNotFound(type_id)
    return row


def default_type(
    s: Session, settings: Settings, *, lock: type_rows.Lock = None
) -> VolumeType | None:
    """The type a volume that names none gets (None if it does not exist)."""
    return type_rows.type_named(s, settings.default_volume_type, lock=lock)


def type_for_volume(
    s: Session, ctx: RequestContext, settings: Settings, wanted: str | None
) -> VolumeType | None:
    """The type a new volume gets: the one asked for, by id or name, else the
    default type (None if the configured default does not exist)."""
    if wanted is None:
        return default_type(s, settings, lock="share")
    row = type_rows.get_type(s, wanted, lock="share")
    by_name = row is None
    if row is None:
        row = type_rows.type_named(s, wanted, lock="share")
    if row is None or not (row.is_public or ctx.is_admin):
        raise VolumeTypeNotFound(wanted, by_name=by_name)
    return row


def visible_specs(ctx: RequestContext, specs: Mapping[str, str | None]) -> Specs:
    """The specs this caller may read (Cinder's `read_sensitive` rule)."""
    if ctx.allows(READ_SENSITIVE_RULE):
        return dict(specs)
    return {k: v for k, v in specs.items() if k in USER_VISIBLE_EXTRA_SPECS}


def type_record(row: VolumeType, ctx: RequestContext) -> VolumeTypeRecord:
    return VolumeTypeRecord(
        id=row.id,
        name=row.name,
        description=row.description,
        is_public=row.is_public,
        extra_specs=visible_specs(ctx, row.extra_specs or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def encryption_record(row: VolumeTypeEncryption) -> EncryptionRecord:
    return EncryptionRecord(
        encryption_id=row.encryption_id,
        volume_type_id=row.volume_type_id,
        provider=row.provider,
        cipher=row.cipher,
        key_size=row.key_size,
        control_location=row.control_location,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _changeable_type(
    s: Session, ctx: RequestContext, type_id: str, refusal: str = _IN_USE_SPECS
) -> VolumeType:
    """A type whose extra specs or encryption may change: no volume has it
    (InvalidInput with `refusal` otherwise). Its row stays locked."""
    row = visible_type(s, ctx, type_id, lock="update")
    if type_rows.in_use(s, type_id):
        raise InvalidInput(refusal)
    return row


def _encryption(s: Session, type_id: str) -> VolumeTypeEncryption:
    row = type_rows.encryption_of(s, type_id)
    if row is None:
        raise VolumeTypeEncryptionNotFound(type_id)
    return row


def _refuse_cacheable_multiattach(specs: Mapping[str, str | None]) -> None:
    if specs.get("multiattach") == "<is> True" and specs.get("cacheable") == "<is> True":
        raise InvalidInput("cacheable cannot be set with multiattach.")
