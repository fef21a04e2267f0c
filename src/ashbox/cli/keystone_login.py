"""Keystone credentials for the `ashbox` command, found as the OpenStack clients find
them: `OS_CLOUD` and clouds.yaml, or `OS_AUTH_URL`, `OS_USERNAME`, ... variables.

openstacksdk's configuration loader reads them and keystoneauth1 logs in; the
token and the `block-storage` endpoint of the catalog are then used by the
command's own HTTP client. Both libraries are imported only on this path (half a
second): a command given `--token` or `ASHBOX_TOKEN` never loads them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ashbox.errors import InvalidInput

SERVICE_TYPE = "block-storage"
_VERSIONED_PATH = re.compile(r"/v3(/[^/]*)?/?$")


class KeystoneUnreachable(Exception):
    """Keystone did not answer (the command's exit code 4, as an unreachable service)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(reason)
        self.url = url
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Login:
    url: str  # the service's root: the catalog endpoint without /v3/<project>
    token: str
    cafile: str | None


def configured(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("OS_CLOUD") or environ.get("OS_AUTH_URL"))


def log_in(environ: Mapping[str, str]) -> Login:
    """A token and the service's URL from Keystone; InvalidInput if the credentials or
    the catalog do not give them, KeystoneUnreachable if Keystone does not answer."""
    import openstack.config
    from keystoneauth1 import exceptions as ks

    try:
        cloud = openstack.config.OpenStackConfig().get_one(cloud=environ.get("OS_CLOUD"))
        session = cloud.get_session()
        token = session.get_token()
        endpoint = session.get_endpoint(
            service_type=SERVICE_TYPE,
            interface=cloud.get_interface() or "public",
            region_name=cloud.get_region_name() or None,
        )
    except ks.ConnectFailure as exc:
        raise KeystoneUnreachable(str(environ.get("OS_AUTH_URL", "Keystone")), str(exc)) from exc
    except (ks.ClientException, openstack.exceptions.ConfigException) as exc:
        raise InvalidInput(f"Keystone login failed: {exc}") from exc
    if not token or not endpoint:
        raise InvalidInput(f"The Keystone catalog has no {SERVICE_TYPE} endpoint")
    cafile = cloud.config.get("cacert")
    return Login(_VERSIONED_PATH.sub("", endpoint), token, str(cafile) if cafile else None)
