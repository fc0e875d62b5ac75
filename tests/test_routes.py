"""Every route to an operator gives the answers and the errors of building it afresh.

An operator can be built by the constructor, or from another one by ``refactor``,
``with_blocks`` (CHOLMOD's symbolic analysis reused), ``add_terms`` (the capacitance's
factorisation extended by a bordered block) and ``update_a`` (a CHOLMOD rank update or
downdate of ``A``'s factor). Factorisations reached by those routes used to skip the
singularity test of a fresh factorisation: a cancelled capacitance (removing a pathway,
``Σ − u uᵀ`` numerically singular) gave finite log-determinants and 1e15-sized solves
where the constructor raises ``SingularMatrixError``.

The explicit cases below failed before the routes were held to the constructor's tests;
the property draws structures (as ``test_properties`` does) and compares every route with
the constructor: the same error class and block, or answers that agree within
``C·n·eps·κ``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from conftest import EPS, dense, rel_err
from woodbury_sparse import testing
from woodbury_sparse.updates import add_terms, refactor, update_a, with_blocks

#: The constant of the tolerance ``C · n · eps · κ`` (as in ``test_properties``).
C = 10.0


def outcome(W, b: np.ndarray):
    """``("ok", solve, sign, logdet)``, or ``("error", class, block)`` from the first failure.

    ``slogdet`` of a singular capacitance is ``(0, -inf)``, not an error: both are
    recorded as they are.
    """
    try:
        x = W.solve(b)
    except ws.FactorizationError as exc:
        return ("error", type(exc), exc.block, W.slogdet() if exc.block == "O" else None)
    sign, logdet = W.slogdet()
    return ("ok", x, sign, logdet)


def assert_same_error(route, fresh) -> None:
    assert route[0] == fresh[0] == "error", (route[:3], fresh[:3])
    assert route[1:3] == fresh[1:3]
    assert route[3] == fresh[3]  # (0, -inf) from slogdet for a singular O, both ways


def removal(n: int, p: int, seed: int):
    """``A``, ``X₁`` and a pathway ``u`` with ``Σ − u uᵀ`` singular, ``Σ = A⁻¹ + X₁X₁ᵀ``.

    ``u = v / √(vᵀ Σ⁻¹ v)`` makes ``uᵀ Σ⁻¹ u = 1``: ``Σ − u uᵀ`` has ``Σ⁻¹u`` in its
    kernel. Removing ``u`` is adding the term ``u (−1)⁻¹ uᵀ``.
    """
    rng = np.random.default_rng(seed)
    A = testing.ar1_precision(n, 0.5)
    X1 = rng.standard_normal((n, p))
    sigma = np.linalg.inv(A.toarray()) + X1 @ X1.T
    v = rng.standard_normal((n, 1))
    u = v / np.sqrt((v.T @ np.linalg.solve(sigma, v)).item())
    assert np.linalg.cond(sigma - u @ u.T) > 1e15
    return A, X1, u


# -- explicit singular cases ------------------------------------------------------------------
@pytest.mark.parametrize("p", [1, 3, 8])
@pytest.mark.parametrize("seed", range(4))
def test_removing_a_pathway_that_cancels_is_singular_on_every_route(p, seed):
    n = 30
    A, X1, u = removal(n, p, seed)
    b = np.ones(n)
    fresh = outcome(ws.WoodburyMatrix(A, [np.eye(p), -np.eye(1)], X=[X1, u]), b)
    assert fresh[:3] == ("error", ws.SingularMatrixError, "O")
    assert fresh[3] == (0.0, -np.inf)
    W = ws.WoodburyMatrix(A, np.eye(p), X=X1)
    W.solve(b)  # the capacitance is factorised: add_terms extends its factor
    assert_same_error(outcome(add_terms(W, -np.eye(1), X=u), b), fresh)
    assert_same_error(outcome(W.add_terms(-np.eye(1), X=u), b), fresh)
    with pytest.raises(ws.SingularMatrixError, match="the capacitance O = B \\+ V A U is sing"):
        add_terms(W, -np.eye(1), X=u).solve(b)


@pytest.mark.parametrize("seed", range(4))
def test_general_term_that_cancels_is_singular_on_every_route(seed):
    """The general form: ``Σ − u wᵀ`` with ``wᵀ Σ⁻¹ u = 1``, through a bordered LU."""
    n, p = 30, 3
    rng = np.random.default_rng(seed)
    A = testing.ar1_precision(n, 0.5)
    U1, V1 = rng.standard_normal((n, p)), rng.standard_normal((p, n))
    sigma = np.linalg.inv(A.toarray()) + U1 @ V1
    u, w = rng.standard_normal((n, 1)), rng.standard_normal((n, 1))
    u = u / (w.T @ np.linalg.solve(sigma, u)).item()
    b = np.ones(n)
    fresh = outcome(ws.WoodburyMatrix(A, [np.eye(p), -np.eye(1)], U=[U1, u], V=[V1, w.T]), b)
    assert fresh[:3] == ("error", ws.SingularMatrixError, "O")
    W = ws.WoodburyMatrix(A, np.eye(p), U=U1, V=V1)
    W.solve(b)
    assert_same_error(outcome(add_terms(W, -np.eye(1), U=u, V=w.T), b), fresh)


def _near_intrinsic(kappa: float) -> sparse.csc_array:
    """``κ² I + L`` on a 6×5 grid: the Laplacian ``L`` is singular, so tiny ``κ`` is too."""
    return testing.grid_precision(6, kappa, 5)


@pytest.mark.parametrize("how", ["refactor", "with_blocks", "method"])
def test_refactorised_numerically_singular_a_is_refused_as_afresh(how):
    """CHOLMOD refactorises ``κ² I + L`` with ``κ = 1e-9`` (pivots > 0) on the old analysis.

    A fresh factorisation refuses it (a pivot of ~1e-18 against ~8); the refactorisation
    used to be installed unchecked.
    """
    n = 30
    b = np.ones(n)
    singular = _near_intrinsic(1e-9)
    fresh = ws.WoodburyMatrix(singular, sparse.eye_array(n))
    with pytest.raises(ws.SingularMatrixError, match="`A` is singular") as info:
        fresh @ b
    W = ws.WoodburyMatrix(_near_intrinsic(0.5), sparse.eye_array(n))
    W.slogdet()  # factorises A: the symbolic analysis to reuse
    route = {
        "refactor": lambda: refactor(W, A=singular),
        "with_blocks": lambda: with_blocks(W, A=singular),
        "method": lambda: W.refactor(A=singular),
    }[how]()
    with pytest.raises(ws.SingularMatrixError, match="`A` is singular") as again:
        route @ b
    assert str(again.value) == str(info.value)
    with pytest.raises(ws.SingularMatrixError, match="`A` is singular"):
        route.slogdet()


def test_refactorised_numerically_singular_b_is_refused_as_afresh():
    n = 30
    singular = _near_intrinsic(1e-9)
    fresh = ws.WoodburyMatrix(sparse.eye_array(n), singular)
    with pytest.raises(ws.SingularMatrixError, match="`B` is singular") as info:
        fresh.slogdet()
    W = ws.WoodburyMatrix(sparse.eye_array(n), _near_intrinsic(0.5))
    W.slogdet()
    route = refactor(W, B=singular)
    with pytest.raises(ws.SingularMatrixError, match="`B` is singular") as again:
        route.slogdet()
    assert str(again.value) == str(info.value)


def test_routes_that_do_not_cancel_still_reuse_their_factorisations():
    """The checks do not cost the reuse: a regular result keeps the reused factor."""
    n, p = 30, 3
    A, X1, u = removal(n, p, 0)
    W = ws.WoodburyMatrix(A, np.eye(p), X=X1)
    W.solve(np.ones(n))
    W2 = add_terms(W, -4.0 * np.eye(1), X=u)  # Σ − u uᵀ/4: regular
    assert "factor" in W2._O.__dict__
    ref = np.linalg.inv(A.toarray()) + X1 @ X1.T - u @ u.T / 4
    assert rel_err(W2.solve(np.eye(n)), np.linalg.inv(ref)) <= C * n * EPS * np.linalg.cond(ref)
    W3 = ws.WoodburyMatrix(_near_intrinsic(0.5), sparse.eye_array(n))
    W3.slogdet()
    W4 = refactor(W3, A=_near_intrinsic(0.7))
    if ws.backend_info()["backend"] == "cholmod":
        assert W4._parts.A.__dict__["factor"].analysis_reused
    ref = np.linalg.inv(dense(_near_intrinsic(0.7))) + np.eye(n)
    assert abs(W4.logdet() - np.linalg.slogdet(ref)[1]) <= C * n * EPS * np.linalg.cond(ref)


@pytest.mark.parametrize("shrink", [0, 1, 2, 4, 8])
def test_downdate_to_a_numerically_singular_a_is_refused_as_afresh(shrink):
    """``Q − (0.75 − δ) e eᵀ`` for the AR(1) precision ``Q`` (ρ = 0.5), ``e`` its last unit vector.

    ``Q``'s last pivot is ``1 − ρ² = 0.75``: the downdate leaves a pivot of a few ulps. A
    fresh operator refuses it; the CHOLMOD downdate was installed unchecked and gave
    products of size 1e16.
    """
    n = 30
    A = testing.ar1_precision(n, 0.5)
    W = ws.WoodburyMatrix(A, np.eye(n))
    W.slogdet()
    C = np.zeros((n, 1))
    C[-1] = np.sqrt(0.75 * (1.0 - shrink * EPS))
    route = update_a(W, C, downdate=True)
    cs = sparse.csc_array(C)
    fresh = ws.WoodburyMatrix(A - cs @ cs.T, np.eye(n))
    b = np.ones(n)
    with pytest.raises(ws.SingularMatrixError, match="`A` is singular") as info:
        fresh @ b
    with pytest.raises(ws.SingularMatrixError, match="`A` is singular") as again:
        route @ b
    assert str(again.value) == str(info.value)
