"""The per-process cache of operators restored from pickles (what Dask workers share).

Operators pickle by value with an identity token (see ``_operators._restore``); this
cache maps each token to the operator a process restored first, so that every task a
worker runs on the same operator uses (and factorises) one object. It reads operators'
caches without importing the operator classes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ._cache import peek

if TYPE_CHECKING:  # pragma: no cover
    from ._operators import WoodburyMatrix

__all__ = ["OPERATOR_CACHE"]


class _OperatorCache:
    """A bounded, thread-safe, per-process LRU of restored operators, keyed by token.

    Unpickling the same operator again in a process (a Dask worker receiving it with
    every task, say) returns the operator restored first, with the factorisations it has
    built since: each process factorises each operator once. Only operators restored from
    a pickle are held, never the ones a process builds itself.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[str, WoodburyMatrix] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.restores: dict[str, int] = {}

    def get(self, token: str, build) -> WoodburyMatrix:
        with self._lock:
            op = self._entries.get(token)
            if op is not None:
                self._entries.move_to_end(token)
                self.hits += 1
                return op
            op = build()
            self.misses += 1
            self.restores[token] = self.restores.pop(token, 0) + 1
            self._entries[token] = op
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
            while len(self.restores) > 8 * self.maxsize:  # bounded too: oldest first
                del self.restores[next(iter(self.restores))]
            return op

    def info(self) -> dict:
        """Counters, and for each cached token its class and the blocks factorised so far."""
        with self._lock:
            entries = dict(self._entries)
            out: dict[str, Any] = {
                "maxsize": self.maxsize,
                "hits": self.hits,
                "misses": self.misses,
            }
            restores = dict(self.restores)
        out["operators"] = {
            token: {
                "class": type(op).__name__,
                "restores": restores.get(token, 0),
                "factorised": _factorised_blocks(op),
            }
            for token, op in entries.items()
        }
        return out

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0
            self.restores.clear()


def _factorised_blocks(op: WoodburyMatrix) -> list[str]:
    """Which of ``A``, ``B`` and ``O`` ``op`` has factorised.

    Its transpose factorises nothing of its own: its blocks' factorisations are ``op``'s.
    """
    names = []
    for name in ("A", "B", "O"):
        block = peek(op._state, "O") if name == "O" else getattr(op._state.parts, name)
        if block is not None and peek(block, "factor") is not None:
            names.append(name)
    return names


#: The operators this process restored from pickles (see :class:`_OperatorCache`).
OPERATOR_CACHE = _OperatorCache(maxsize=32)
