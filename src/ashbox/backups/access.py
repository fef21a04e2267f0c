"""Which project's resources a request may see: its own; an admin's, every project's.

What a caller may *do* is the policy's to say (`RequestContext.authorize`,
ashbox.policy); this only narrows what a lookup finds, so another project's id
answers 404, never 403.
"""

from __future__ import annotations

from ashbox.records import RequestContext


def scope(ctx: RequestContext) -> str | None:
    """The project a request may see; None: every project (an admin)."""
    return None if ctx.is_admin else ctx.project_id
