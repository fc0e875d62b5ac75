"""Updates: added low-rank terms, numeric refactorisation, and what they share."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse

import woodbury_sparse as ws
from conftest import dense, rel_err, tol
from woodbury_sparse._cache import peek
from woodbury_sparse._factor import BACKEND
from woodbury_sparse._factor._bordered import BorderedFactor
from woodbury_sparse._factor._dense import DenseCholesky, DenseLU
from woodbury_sparse.testing import ar1_precision, grid_precision, random_spd
from woodbury_sparse.updates import (
    add_terms,
    refactor,
    same_pattern,
    update_a,
    with_blocks,
)

N = 30


def base_precisions(rng):
    return {
        "sparse_ar1": ar1_precision(N, 0.7),
        "dense_spd": random_spd(N, rng, dense=True),
        "diagonal": sparse.diags_array(rng.uniform(1.0, 3.0, N)),
    }


@pytest.fixture(params=["sparse_ar1", "dense_spd", "diagonal"])
def base(request, rng):
    return base_precisions(rng)[request.param]


def snapshot(W) -> dict:
    """Copies of every array an operator holds or has cached."""
    out = {}
    parts = W._parts
    for name in ("A", "B", "U", "V"):
        blk = getattr(parts, name)
        out[name] = None if blk.data is None else dense(blk.data).copy()
    for name in ("_AU", "_VA", "_O"):
        blk = peek(W._state, name[1:])
        if blk is not None:
            out[name] = blk.toarray()
            factor = blk.__dict__.get("factor")
            if isinstance(factor, DenseCholesky):
                out[name + ".L"] = factor.lower.copy()
    return out


def assert_same(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    for key, value in before.items():
        if value is None:
            assert after[key] is None
        else:
            assert np.array_equal(value, after[key]), key


# -- added terms ------------------------------------------------------------------------
def test_twenty_sequential_rank_one_additions_match_dense(base, rng, count_factorisations):
    X = 0.3 * rng.standard_normal((N, 20))
    b = rng.uniform(0.5, 2.0, 20)
    W = ws.SymmetricWoodburyMatrix(base, np.zeros((0, 0)), X=np.zeros((N, 0)))
    W.solve(np.ones(N))
    # From here on the capacitance is only ever extended, never factorised from scratch.
    count_factorisations.clear()
    history = []
    for i in range(20):
        W = add_terms(W, b[i : i + 1, None], X=X[:, i : i + 1])
        W.solve(np.ones(N))
        history.append(W)
    assert "O" not in count_factorisations
    assert isinstance(W._O.factor, DenseCholesky) and W.p == 20
    ref = np.linalg.inv(dense(base)) + X @ np.diag(1 / b) @ X.T
    eps_tol = tol(ref, 10.0, dense(base))
    assert rel_err(W.toarray(), ref) <= eps_tol
    assert rel_err(W.solve(np.eye(N)), np.linalg.inv(ref)) <= eps_tol
    assert W.logdet() == pytest.approx(np.linalg.slogdet(ref)[1], rel=1e-10)
    # every intermediate operator is still valid
    k = 7
    ref7 = np.linalg.inv(dense(base)) + X[:, :k] @ np.diag(1 / b[:k]) @ X[:, :k].T
    assert rel_err(history[k - 1].toarray(), ref7) <= eps_tol


def test_rank_one_addition_factorises_nothing(rng, monkeypatch):
    """Sherman–Morrison: neither A nor any dense matrix is factorised."""
    A = ar1_precision(N, 0.5)
    x = rng.standard_normal((N, 1))
    W0 = ws.SymmetricWoodburyMatrix(A, np.zeros((0, 0)), X=np.zeros((N, 0)))
    W0.solve(np.ones(N))

    def forbidden(*args, **kwargs):
        raise AssertionError("a factorisation was attempted")

    monkeypatch.setattr(DenseCholesky, "attempt", forbidden)
    monkeypatch.setattr(DenseLU, "attempt", forbidden)
    W1 = add_terms(W0, 2.0 * np.eye(1), X=x)
    y = W1.solve(np.arange(N, dtype=float))
    W2 = add_terms(W1, 0.5 * np.eye(1), X=x**2)
    z = W2.solve(np.arange(N, dtype=float))
    assert "factor" not in W2._parts.A.__dict__  # A is never factorised by solves
    ref1 = np.linalg.inv(A.toarray()) + x @ x.T / 2.0
    ref2 = ref1 + (x**2) @ (x**2).T / 0.5
    assert rel_err(y, np.linalg.solve(ref1, np.arange(N))) <= tol(ref1)
    assert rel_err(z, np.linalg.solve(ref2, np.arange(N))) <= tol(ref2)


def test_old_operator_unchanged_bit_for_bit_and_still_valid(base, rng):
    X = rng.standard_normal((N, 3))
    W = ws.SymmetricWoodburyMatrix(base, np.eye(3), X=X)
    b = rng.standard_normal(N)
    x_before = W.solve(b)
    logdet_before = W.logdet()
    before = snapshot(W)
    W2 = add_terms(W, np.eye(2), X=rng.standard_normal((N, 2)))
    W3 = refactor(W, B=2.0 * np.eye(3))
    W2.solve(b), W2.logdet(), W3.solve(b), W3.logdet()
    assert_same(before, snapshot(W))
    assert np.array_equal(W.solve(b), x_before)
    assert W.logdet() == logdet_before


def test_added_terms_share_cached_work(rng):
    A = ar1_precision(N, 0.6)
    B = random_spd(3, rng, density=0.9, dense=True)
    W = ws.SymmetricWoodburyMatrix(A, B, X=rng.standard_normal((N, 3)))
    W.logdet()
    W2 = add_terms(W, np.eye(2), X=rng.standard_normal((N, 2)))
    assert W2._parts.A is W._parts.A
    assert W2._parts.A.factor is W._parts.A.factor
    assert W2._parts.B.factor.first is W._parts.B  # old B and its factor shared
    assert np.array_equal(W2._AU.toarray()[:, :3], W._AU.toarray())
    assert W2._O.factor.lower[:3, :3] is not None
    assert np.array_equal(W2._O.factor.lower[:3, :3], W._O.factor.lower)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_general_terms_on_general_and_symmetric_operators(k, rng):
    A = ar1_precision(N, 0.5)
    U, V = rng.standard_normal((N, 3)), rng.standard_normal((3, N))
    U2, V2 = rng.standard_normal((N, k)), rng.standard_normal((k, N))
    B2 = np.eye(k) + 0.1 * rng.standard_normal((k, k))
    for W, term in [
        (ws.WoodburyMatrix(A, 4 * np.eye(3), U=U, V=V), U @ V / 4),
        (ws.SymmetricWoodburyMatrix(A, 4 * np.eye(3), X=U), U @ U.T / 4),
    ]:
        W.solve(np.ones(N))
        W2 = add_terms(W, B2, U=U2, V=V2)
        assert type(W2) is ws.WoodburyMatrix
        if k > 1:
            assert isinstance(W2._O.factor, BorderedFactor)
        ref = np.linalg.inv(A.toarray()) + term + U2 @ np.linalg.solve(B2, V2)
        t = tol(ref, 10.0, B2)
        assert rel_err(W2.toarray(), ref) <= t
        assert rel_err(W2.solve(np.eye(N)), np.linalg.inv(ref)) <= t
        assert rel_err(W2.T.solve(np.eye(N)), np.linalg.inv(ref.T)) <= t
        sign, logdet = W2.slogdet()
        ref_sign, ref_logdet = np.linalg.slogdet(ref)
        assert sign == ref_sign and logdet == pytest.approx(ref_logdet, rel=1e-9)


def test_indefinite_capacitance_uses_bordered_lu(rng):
    A = ar1_precision(N, 0.5)
    X1, X2 = rng.standard_normal((N, 2)), 0.05 * rng.standard_normal((N, 2))
    W = ws.SymmetricWoodburyMatrix(A, np.eye(2), X=X1)
    W.solve(np.ones(N))
    B2 = -np.diag([3.0, 5.0])  # a negative term: O' is indefinite
    W2 = add_terms(W, B2, X=X2)
    W2.solve(np.ones(N))
    assert isinstance(W2._O.factor, BorderedFactor)
    ref = np.linalg.inv(A.toarray()) + X1 @ X1.T + X2 @ np.linalg.solve(B2, X2.T)
    assert rel_err(W2.solve(np.eye(N)), np.linalg.inv(ref)) <= tol(ref)
    sign, logdet = W2.slogdet()
    assert (sign, logdet) == pytest.approx(tuple(np.linalg.slogdet(ref)), rel=1e-9)


def test_several_terms_at_once_and_lazy_old_operator(rng):
    A = grid_precision(5)
    X1 = rng.standard_normal((25, 2))
    W = ws.SymmetricWoodburyMatrix(A, np.eye(2), X=X1)  # nothing cached yet
    Xs = [rng.standard_normal((25, 1)), sparse.random_array((25, 2), density=0.5, rng=1)]
    Bs = [np.eye(1) * 2, np.diag([1.0, 3.0])]
    W2 = add_terms(W, Bs, X=Xs)
    assert peek(W2._state, "O") is None  # lazy: nothing to reuse
    ref = np.linalg.inv(A.toarray()) + X1 @ X1.T
    ref += sum(dense(x) @ np.linalg.solve(b, dense(x).T) for x, b in zip(Xs, Bs, strict=True))
    assert rel_err(W2.toarray(), ref) <= tol(ref)
    assert W2.logdet() == pytest.approx(np.linalg.slogdet(ref)[1], rel=1e-10)


def test_singular_extension_reports_singular():
    e1 = np.eye(N)[:, :1]
    W = ws.SymmetricWoodburyMatrix(np.eye(N), 3 * np.eye(1), X=e1)  # I + e₁e₁ᵀ/3, O = 4
    W.solve(np.ones(N))
    W3 = add_terms(W, -0.75 * np.eye(1), X=e1)  # − 4/3 e₁e₁ᵀ: W' = I − e₁e₁ᵀ, singular
    assert W3.slogdet() == (0.0, -np.inf)
    with pytest.raises(ws.SingularMatrixError, match="capacitance"):
        W3.solve(np.ones(N))
    W4 = add_terms(W, -1.5 * np.eye(1), X=e1)  # fine: I − e₁e₁ᵀ/3
    assert rel_err(W4.toarray(), np.eye(N) - e1 @ e1.T / 3) <= tol(np.eye(N), 1e2)


@given(
    n=st.integers(3, 25),
    ks=st.lists(st.integers(1, 3), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_sequential_block_additions_property(n, ks, seed):
    rng = np.random.default_rng(seed)
    A = ar1_precision(n, 0.4)
    W = ws.SymmetricWoodburyMatrix(A, np.eye(1), X=rng.standard_normal((n, 1)))
    ref = W.toarray()
    W.solve(np.ones(n))
    for k in ks:
        X = rng.standard_normal((n, k))
        W = add_terms(W, np.eye(k), X=X)
        W.solve(np.ones(n))
        ref = ref + X @ X.T
    assert rel_err(W.solve(np.eye(n)), np.linalg.inv(ref)) <= tol(ref)


def test_operator_methods_delegate(rng):
    W = ws.SymmetricWoodburyMatrix(ar1_precision(N, 0.3), np.eye(N))
    x = rng.standard_normal((N, 1))
    assert np.allclose(W.add_terms(np.eye(1), X=x).toarray(), W.toarray() + x @ x.T)
    assert np.allclose(W.refactor(B=2 * np.eye(N)).toarray(), W.toarray() - 0.5 * np.eye(N))
    assert W.with_blocks(A=np.eye(N)).p == N


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(B=np.eye(1), X=np.ones((N, 1)), U=np.ones((N, 1))), ValueError, "cannot be comb"),
        (dict(B=None, X=np.ones((N, 1))), TypeError, "`B` is required"),
        (dict(B=np.eye(2), X=np.ones((N, 1))), ValueError, r"`X` has shape \(30, 1\)"),
        (dict(B=np.eye(1), X=np.ones((N + 1, 1))), ValueError, "expected"),
        (dict(B=np.array([[1.0, 2.0], [0.0, 1.0]]), X=np.ones((N, 2))), ValueError, "not symm"),
        (dict(B=[], X=np.ones((N, 1))), ValueError, "empty list"),
        (dict(B=np.eye(1), X=np.ones((N, 1)) * 1j), TypeError, "complex"),
        (dict(B=np.eye(2), U=np.ones((N, 2))), ValueError, "`V` defaults to the identity"),
    ],
)
def test_add_terms_errors(kwargs, error, match):
    W = ws.SymmetricWoodburyMatrix(np.eye(N), np.eye(1), X=np.ones((N, 1)))
    with pytest.raises(error, match=match):
        add_terms(W, **kwargs)


def test_add_terms_needs_an_operator():
    with pytest.raises(TypeError, match="`W` must be a WoodburyMatrix"):
        add_terms(np.eye(3), np.eye(1), X=np.ones((3, 1)))


# -- refactorisation ---------------------------------------------------------------------
@pytest.mark.parametrize("rho", [0.2, 0.95, -0.5])
def test_refactor_new_ar1_correlation(rho, rng):
    X = rng.standard_normal((N, 2))
    W = ws.SymmetricWoodburyMatrix(ar1_precision(N, 0.5), np.eye(2), X=X)
    W.logdet()
    W2 = refactor(W, A=ar1_precision(N, rho))
    if BACKEND == "cholmod":  # refactorised at once from the old symbolic analysis
        assert "factor" in W2._parts.A.__dict__
        assert W2._parts.A.factor is not W._parts.A.factor
    ref = np.linalg.inv(ar1_precision(N, rho).toarray()) + X @ X.T
    assert W2.logdet() == pytest.approx(np.linalg.slogdet(ref)[1], rel=1e-10)
    assert rel_err(W2.solve(np.eye(N)), np.linalg.inv(ref)) <= tol(ref)
    assert rel_err(W2 @ np.eye(N), ref) <= tol(ref)


def test_refactor_new_noise_variance_shares_au(rng):
    X = rng.standard_normal((N, 3))
    W = ws.SymmetricWoodburyMatrix(ar1_precision(N, 0.5), np.eye(3), X=X)
    W.solve(np.ones(N))
    W2 = refactor(W, B=np.diag([2.0, 3.0, 4.0]))
    assert W2._AU is W._AU and W2._parts.A is W._parts.A
    ref = np.linalg.inv(ar1_precision(N, 0.5).toarray()) + X @ np.diag([1 / 2, 1 / 3, 1 / 4]) @ X.T
    assert rel_err(W2.toarray(), ref) <= tol(ref)
    assert W2.logdet() == pytest.approx(np.linalg.slogdet(ref)[1], rel=1e-10)


def test_refactor_sparse_b_and_general_operator(rng):
    Q = grid_precision(4)
    W = ws.WoodburyMatrix(ar1_precision(16, 0.3), Q)  # A⁻¹ + Q⁻¹
    W.logdet()
    W2 = refactor(W, A=ar1_precision(16, 0.6), B=grid_precision(4, kappa=2.0))
    ref = np.linalg.inv(ar1_precision(16, 0.6).toarray())
    ref += np.linalg.inv(grid_precision(4, kappa=2.0).toarray())
    assert rel_err(W2.toarray(), ref) <= tol(ref)
    assert W2.logdet() == pytest.approx(np.linalg.slogdet(ref)[1], rel=1e-10)


def test_refactor_indefinite_new_values_fall_back(rng):
    A = ar1_precision(N, 0.5)
    W = ws.WoodburyMatrix(A, np.eye(N))
    W.logdet()
    A_new = (A - 1.2 * sparse.eye_array(N)).tocsc()  # same pattern, indefinite
    W2 = refactor(W, A=A_new)
    ref = np.linalg.inv(A_new.toarray()) + np.eye(N)
    sign, logdet = W2.slogdet()
    ref_sign, ref_logdet = np.linalg.slogdet(ref)
    assert sign == ref_sign and logdet == pytest.approx(ref_logdet, rel=1e-9)


def test_refactor_refuses_a_changed_pattern():
    W = ws.SymmetricWoodburyMatrix(ar1_precision(N, 0.5), np.eye(N))
    W.logdet()
    with pytest.raises(ValueError, match="does not have the sparsity pattern of the old one"):
        refactor(W, A=grid_precision(5, k=6))
    with pytest.raises(ValueError, match=r"`A` \(30×30 dense\) does not have"):
        refactor(W, A=np.linalg.inv(np.linalg.inv(ar1_precision(N, 0.5).toarray()) + 1.0))
    # with_blocks constructs afresh instead
    W2 = with_blocks(W, A=grid_precision(5, k=6))
    ref = np.linalg.inv(grid_precision(5, k=6).toarray()) + np.eye(N)
    assert rel_err(W2.toarray(), ref) <= tol(ref)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(), TypeError, "give a new `A`, a new `B`, or both"),
        (dict(A=np.eye(N + 1)), ValueError, r"`A` has shape \(31, 31\), but the operator's"),
        (dict(A=np.triu(np.ones((N, N)))), ValueError, "`A` is not symmetric"),
        (dict(B=[]), ValueError, "`B` is an empty list"),
        (dict(A=np.ones((N, 2))), ValueError, "`A` must be square"),
    ],
)
def test_refactor_errors(kwargs, error, match):
    W = ws.SymmetricWoodburyMatrix(ar1_precision(N, 0.5), np.eye(N))
    with pytest.raises(error, match=match):
        refactor(W, **kwargs)


def test_refactor_needs_an_operator():
    with pytest.raises(TypeError, match="`W` must be a WoodburyMatrix"):
        refactor(np.eye(2), A=np.eye(2))


def test_same_pattern():
    assert same_pattern(np.eye(3), 2 * np.eye(3))  # identity vs diagonal
    assert not same_pattern(ar1_precision(4, 0.5), sparse.eye_array(4) * 2)
    assert same_pattern(np.ones((2, 2)), np.full((2, 2), 3.0))


# -- rank update / downdate of A's own factor ------------------------------------------------
@pytest.mark.parametrize("dense_c", [False, True])
@pytest.mark.parametrize("downdate", [False, True])
def test_update_a_matches_dense(downdate, dense_c, rng):
    A = grid_precision(6, kappa=1.0)
    n = A.shape[0]
    X = rng.standard_normal((n, 2))
    W = ws.SymmetricWoodburyMatrix(A, np.eye(2), X=X)
    W.logdet()
    before = snapshot(W)
    C = sparse.random_array((n, 2), density=0.1, rng=2, format="csc") * 0.5
    C = C.toarray() if dense_c else C
    W2 = update_a(W, C, downdate=downdate)
    cct = dense(C) @ dense(C).T
    A2 = A.toarray() + (-cct if downdate else cct)
    if BACKEND == "cholmod":  # the factor was updated, not recomputed
        assert "factor" in W2._parts.A.__dict__
        assert W2._parts.A.factor.positive_definite
    ref = np.linalg.inv(A2) + X @ X.T
    assert W2.logdet() == pytest.approx(np.linalg.slogdet(ref)[1], rel=1e-10)
    assert rel_err(W2.solve(np.eye(n)), np.linalg.inv(ref)) <= tol(ref, 10.0, A2)
    assert rel_err(W2 @ np.eye(n), ref) <= tol(ref, 10.0, A2)
    assert_same(before, snapshot(W))


@pytest.mark.parametrize("kind", ["sparse", "dense"])
def test_downdate_that_loses_positive_definiteness_is_a_fresh_operator(kind):
    """``A − C Cᵀ`` indefinite: factorised afresh (``LDLᵀ``/LU), as the constructor would.

    It used to raise ``NotPositiveDefiniteError`` — but only when ``W`` happened to hold
    a positive definite factor of ``A``; a fresh operator with the same ``A`` is valid.
    """
    A = ar1_precision(N, 0.5)
    A = A if kind == "sparse" else A.toarray()
    W = ws.SymmetricWoodburyMatrix(A, np.eye(N))
    W.logdet()
    C = np.zeros((N, 1))
    C[3] = 1.5  # A₃₃ = 1.25 < 2.25
    W2 = update_a(W, C, downdate=True)
    A2 = dense(A) - C @ C.T
    ref = np.linalg.inv(A2) + np.eye(N)
    sign, logdet = W2.slogdet()
    ref_sign, ref_logdet = np.linalg.slogdet(ref)
    assert not W2._parts.A.factor.positive_definite
    assert sign == ref_sign and abs(logdet - ref_logdet) <= tol(ref, 10.0, A2)
    assert rel_err(W2.solve(np.eye(N)), np.linalg.inv(ref)) <= tol(ref, 10.0, A2)
    fresh = ws.SymmetricWoodburyMatrix(A2, np.eye(N))
    assert fresh.slogdet()[0] == sign
    W3 = update_a(W, 0.5 * C, downdate=True)  # 1.25 − 0.5625: still positive definite
    if BACKEND == "cholmod" and kind == "sparse":
        assert W3._parts.A.__dict__["factor"].positive_definite  # the downdated factor
    ref = np.linalg.inv(dense(A) - 0.25 * C @ C.T) + np.eye(N)
    assert W3.logdet() == pytest.approx(np.linalg.slogdet(ref)[1], rel=1e-10)


def test_update_a_without_cached_factor_is_lazy(rng):
    A = ar1_precision(N, 0.3)
    W = ws.SymmetricWoodburyMatrix(A, np.eye(N))
    C = rng.standard_normal((N, 1))
    W2 = update_a(W, C)
    assert "factor" not in W2._parts.A.__dict__
    ref = np.linalg.inv(A.toarray() + C @ C.T) + np.eye(N)
    assert rel_err(W2.toarray(), ref) <= tol(ref)


def test_update_a_errors():
    W = ws.SymmetricWoodburyMatrix(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match=r"`C` has shape \(4, 1\), but `A` is 3×3"):
        update_a(W, np.ones((4, 1)))
    with pytest.raises(TypeError, match="`W` must be a WoodburyMatrix"):
        update_a(np.eye(3), np.ones((3, 1)))
    with pytest.raises(ValueError, match="`C` contains NaN"):
        update_a(W, np.full((3, 1), np.nan))
