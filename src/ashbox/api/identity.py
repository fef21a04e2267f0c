"""An authenticated caller, as an authenticator (ashbox.api.auth) hands it on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Identity:
    """Who called; `project_id` None: the URL's (noauth only)."""

    user_id: str
    project_id: str | None
    roles: tuple[str, ...]
    is_admin_project: bool = True
