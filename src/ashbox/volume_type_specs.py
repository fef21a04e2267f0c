"""Whether ashbox's volume backend can hold a volume of a type: the type's extra
specs against the backend's capabilities, as Cinder's scheduler matches them
(its CapabilitiesFilter and `extra_specs_ops`).

A key with a scope other than `capabilities:` (`RESKEY:…`, `qos:…`, a
vendor's) is not about capabilities and is skipped; any other key names a
capability the backend must report, and its value must match what the backend
reports: exactly, or through one of Cinder's operators (`<is> True`,
`<in> x`, `<or> a <or> b`, `>= 10`, `s== text`, …). A volume of a type the
backend cannot match is not created: it goes to `error` with a user message,
as a volume Cinder's scheduler finds no backend for.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping

from ashbox import __version__

Capability = str | bool | int | float | None


def backend_capabilities(backend_name: str) -> dict[str, Capability]:
    """What ashbox's one volume backend reports (sparse files on a filesystem)."""
    return {
        "volume_backend_name": backend_name,
        "vendor_name": "ashbox",
        "storage_protocol": "file",
        "driver_version": __version__,
        "thin_provisioning_support": True,
        "thick_provisioning_support": False,
        "multiattach": False,
        "QoS_support": False,
        "replication_enabled": False,
    }


def _number(compare: Callable[[float, float], bool]) -> Callable[[Capability, str], bool]:
    def check(have: Capability, want: str) -> bool:
        try:
            return compare(float(str(have)), float(want))
        except ValueError:
            return False

    return check


def _text(compare: Callable[[str, str], bool]) -> Callable[[Capability, str], bool]:
    return lambda have, want: compare(str(have), want)


def _is(have: Capability, want: str) -> bool:
    wanted = want.lower()
    return (have is True and wanted == "true") or (have is False and wanted == "false")


_OPERATORS: dict[str, Callable[[Capability, str], bool]] = {
    "=": _number(operator.ge),  # Cinder's: "at least", for free space and the like
    "==": _number(operator.eq),
    "!=": _number(operator.ne),
    ">=": _number(operator.ge),
    "<=": _number(operator.le),
    "s==": _text(operator.eq),
    "s!=": _text(operator.ne),
    "s<": _text(operator.lt),
    "s<=": _text(operator.le),
    "s>": _text(operator.gt),
    "s>=": _text(operator.ge),
    "<in>": lambda have, want: want in str(have),
    "<is>": _is,
}


def matches(have: Capability, want: str) -> bool:
    """Whether a reported capability satisfies one extra spec's value."""
    words = want.split()
    if not words or words[0] not in (*_OPERATORS, "<or>", "<all-in>"):
        return _plain(have) == want
    if have is None:
        return False
    op, operands = words[0], words[1:]
    if op == "<or>":
        # "<or> a <or> b": every other word is a choice.
        return _plain(have) in operands[::2]
    if op == "<all-in>":
        return all(word in str(have) for word in operands)
    return bool(operands) and _OPERATORS[op](have, operands[0])


def _plain(have: Capability) -> str:
    """A capability as a spec's text names it (`True`, not `true`)."""
    return str(have)


def unmet(
    extra_specs: Mapping[str, str | None], capabilities: Mapping[str, Capability]
) -> str | None:
    """The first spec the backend does not meet, as `key=value`; None if all are met."""
    for key, want in extra_specs.items():
        scope, _, name = key.partition(":")
        if name and scope != "capabilities":
            continue  # not about capabilities
        capability = name if name else key
        if capability not in capabilities:
            return f"{key}={want}"
        if not matches(capabilities[capability], want or ""):
            return f"{key}={want}"
    return None
