"""A thread-safe ``cached_property`` for the lazy caches of immutable objects.

``functools.cached_property`` lost its lock in Python 3.12: two threads reading a cold
cache would both build it (two factorisations of the same matrix, and the later one
silently replacing the earlier one that other threads may already hold). This version
builds each value exactly once per object, under a per-object re-entrant lock, and reads
a warm cache without locking.
"""

from __future__ import annotations

import threading
import weakref
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


class weak_cached_property(cached_property):
    """A cache that holds its value weakly: handed out again while someone else holds it.

    For values that hold a strong reference back to the object (a transpose, an inverse,
    a covariance view): caching them strongly would form a reference cycle, which only the
    cyclic garbage collector frees, with every factorisation the cycle reaches. Held
    weakly, the value is the same object for as long as it is in use, and is rebuilt
    (sharing the object's caches, so at no factorisation's cost) once dropped.
    """

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        state = obj.__dict__
        ref = state.get(self.attrname)
        value = None if ref is None else ref()
        if value is not None:
            return value
        with _object_lock(obj):
            ref = state.get(self.attrname)
            value = None if ref is None else ref()
            if value is None:
                value = self.func(obj)
                state[self.attrname] = weakref.ref(value)
            return value

    def __set__(self, obj, value):
        # A data descriptor, so that reading the attribute always dereferences the weak
        # reference (a plain cached_property is read straight from ``__dict__``).
        raise AttributeError(f"{self.attrname} is a cache and cannot be set")


def seed(obj: Any, name: str, value: Any) -> None:
    """Give ``obj``'s cache ``name`` its value at construction (``obj`` being built).

    For values a new object receives from the one it was derived from (a factorisation
    whose analysis was reused, a product that did not change): its constructor seeds
    them, and nothing writes into an object's caches after it has been handed out.
    """
    if value is not None:
        obj.__dict__[name] = value


def peek(obj: Any, name: str) -> Any:
    """``obj``'s cache ``name`` when it has been built, else ``None`` (builds nothing)."""
    return obj.__dict__.get(name)


class Handover:
    """A value handed over once: whoever takes it holds it; this no longer does.

    A hint from an old object to a new one (a factorisation whose symbolic analysis the
    new one may reuse) that must not keep the old object's memory alive once used.
    """

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def take(self) -> Any:
        value, self._value = self._value, None
        return value

    def __reduce__(self):
        return (Handover, (None,))  # only a hint: not pickled (CHOLMOD's cannot be)
