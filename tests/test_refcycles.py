"""No reference cycles: dropping the last reference to an operator frees it at once.

A transpose or an inverse holds what it needs of its operand (a forward reference); the
operand keeps only weak references to its transpose and inverse. So nothing an operator
reaches points back at it, and reference counting alone frees the operator with its
factorisations (CHOLMOD's among them): these tests run with the cyclic garbage collector
disabled. SciPy tests its own operators the same way (``test_MatrixLinearOperator_refcycle``,
gh-10634); ``lsqr``, ``lsmr``, ``svds``, ``bicg`` and ``qmr`` all take the adjoint.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse._cache import peek
from woodbury_sparse.testing import ar1_precision, grid_precision

N, P = 300, 4


def general() -> ws.WoodburyMatrix:
    rng = np.random.default_rng(0)
    U, V = rng.standard_normal((N, P)), rng.standard_normal((P, N))
    return ws.WoodburyMatrix(grid_precision(15, k=N // 15), np.eye(P) * 5.0, U=U, V=V)


def general_dense() -> ws.WoodburyMatrix:
    rng = np.random.default_rng(1)
    A = np.eye(40) * 4.0 + rng.standard_normal((40, 40)) * 0.1
    U, V = rng.standard_normal((40, P)), rng.standard_normal((P, 40))
    return ws.WoodburyMatrix(A, np.eye(P) * 3.0, U=U, V=V)


def symmetric() -> ws.WoodburyMatrix:
    X = sparse.random_array((N, P), density=0.3, rng=2, format="csc")
    return ws.WoodburyMatrix(ar1_precision(N, 0.9), np.eye(P), X=X)


def symmetric_dense_x() -> ws.WoodburyMatrix:
    X = np.random.default_rng(3).standard_normal((N, P))
    return ws.WoodburyMatrix(ar1_precision(N, 0.5), 2.0 * np.eye(P), X=X)


BUILDERS = {
    "general": general,
    "general_dense": general_dense,
    "symmetric": symmetric,
    "symmetric_dense_x": symmetric_dense_x,
}


def _everything(op) -> Iterator[object]:
    """The operator, the blocks it holds and the factorisations built so far."""
    yield op
    for one in (op, op.__dict__.get("W")):
        if not isinstance(one, ws.WoodburyMatrix):
            continue
        yield one._state
        parts = one._parts
        cached = [peek(one._state, "O"), peek(one._state, "AU")]
        blocks = [parts.A, parts.B, parts.U, parts.V, *cached]
        for block in blocks:
            if block is None:
                continue
            yield block
            factor = block.__dict__.get("factor")
            if factor is not None:
                yield factor


def _uses(W: ws.WoodburyMatrix) -> list[Callable[[np.ndarray], object]]:
    return [
        W.solve,
        lambda b: W.slogdet(),
        W.matvec,
        lambda b: W.T @ b,
        lambda b: W.H @ b,
        lambda b: W.T.solve(b),
        lambda b: W.inv() @ b,
        lambda b: W.inv().T @ b,
        lambda b: W.inv().H @ b,
        lambda b: W.inv().toarray(),
    ]


def _freed_after(build: Callable[[], list]) -> None:
    """Build objects with ``gc`` disabled, drop them, and check all are freed."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        refs = [weakref.ref(obj) for obj in build()]
        assert refs
        alive = [type(ref()).__name__ for ref in refs if ref() is not None]
        assert alive == []
    finally:
        if enabled:
            gc.enable()


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("use", range(10))
def test_operator_freed_after_use(name, use):
    def build():
        W = BUILDERS[name]()
        b = np.linspace(-1.0, 1.0, W.n)
        _uses(W)[use](b)
        return list(_everything(W))

    _freed_after(build)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_operator_freed_after_every_use(name):
    def build():
        W = BUILDERS[name]()
        b = np.linspace(-1.0, 1.0, W.n)
        for use in _uses(W):
            use(b)
        return [*_everything(W), W.T, W.H, W.inv(), W.inv().T, *_everything(W.inv())]

    _freed_after(build)


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("derived", ["T", "H", "inv", "inv.T"])
def test_derived_operator_keeps_what_it_needs(name, derived):
    """Holding only ``W.T`` (or the inverse) keeps it working; dropping it frees all."""

    def build():
        W = BUILDERS[name]()
        b = np.linspace(-1.0, 1.0, W.n)
        expected = {"T": W.T @ b, "H": W.H @ b, "inv": W.solve(b), "inv.T": W.T.solve(b)}
        op = {"T": W.T, "H": W.H, "inv": W.inv(), "inv.T": W.inv().T}[derived]
        refs = list(_everything(W))
        del W
        np.testing.assert_array_equal(op @ b, expected[derived])
        return [*refs, op]

    _freed_after(build)


def test_symmetric_transpose_is_itself_without_self_reference():
    W = symmetric()
    assert W.T is W and W.H is W
    assert all(value is not W for value in W.__dict__.values())


def test_parameter_loop_frees_each_operator():
    """``W = W.refactor(A=…); W.logdet(); W.inv()``: each old operator is freed."""

    def build():
        W = symmetric()
        b = np.ones(W.n)
        seen = []
        for rho in (0.5, 0.6, 0.7):
            W = W.refactor(A=ar1_precision(N, rho))
            W.logdet()
            W.inv() @ b
            W.T @ b
            seen.extend(_everything(W))
        return seen

    _freed_after(build)


@pytest.mark.parametrize("name", ["general", "symmetric"])
def test_update_chains_free_each_operator(name):
    def build():
        W = BUILDERS[name]()
        b = np.ones(W.n)
        seen = []
        W.solve(b)
        seen.extend(_everything(W))
        rng = np.random.default_rng(4)
        x = rng.standard_normal((W.n, 1))
        if name == "symmetric":
            W2 = W.add_terms(np.eye(1), X=x)
        else:
            W2 = W.add_terms(np.eye(1), U=x, V=x.T)
        W2.solve(b)
        W2.slogdet()
        W3 = W2.refactor(B=2.0 * W2.B)
        W3.solve(b)
        W3.T @ b
        W4 = W3.with_blocks(A=W3.A)
        W4.inv() @ b
        for one in (W2, W3, W4):
            seen.extend(_everything(one))
        return seen

    _freed_after(build)


def test_covariance_freed():
    def build():
        W = symmetric()
        cov = W.as_covariance()
        cov.whiten(np.ones(W.n))
        cov.colorize(np.ones(W.n))
        return [*_everything(W), cov]

    _freed_after(build)
