"""Every known failure mode of the underlying libraries, caught: one test each."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from conftest import dense, rel_err, tol
from woodbury_sparse import testing
from woodbury_sparse._factor import BACKEND
from woodbury_sparse._factor._sparse import CholmodFactor


def _check_against_dense(W, reference, c: float = 10.0, *blocks) -> None:
    n = W.n
    b = np.cos(np.arange(n) + 0.3)
    bound = tol(reference, c, *blocks)
    assert rel_err(W.toarray(), reference) <= bound
    assert rel_err(W.solve(b), np.linalg.solve(reference, b)) <= bound
    sign, logdet = W.slogdet()
    ref_sign, ref_logdet = np.linalg.slogdet(reference)
    assert sign == ref_sign
    assert abs(logdet - ref_logdet) <= bound * max(1.0, abs(ref_logdet))


def test_simplicial_cholmod_on_indefinite_matrix_is_detected(rng):
    """CHOLMOD's simplicial ``LDLᵀ`` does not raise on indefinite input: pivots decide."""
    n = 30
    A = testing.random_symmetric_indefinite(n, rng)
    B = sparse.eye_array(n)
    W = ws.WoodburyMatrix(A, B)
    assert isinstance(W, ws.SymmetricWoodburyMatrix) and W._parts.A.kind == "sparse"
    factor = W._parts.A.factor
    assert factor.positive_definite is False
    assert factor.method == ("cholmod-ldlt" if BACKEND == "cholmod" else "superlu-ldlt")
    _check_against_dense(W, testing.dense_woodbury(A, B), 10.0, A)
    with pytest.raises(ws.NotPositiveDefiniteError):
        W.as_covariance()
    if BACKEND == "cholmod":  # the raw factor: negative pivots, no exception
        raw = CholmodFactor.attempt(sparse.csc_array(A))
        assert raw is not None and not raw.positive_definite
        assert np.any(raw.handle.pivots() < 0)


def test_refactor_with_another_pattern_is_refused(rng):
    n = 20
    A = testing.random_spd(n, rng)
    W = ws.WoodburyMatrix(A, sparse.eye_array(n))
    W.slogdet()  # factorised: a same-pattern refactorisation would reuse the analysis
    i, j = np.argwhere(A.toarray() == 0)[0]  # a structural zero, filled in symmetrically
    other = A + sparse.csc_array(([1e-3, 1e-3], ([i, j], [j, i])), shape=(n, n))
    assert other.nnz > A.nnz
    with pytest.raises(ValueError, match="pattern"):
        W.refactor(A=other)
    # Same pattern, new values: accepted, and right.
    W2 = W.refactor(A=2 * A)
    _check_against_dense(W2, testing.dense_woodbury(2 * A, sparse.eye_array(n)), 10.0, A)


def test_one_triangle_input_is_never_half_read(rng):
    n = 20
    spd = testing.random_spd(n, rng, density=0.3)
    upper = sparse.triu(spd, format="csc")
    B = sparse.eye_array(n)
    with pytest.raises(ValueError, match="`A` is not symmetric"):
        ws.WoodburyMatrix(upper, B, symmetric=True)
    with pytest.raises(ValueError, match="`A` is not symmetric"):
        ws.WoodburyMatrix(upper, np.eye(2), X=rng.standard_normal((n, 2)))
    W = ws.WoodburyMatrix(upper, B)  # the general matrix it is: upper triangular
    assert type(W) is ws.WoodburyMatrix
    _check_against_dense(W, testing.dense_woodbury(upper, B), 10.0, upper)
    # and not what CHOLMOD would make of it (the symmetric matrix behind the triangle)
    assert rel_err(W.toarray(), testing.dense_woodbury(spd, B)) > 1e-3


def _unsorted(m: sparse.csc_array) -> sparse.csc_array:
    """A CSC copy of ``m`` with every column's row indices in reverse order."""
    m = sparse.csc_array(m, copy=True)
    m.sort_indices()
    indices, data = m.indices.copy(), m.data.copy()
    for j in range(m.shape[1]):
        lo, hi = m.indptr[j], m.indptr[j + 1]
        indices[lo:hi] = indices[lo:hi][::-1]
        data[lo:hi] = data[lo:hi][::-1]
    out = sparse.csc_array((data, indices, m.indptr.copy()), shape=m.shape)
    out.has_sorted_indices = False
    return out


def test_callers_unsorted_matrix_comes_back_untouched(rng):
    n = 40
    A = _unsorted(testing.random_spd(n, rng, density=0.2))
    B = _unsorted(testing.random_spd(n, rng, density=0.2))
    assert not A.has_sorted_indices
    snapshots = [(m, m.data.copy(), m.indices.copy(), m.indptr.copy()) for m in (A, B)]

    def untouched():
        for m, data, indices, indptr in snapshots:
            np.testing.assert_array_equal(m.data, data)
            np.testing.assert_array_equal(m.indices, indices)
            np.testing.assert_array_equal(m.indptr, indptr)
            assert not m.has_sorted_indices

    W = ws.WoodburyMatrix(A, B)
    untouched()
    b = rng.standard_normal(n)
    for operation in (
        lambda: W.solve(b),
        lambda: W @ b,
        W.slogdet,
        W.capacitance_rcond,
        lambda: W.refactor(A=A, B=B).slogdet(),
        lambda: W.with_blocks(A=A).solve(b),
        lambda: ws.dwnorm(b, np.zeros(n), W),
        lambda: W.as_covariance().whiten(b),
    ):
        operation()
        untouched()
    _check_against_dense(W, testing.dense_woodbury(A, B), 10.0, A, B)


def test_int64_and_int32_indices_give_identical_results(rng):
    n = 30
    A = testing.random_spd(n, rng)
    B = testing.random_spd(n, rng)
    results = []
    for itype in (np.int32, np.int64):
        a, bb = (sparse.csc_array(m, copy=True) for m in (A, B))
        for m in (a, bb):
            m.indices = m.indices.astype(itype)
            m.indptr = m.indptr.astype(itype)
        assert a.indices.dtype == itype
        W = ws.WoodburyMatrix(a, bb)
        b = np.linspace(-1, 1, n)
        results.append((W.solve(b), W @ b, W.slogdet(), ws.dwnorm(b, np.zeros(n), W)))
    for first, second in zip(*results, strict=True):
        np.testing.assert_array_equal(np.asarray(first), np.asarray(second))


@pytest.mark.parametrize("fmt", ["csr", "coo", "lil", "dok", "bsr", "dia", "csc"])
def test_sparse_formats_trigger_no_conversion_warnings(fmt, rng):
    n = 20
    A = testing.random_spd(n, rng).asformat(fmt)
    B = testing.random_spd(n, rng).asformat(fmt)
    B4 = testing.random_spd(4, rng).asformat(fmt)
    X = testing.random_sparse(n, 4, 0.4, rng).asformat(fmt)
    b = rng.standard_normal(n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SparseEfficiencyWarning, anything
        W1 = ws.WoodburyMatrix(A, B)
        W2 = ws.WoodburyMatrix(A, B4, X=X)
        results = [W.solve(b) for W in (W1, W2)] + [W1.slogdet(), W2.slogdet()]
        W1 @ b, W2 @ b, W1.solve(sparse.csc_array(b[:, None]))
    assert np.all(np.isfinite(results[0])) and np.all(np.isfinite(results[1]))
    _check_against_dense(W2, testing.dense_woodbury(A, B4, X=X), 10.0, A, B4)


@pytest.mark.parametrize("kind", ["sparse", "dense", "diagonal"])
def test_overflow_mid_computation_is_reported(kind, rng):
    """Entries ``~1e200`` are finite, their products are not: an error, never inf/NaN."""
    n, p = 12, 2
    big = np.full(n, 1e200)
    A = {
        "sparse": sparse.csc_array(
            sparse.diags_array([big, np.ones(n - 1), np.ones(n - 1)], offsets=[0, 1, -1])
        ),
        "dense": np.diag(big) + np.eye(n, k=1) + np.eye(n, k=-1),
        "diagonal": sparse.diags_array(big),
    }[kind]
    X = rng.standard_normal((n, p)) * 1e200
    W = ws.WoodburyMatrix(A, np.eye(p), X=X)
    assert isinstance(W, ws.SymmetricWoodburyMatrix)
    for operation in (
        lambda: W.solve(np.ones(n)),
        W.slogdet,
        W.capacitance_rcond,
        lambda: W.inv() @ np.ones(n),
    ):
        with pytest.raises(ws.FactorizationError, match="overflow") as info:
            operation()
        assert info.value.block == "O"
    with pytest.raises((FloatingPointError, ws.FactorizationError), match="inf or NaN"):
        W @ np.ones(n)


def test_overflow_in_products_only():
    """A finite ``O`` but an overflowing ``W x``: FloatingPointError, not inf."""
    n = 4
    U, V = np.full((n, 1), 1e160), np.full((1, n), 1e-160)
    W = ws.WoodburyMatrix(np.eye(n), np.eye(1), U=U, V=V)
    assert W.capacitance_rcond() == 1.0  # O = 1 + 4 = 5: finite, perfectly conditioned
    with pytest.raises(FloatingPointError, match="W @ x produced inf or NaN"):
        W @ np.full(n, 1e308)
    assert np.all(np.isfinite(W.solve(np.full(n, 1e308))))  # and right where finite


def test_zero_pivot_sparse_symmetric_falls_back_to_superlu():
    """``[[0, 1], [1, 0]]`` blocks: CHOLMOD's ``LDLᵀ`` meets a zero pivot; SuperLU pivots."""
    n = 30
    m = sparse.lil_array((n, n))
    for i in range(0, n, 2):
        m[i, i + 1] = m[i + 1, i] = 1.0 + i / n
    A = sparse.csc_array(m)
    B = 3.0 * sparse.eye_array(n)
    W = ws.WoodburyMatrix(A, B)
    assert isinstance(W, ws.SymmetricWoodburyMatrix) and W._parts.A.kind == "sparse"
    _check_against_dense(W, testing.dense_woodbury(A, B), 10.0, A)
    assert W._parts.A.factor.method == "superlu"
    assert not W._parts.A.factor.positive_definite


def test_singular_block_is_refused_not_returned():
    """A block singular to working precision: SingularMatrixError naming it."""
    n = 10
    A = testing.ar1_precision(n, 0.5)
    B = sparse.csc_array(np.ones((n, n)) + 1e-17 * np.eye(n))  # rank one
    W = ws.WoodburyMatrix(A, B)
    with pytest.raises(ws.SingularMatrixError) as info:
        W @ np.ones(n)
    assert info.value.block == "B"
    assert dense(W.B).shape == (n, n)


@pytest.mark.parametrize("n", [30, 200])
def test_singular_projection_passing_the_pivot_ratio_is_refused(n, rng):
    """``A = I − c cᵀ/cᵀc`` is singular, yet CHOLMOD factorises it with a pivot ratio of
    ~1e-13, above ``n·eps``: the free screen alone let ``W @ 1`` return ~1e16 and
    ``slogdet`` a finite value. A screen below √eps is confirmed by the 1-norm estimate."""
    c = rng.standard_normal(n)
    A = sparse.csc_array(np.eye(n) - np.outer(c, c) / (c @ c))
    W = ws.WoodburyMatrix(A, sparse.eye_array(n))
    for compute in (lambda: W @ np.ones(n), W.slogdet):
        with pytest.raises(ws.SingularMatrixError, match=r"`A` is singular to working") as info:
            compute()
        assert info.value.block == "A"
    # the same block reached by a refactorisation of a healthy one
    healthy = ws.WoodburyMatrix(sparse.csc_array(np.eye(n) + np.outer(c, c)), sparse.eye_array(n))
    healthy.slogdet()
    with pytest.raises(ws.SingularMatrixError, match=r"`A` is singular to working"):
        ws.refactor(healthy, A=A).slogdet()
