"""A thread-safe ``cached_property`` for the lazy caches of immutable objects.

``functools.cached_property`` lost its lock in Python 3.12: two threads reading a cold
cache would both build it (two factorisations of the same matrix, and the later one
silently replacing the earlier one that other threads may already hold). This version
builds each value exactly once per object, under a per-object re-entrant lock, and reads
a warm cache without locking.
"""

from __future__ import annotations

import threading
from typing import Any

_LOCK_KEY = "_cache_lock"
_LOCK_CREATION = threading.Lock()


class _CacheLock:
    """A re-entrant lock that pickles (and copies) as a new, unlocked lock."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc):
        return self._lock.__exit__(*exc)

    def __reduce__(self):
        return (_CacheLock, ())


def _object_lock(obj: Any) -> _CacheLock:
    state = obj.__dict__
    lock = state.get(_LOCK_KEY)
    if lock is None:
        with _LOCK_CREATION:
            lock = state.setdefault(_LOCK_KEY, _CacheLock())
    return lock


class cached_property:
    """Like :class:`functools.cached_property`, but built once even under threads."""

    def __init__(self, func) -> None:
        self.func = func
        self.attrname: str | None = None
        self.__doc__ = func.__doc__
        self.__module__ = func.__module__

    def __set_name__(self, owner, name: str) -> None:
        self.attrname = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        state = obj.__dict__
        try:
            return state[self.attrname]
        except KeyError:
            pass
        with _object_lock(obj):
            if self.attrname not in state:
                state[self.attrname] = self.func(obj)
            return state[self.attrname]
