"""Shared fixtures, hypothesis profiles and tolerance helpers of the test suite.

Tolerances are never magic numbers: :func:`tol` is ``c · n · eps · κ`` with ``κ`` the
condition number of the dense reference (and of any other matrix the computation goes
through), and each call site states its ``c``.
"""

from __future__ import annotations

import os
import threading
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from scipy import sparse

from woodbury_sparse import _blocks, testing

# -- hypothesis profiles ------------------------------------------------------------------
# The default, ``ci``, is derandomised: every run of ``make test`` draws the same examples,
# so the suite passes or fails the same way every time (and uses no example database).
# ``explore`` (``make test-explore``) and ``thorough`` draw fresh random examples on every run
# to hunt for bugs and miscalibrated tolerances; a failure prints the blob to reproduce it
# (``@reproduce_failure``).
_COMMON = dict(deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", derandomize=True, max_examples=40, **_COMMON)
settings.register_profile("explore", max_examples=300, **_COMMON)
settings.register_profile("thorough", max_examples=1500, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "ci")

EPS = float(np.finfo(np.float64).eps)

#: Default constant of :func:`tol`: the dense reference and the operator each make
#: errors of a few ``n·eps·κ``; 10 covers both with room and is still orders of magnitude
#: below any real mistake (a wrong sign or term gives errors of order 1).
C_DEFAULT = 10.0


def dense(m) -> np.ndarray:
    """Any matrix (sparse or not) as a float64 ndarray."""
    if sparse.issparse(m):
        return m.toarray().astype(np.float64)
    return np.asarray(m, dtype=np.float64)


def cond(m) -> float:
    """2-norm condition number of a (dense) square matrix; 1 for an empty one."""
    m = dense(m)
    if m.size == 0:
        return 1.0
    return float(np.linalg.cond(m))


def tol(reference, c: float = C_DEFAULT, *others) -> float:
    """``c · n · eps · κ``: a relative tolerance for a computation involving ``reference``.

    ``κ`` is the largest condition number of ``reference`` and of ``others`` (the blocks
    the operator factorises on the way), ``n`` the order of ``reference``.
    """
    reference = dense(reference)
    kappa = max([cond(reference), *(cond(m) for m in others)])
    return c * max(1, reference.shape[0]) * EPS * kappa


def rel_err(actual, expected) -> float:
    """Relative Frobenius error (see :func:`woodbury_sparse.testing.relative_error`)."""
    return testing.relative_error(actual, expected)


# -- the catalogue ------------------------------------------------------------------------
CATALOGUE = testing.catalogue()
NAMES = sorted(CATALOGUE)


class Case:
    """A catalogue problem with its dense references, computed once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.problem = CATALOGUE[name]
        self.W_dense = self.problem.dense()
        self.n = self.W_dense.shape[0]
        kw = self.problem.kwargs
        blocks = [kw["A"]]
        bs = kw["B"] if isinstance(kw["B"], list) else [kw["B"]]
        blocks += [b for b in bs if dense(b).size]
        #: The condition numbers the operator's accuracy depends on: W's own and those of
        #: the blocks it factorises.
        self.blocks = blocks
        self.kappa = max(cond(m) for m in [self.W_dense, *blocks])

    def tol(self, c: float = C_DEFAULT) -> float:
        return tol(self.W_dense, c, *self.blocks)

    def build(self):
        return self.problem.build()

    def __repr__(self) -> str:
        return f"Case({self.name!r})"


@cache
def case(name: str) -> Case:
    return Case(name)


@pytest.fixture(params=NAMES)
def problem_case(request) -> Case:
    """Every problem of :func:`woodbury_sparse.testing.catalogue`, with dense references."""
    return case(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


@pytest.fixture
def count_factorisations(monkeypatch) -> list[str]:
    """The names (``"A"``, ``"B"``, ``"O"``) of the blocks factorised from scratch while the
    test runs, in order; safe under threads. ``.clear()`` it to start counting later.

    Counts the calls of the factorisation layer made by the blocks (``_blocks.factorize``);
    the real factorisation is still made.
    """
    calls: list[str] = []
    lock = threading.Lock()
    original = _blocks.factorize

    def counting(matrix, kind, n, symmetric, name, **keywords):
        with lock:
            calls.append(name)
        return original(matrix, kind, n, symmetric, name, **keywords)

    monkeypatch.setattr(_blocks, "factorize", counting)
    return calls
