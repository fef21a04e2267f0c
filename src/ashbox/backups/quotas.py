"""Quotas and limits as users and admins see and set them: Cinder's
os-quota-sets, os-quota-class-sets and limits (CINDER-CONTRACT §1.8). The
limits and the usage are ashbox.db.quotas'."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ashbox.backups.volumes import VolumeOps
from ashbox.db import quotas as quota_rows
from ashbox.db import stored_bytes
from ashbox.errors import InvalidInput
from ashbox.quota_resources import QUOTA_RESOURCES
from ashbox.records import RequestContext

log = logging.getLogger(__name__)

QUOTAS_SHOW_RULE = "volume_extension:quotas:show"
QUOTAS_UPDATE_RULE = "volume_extension:quotas:update"
QUOTAS_DELETE_RULE = "volume_extension:quotas:delete"
QUOTA_CLASSES_RULE = "volume_extension:quota_classes"
LIMITS_RULE = "limits_extension:used_limits"

MAX_LIMIT = 2**31 - 1  # Cinder's db.MAX_INT


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """One resource of a project: its limit, what its rows hold, and what is
    reserved (always 0: a row is its own reservation, ashbox.db.quotas)."""

    limit: int
    in_use: int
    reserved: int = 0


class QuotaOps(VolumeOps):
    def show_quotas(self, ctx: RequestContext, project_id: str) -> dict[str, QuotaUsage]:
        """The project's limits with its usage."""
        ctx.authorize(QUOTAS_SHOW_RULE, project_id)
        with self.db.reading() as s:
            limits = quota_rows.project_limits(s, self.settings, project_id)
            used = quota_rows.usage(s, project_id)
        return {r: QuotaUsage(limit, used.get(r, 0)) for r, limit in limits.items()}

    def default_quotas(self, ctx: RequestContext, project_id: str) -> dict[str, int]:
        """The limits of a project with none of its own."""
        ctx.authorize(QUOTAS_SHOW_RULE, project_id)
        with self.db.reading() as s:
            return quota_rows.class_limits(s, self.settings)

    def update_quotas(
        self, ctx: RequestContext, project_id: str, limits: Mapping[str, object]
    ) -> dict[str, int]:
        """Set some of the project's limits; none below what it uses (Cinder's
        rule: else 400 and nothing changes). The project's limits after."""
        ctx.authorize(QUOTAS_UPDATE_RULE, project_id)
        _check_name("project id", project_id)
        with self.db.transaction() as s:
            quota_rows.lock(s, project_id)
            checked = _checked_limits(limits, quota_rows.configured_defaults(s, self.settings))
            used = quota_rows.usage(s, project_id)
            for resource, limit in checked.items():
                if resource != "per_volume_gigabytes" and limit != -1 and limit < used[resource]:
                    raise InvalidInput(
                        f"Invalid input received: Quota {resource} limit must be equal or "
                        f"greater than existing resources. Current usage is {used[resource]} "
                        f"and the requested limit is {limit}."
                    )
            quota_rows.set_project_limits(s, project_id, checked)
            log.info("quotas set project_id=%s limits=%s", project_id, checked)
            return quota_rows.project_limits(s, self.settings, project_id)

    def delete_quotas(self, ctx: RequestContext, project_id: str) -> None:
        """The project's limits become the defaults again."""
        ctx.authorize(QUOTAS_DELETE_RULE, project_id)
        with self.db.transaction() as s:
            quota_rows.lock(s, project_id)
            quota_rows.forget_project_limits(s, project_id)
        log.info("quotas reset to the defaults project_id=%s", project_id)

    def show_quota_class(self, ctx: RequestContext, class_name: str) -> dict[str, int]:
        ctx.authorize(QUOTA_CLASSES_RULE)
        with self.db.reading() as s:
            return quota_rows.class_limits(s, self.settings, class_name)

    def update_quota_class(
        self, ctx: RequestContext, class_name: str, limits: Mapping[str, object]
    ) -> dict[str, int]:
        """Set some of a class's limits (class `default`: every project's defaults)."""
        ctx.authorize(QUOTA_CLASSES_RULE)
        _check_name("quota class", class_name)
        with self.db.transaction() as s:
            checked = _checked_limits(limits, quota_rows.configured_defaults(s, self.settings))
            quota_rows.set_class_limits(s, class_name, checked)
            log.info("quota class set class=%s limits=%s", class_name, checked)
            return quota_rows.class_limits(s, self.settings, class_name)

    def limits(self, ctx: RequestContext, project_id: str | None = None) -> dict[str, QuotaUsage]:
        """The limits and usage of the caller's project; an admin may name
        another (a project_id from anyone else is ignored, as in Cinder)."""
        target = _limits_target(ctx, project_id)
        with self.db.reading() as s:
            limits = quota_rows.project_limits(s, self.settings, target)
            used = quota_rows.usage(s, target)
        return {r: QuotaUsage(limits[r], used[r]) for r in QUOTA_RESOURCES}

    def stored_bytes(self, ctx: RequestContext, project_id: str | None = None) -> int:
        """What the project's backups occupy in the store, counted within the
        project (ashbox.db.stored_bytes); whose, as for `limits`."""
        target = _limits_target(ctx, project_id)
        with self.db.reading() as s:
            return stored_bytes.of_project(s, target)


def _limits_target(ctx: RequestContext, project_id: str | None) -> str:
    target = project_id if project_id and ctx.is_admin else ctx.project_id
    ctx.authorize(LIMITS_RULE, target)
    return target


def _check_name(what: str, name: str) -> None:
    """A name a limit row is kept under: 1 to 255 characters (its column's)."""
    if not 0 < len(name) <= 255:
        raise InvalidInput(f"Invalid input received: a {what} has 1 to 255 characters.")


def _checked_limits(limits: Mapping[str, object], known: Iterable[str]) -> dict[str, int]:
    """The limits of a quota set body: `known` resources (those of QUOTA_RESOURCES
    and each volume type's), integers from -1 on (Cinder's messages); ids a
    client sends back are ignored."""
    resources = set(known)
    bad = [k for k in limits if k not in resources and k not in ("id", "tenant_id")]
    if bad:
        raise InvalidInput(f"Bad key(s) in quota set: {','.join(bad)}")
    checked = {}
    for resource, value in limits.items():
        if resource not in resources:
            continue
        if isinstance(value, bool):
            raise InvalidInput(f"Invalid input received: {resource} must be an integer.")
        try:
            limit = int(str(value))
        except ValueError:
            raise InvalidInput(f"Invalid input received: {resource} must be an integer.") from None
        if limit < -1:
            raise InvalidInput(f"Invalid input received: {resource} must be >= -1")
        if limit > MAX_LIMIT:
            raise InvalidInput(f"Invalid input received: {resource} must be <= {MAX_LIMIT}")
        checked[resource] = limit
    return checked
