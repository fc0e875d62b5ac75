"""A thread-safe ``cached_property`` for the lazy caches of immutable objects.

``functools.cached_property`` lost its lock in Python 3.12: two threads reading a cold
cache would both build it (two factorisations of the same matrix, and the later one
silently replacing the earlier one that other threads may already hold). This version
builds each value exactly once per object, under a per-object re-entrant lock, and reads
a warm cache without locking.
"""

from __future__ import annotations

import _thread
import weakref
from collections.abc import Callable
from typing import Any, Generic, NoReturn, TypeVar, overload

_T = TypeVar("_T")

LOCK_KEY = "_cache_lock"


class _CacheLock(_thread.RLock):  # type: ignore[misc]  # final in typeshed only: 3.10–3.13 allow it
    """A re-entrant lock that pickles (and copies) as a new, unlocked lock.

    A subclass of the C ``RLock`` itself (``threading.RLock`` is a Python function that
    returns one): made, entered and left without a Python frame, as the caches of a
    first call make about fifteen of them.
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[type[_CacheLock], tuple[()]]:
        return (_CacheLock, ())


def _object_lock(obj: Any) -> _CacheLock:
    state = obj.__dict__
    lock = state.get(LOCK_KEY)
    if lock is None:
        # dict.setdefault is atomic: of two threads that both missed, one lock is kept and
        # both use it; no process-wide lock is taken once per object.
        lock = state.setdefault(LOCK_KEY, _CacheLock())
    return lock


class cached_property(Generic[_T]):
    """Like :class:`functools.cached_property`, but built once even under threads.

    Typed as the function it wraps: reading it on an instance gives the function's return
    type (the descriptor itself on the class).
    """

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self.func = func
        self.attrname: str = func.__name__  # the name it is assigned to (__set_name__)
        self.__doc__ = func.__doc__
        self.__module__ = func.__module__

    def __set_name__(self, owner: type, name: str) -> None:
        self.attrname = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> cached_property[_T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> _T: ...
    def __get__(self, obj: object, objtype: type | None = None) -> _T | cached_property[_T]:
        if obj is None:
            return self
        state = obj.__dict__
        name = self.attrname
        try:
            return state[name]
        except KeyError:
            pass
        lock = state.get(LOCK_KEY)  # _object_lock, inlined: read on every cold cache
        if lock is None:
            lock = state.setdefault(LOCK_KEY, _CacheLock())
        with lock:
            try:
                return state[name]
            except KeyError:
                value = state[name] = self.func(obj)
                return value


class weak_cached_property(cached_property[_T]):
    """A cache that holds its value weakly: handed out again while someone else holds it.

    For values that hold a strong reference back to the object (a transpose, an inverse,
    a covariance view): caching them strongly would form a reference cycle, which only the
    cyclic garbage collector frees, with every factorisation the cycle reaches. Held
    weakly, the value is the same object for as long as it is in use, and is rebuilt
    (sharing the object's caches, so at no factorisation's cost) once dropped.
    """

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> cached_property[_T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> _T: ...
    def __get__(self, obj: object, objtype: type | None = None) -> _T | cached_property[_T]:
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

    def __set__(self, obj: object, value: object) -> NoReturn:
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

    def __reduce__(self) -> tuple[type[Handover], tuple[None]]:
        return (Handover, (None,))  # only a hint: not pickled (CHOLMOD's cannot be)
