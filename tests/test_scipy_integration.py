"""SciPy's Krylov solvers and LinearOperator algebra accept Woodbury operators."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.linalg import LinearOperator, aslinearoperator, cg, gmres, minres

import woodbury_sparse as ws
from conftest import CATALOGUE, NAMES, case, rel_err
from woodbury_sparse._cache import peek

RTOL = 1e-10
PD = [name for name in NAMES if "pd" in CATALOGUE[name].tags]
SYMMETRIC = [name for name in NAMES if CATALOGUE[name].symmetric]
GENERAL = [name for name in NAMES if not CATALOGUE[name].symmetric]


def krylov_tol(c) -> float:
    """A residual below ``RTOL·‖b‖`` bounds the relative error by ``κ(W)·RTOL``."""
    return 10 * c.kappa * RTOL


def rhs(n: int) -> np.ndarray:
    return np.cos(np.arange(n) + 0.5)


@pytest.mark.parametrize("name", PD)
def test_cg(name):
    c = case(name)
    W = c.build()
    b = rhs(c.n)
    x, info = cg(W, b, rtol=RTOL, maxiter=20 * c.n)
    assert info == 0
    assert rel_err(x, W.solve(b)) <= krylov_tol(c)


@pytest.mark.parametrize("name", PD)
def test_cg_preconditioned_by_the_inverse(name):
    c = case(name)
    W = c.build()
    b = rhs(c.n)
    iterations = []
    x, info = cg(W, b, rtol=RTOL, M=W.inv(), callback=lambda xk: iterations.append(1))
    assert info == 0
    assert len(iterations) <= 3
    assert rel_err(x, W.solve(b)) <= krylov_tol(c)


@pytest.mark.parametrize("name", SYMMETRIC)
def test_minres(name):
    c = case(name)
    W = c.build()
    b = rhs(c.n)
    x, info = minres(W, b, rtol=RTOL, maxiter=20 * c.n)
    assert info == 0
    # minres's rtol bounds ‖r‖/(‖W‖‖x‖) and it may stop a little early on its estimate
    assert rel_err(x, W.solve(b)) <= 10 * krylov_tol(c)


@pytest.mark.parametrize("name", [*GENERAL, "spd_rectangular", "symmetric_indefinite_identity"])
def test_gmres(name):
    c = case(name)
    W = c.build()
    b = rhs(c.n)
    x, info = gmres(W, b, rtol=RTOL, restart=c.n, maxiter=20)
    assert info == 0
    assert rel_err(x, W.solve(b)) <= krylov_tol(c)
    # with W⁻¹ as preconditioner gmres is done at once
    x, info = gmres(W, b, rtol=RTOL, M=W.inv(), restart=c.n, maxiter=2)
    assert info == 0
    assert rel_err(x, W.solve(b)) <= krylov_tol(c)


@pytest.mark.parametrize("name", ["general_rectangular", "spd_rectangular"])
def test_linear_operator_algebra(name):
    c = case(name)
    W = c.build()
    D = c.W_dense
    n = c.n
    x = rhs(n)
    X = np.stack([x, x[::-1]], axis=1)
    t = c.tol()
    op = aslinearoperator(W)
    assert op is W  # already a LinearOperator
    assert rel_err(op @ x, D @ x) <= t
    assert rel_err(aslinearoperator(W).matmat(X), D @ X) <= t

    other = aslinearoperator(sparse.diags_array(np.linspace(1, 2, n)))
    M = np.diag(np.linspace(1, 2, n))
    cases = [
        (W + other, D + M),
        (other + W, M + D),
        (W - other, D - M),
        (2 * W, 2 * D),
        (W * 2.5, 2.5 * D),
        (-W, -D),
        (W @ W, D @ D),
        (W @ other, D @ M),
        (other @ W, M @ D),
        (W.T @ W, D.T @ D),
        (W**2, D @ D),
        (W @ W.inv(), np.eye(n)),
        (W.inv() @ W, np.eye(n)),
        (W + W.T, D + D.T),
    ]
    for composite, ref in cases:
        assert isinstance(composite, LinearOperator)
        assert composite.dtype == np.float64
        assert composite.shape == (n, n)
        assert rel_err(composite @ x, ref @ x) <= t
        assert rel_err(composite.matmat(X), ref @ X) <= t
        assert rel_err(composite.rmatvec(x), ref.T @ x) <= t
        assert rel_err(composite.T @ x, ref.T @ x) <= t
    # sparse operands through the composite operators
    xs = sparse.csr_array(X)
    assert rel_err((2 * W) @ xs.toarray(), 2 * D @ X) <= t
    assert rel_err(W @ xs, D @ X) <= t


def test_linear_operator_from_dtype_never_probes():
    """Passing ``dtype`` to LinearOperator means building W factorises nothing."""
    W = case("spd_rectangular").build()
    assert "factor" not in W._parts.A.__dict__
    assert "factor" not in W._parts.B.__dict__
    assert peek(W._state, "O") is None
    W.inv()
    assert peek(W._state, "O") is None
    2 * W + W
    assert "factor" not in W._parts.A.__dict__
    assert isinstance(W, ws.WoodburyMatrix)
