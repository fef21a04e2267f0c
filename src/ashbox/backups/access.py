"""Who may see and do what: a project sees its own resources, an admin every
project's; admin actions carry Cinder's policy names."""

from __future__ import annotations

from ashbox.errors import Forbidden
from ashbox.records import RequestContext


def scope(ctx: RequestContext) -> str | None:
    """The project a request may see; None: every project (an admin)."""
    return None if ctx.is_admin else ctx.project_id


def require_admin(ctx: RequestContext, rule: str) -> None:
    """Forbidden, with Cinder's message, unless the request is an admin's."""
    if not ctx.is_admin:
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")
