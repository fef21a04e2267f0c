"""Keys in OpenStack's Barbican, through castellan (the library Cinder uses).

The options are castellan's own, given as `group.option` in
`key_manager_options` (docs/keys.md): `barbican.barbican_endpoint`,
`key_manager.auth_type` (`keystone_password`, `keystone_token`, ...) and the
credentials it needs. ashbox acts with those credentials, a service's: a
worker runs long after the request that asked for the work, whose token may
have expired (Cinder retries a failed key delete with its service
credentials for the same reason).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ashbox.errors import KeyManagerError

_ALGORITHM = "AES"
_BITS = 256


class BarbicanKeyManager:
    def __init__(self, api: Any, context: Any) -> None:
        self._api = api
        self._context = context

    @classmethod
    def of(cls, options: Mapping[str, str]) -> BarbicanKeyManager:
        """A manager configured with castellan's options (`group.option` keys)."""
        from castellan import key_manager
        from castellan import options as castellan_options
        from castellan.common import exception, utils
        from oslo_config import cfg

        conf = cfg.ConfigOpts()
        conf(args=[], project="ashbox", default_config_files=[], default_config_dirs=[])
        castellan_options.set_defaults(conf, backend="barbican")
        conf.register_opts(utils.credential_opts, group=utils.OPT_GROUP)
        api = key_manager.API(conf)
        try:
            for name, value in options.items():
                group, _, option = name.rpartition(".")
                conf.set_override(option, value, group=group or None)
            context = utils.credential_factory(conf)
        except (cfg.Error, ValueError, exception.CastellanException) as e:
            raise KeyManagerError(f"Bad key_manager_options: {e}") from e
        return cls(api, context)

    def create_key(self) -> str:
        return str(self._call(self._api.create_key, algorithm=_ALGORITHM, length=_BITS))

    def clone(self, key_id: str) -> str:
        return str(self._call(self._api.store, self._call(self._api.get, key_id)))

    def key_bytes(self, key_id: str) -> bytes:
        return bytes(self._call(self._api.get, key_id).get_encoded())

    def delete(self, key_id: str) -> None:
        from castellan.common import exception

        try:
            self._api.delete(self._context, key_id)
        except exception.ManagedObjectNotFoundError:
            return
        except exception.CastellanException as e:
            raise KeyManagerError(f"Key manager: cannot delete key {key_id}: {e}") from e

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        from castellan.common import exception

        try:
            return method(self._context, *args, **kwargs)
        except exception.CastellanException as e:
            raise KeyManagerError(f"Key manager: {e}") from e
