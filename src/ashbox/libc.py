"""The few C library calls the os module lacks (fallocate, sync_file_range,
the cachestat syscall, mallopt): loaded once, here, with one error rule."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from collections.abc import Callable
from typing import Any


def _load() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    except OSError:
        return None


_LIBC = _load()

CFunction = Callable[..., int]


def function(name: str, argtypes: list[Any] | None) -> CFunction | None:
    """The C library's `name` returning an int, with `argtypes` (None: left
    unchecked, for a variadic call); None where the library lacks it."""
    func = getattr(_LIBC, name, None) if _LIBC is not None else None
    if func is None:
        return None
    if argtypes is not None:
        func.argtypes = argtypes
    func.restype = ctypes.c_int
    loaded: CFunction = func
    return loaded


def call(func: CFunction | None, name: str, *args: Any) -> None:
    """Call `func` (from `function`); OSError from errno unless it returns 0,
    ENOSYS if the library lacks it."""
    if func is None:
        raise OSError(errno.ENOSYS, f"{name} is not available")
    if func(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
