"""Refactorisation on a shared sparsity pattern (a parameter sweep's fast path).

``updates.refactor`` builds a new sparse symmetric ``A`` on the old one's index arrays
(its symmetry settled by a per-pattern map of mirrored entries) and, for ``X = I`` with a
diagonal ``B``, the new capacitance ``O = B + A`` on the same arrays. Every result must
equal a freshly built operator's, and every input the fast path does not prove fit must
take the general path with its errors and warnings.
"""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse import _updating
from woodbury_sparse._cache import peek
from woodbury_sparse._exceptions import AsymmetryWarning, FactorizationError
from woodbury_sparse._factor import BACKEND
from woodbury_sparse.testing import ar1_precision, grid_precision
from woodbury_sparse.updates import refactor

N = 300  # above the order (256) below which O is made dense


def _memory(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _warm(Q, b=None):
    n = Q.shape[0]
    B = sparse.eye_array(n, format="csc") if b is None else sparse.diags_array(b, format="csc")
    W = ws.SymmetricWoodburyMatrix(Q, B)
    ws.dwnorm(np.ones(n), covariance=W, log=True)
    return W


def _dense_logpdf(Q, b, x):
    cov = np.linalg.inv(Q.toarray()) + np.diag(1.0 / b)
    sign, logdet = np.linalg.slogdet(cov)
    assert sign > 0
    return -0.5 * (x.size * np.log(2 * np.pi) + logdet + x @ np.linalg.solve(cov, x))


@pytest.mark.parametrize(
    "make",
    [
        lambda r: ar1_precision(N, r),
        lambda r: grid_precision(18, kappa=0.2 + r),  # 324: a pattern with fill
    ],
    ids=["ar1", "grid"],
)
def test_sweep_matches_fresh_and_dense(make, rng):
    Q0 = make(0.3)
    n = Q0.shape[0]
    b = rng.uniform(0.5, 2.0, n)
    x = rng.standard_normal(n)
    W = _warm(Q0, b)
    before = W._parts.A.data.data.copy()
    for r in (0.5, 0.7, 0.9):
        Q = make(r)
        W2 = refactor(W, A=Q)
        fresh = ws.SymmetricWoodburyMatrix(Q, sparse.diags_array(b, format="csc"))
        got = ws.dwnorm(x, covariance=W2, log=True)
        assert got == ws.dwnorm(x, covariance=fresh, log=True)
        assert got == pytest.approx(_dense_logpdf(Q, b, x), rel=1e-10)
        assert np.allclose(W2.solve(x), np.linalg.solve(W2.toarray(), x), rtol=1e-9, atol=0)
        W = W2
    assert np.array_equal(refactor(W, A=Q0)._parts.A.data.data, before)


@pytest.mark.skipif(BACKEND != "cholmod", reason="the capacitance's reuse needs CHOLMOD")
def test_new_blocks_share_the_pattern_and_the_analysis():
    W = _warm(ar1_precision(N, 0.3))
    W2 = refactor(W, A=ar1_precision(N, 0.8))
    a_old, a_new = W._parts.A.data, W2._parts.A.data
    assert _memory(a_new.indices) == _memory(a_old.indices)
    assert _memory(a_new.indptr) == _memory(a_old.indptr)
    assert not a_new.data.flags.writeable and a_new.has_canonical_format
    o = peek(W2._state, "O")  # built by the update, not on first use
    assert o is not None and o.kind == "sparse" and o.symmetric and o.name == "O"
    assert _memory(o.data.indices) == _memory(a_old.indices)
    assert peek(o, "rcond_bound") is not None
    assert o.factor.analysis_reused
    ref = (ar1_precision(N, 0.8) + sparse.eye_array(N)).toarray()
    assert np.array_equal(o.data.toarray(), ref)
    # the old operator keeps its own values and factors
    old_o = (ar1_precision(N, 0.3) + sparse.eye_array(N)).toarray()
    assert np.array_equal(W._state.O.data.toarray(), old_o)


def test_csr_and_int64_inputs_take_the_same_values(rng):
    W = _warm(ar1_precision(N, 0.3))
    Q = ar1_precision(N, 0.6)
    wide = sparse.csc_array(
        (Q.data, Q.indices.astype(np.int64), Q.indptr.astype(np.int64)), shape=Q.shape
    )
    x = rng.standard_normal(N)
    expected = ws.dwnorm(x, covariance=refactor(W, A=Q), log=True)
    for value in (sparse.csr_array(Q), sparse.csr_matrix(Q), wide, sparse.coo_array(Q)):
        assert ws.dwnorm(x, covariance=refactor(W, A=value), log=True) == expected


def test_asymmetric_values_take_the_general_path():
    W = _warm(ar1_precision(N, 0.3))
    Q = ar1_precision(N, 0.6)
    slightly = Q.copy()
    slightly.data[1] *= 1 + 1e-12  # (1, 0) but not (0, 1): above rounding, below √eps
    with pytest.warns(AsymmetryWarning, match="symmetric only to"):
        W2 = refactor(W, A=slightly)
    assert np.array_equal(W2._parts.A.toarray(), 0.5 * (slightly + slightly.T).toarray())
    wrong = Q.copy()
    wrong.data[1] = 5.0
    with pytest.raises(ValueError, match="`A` is not symmetric"):
        refactor(W, A=wrong)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_are_refused(bad):
    W = _warm(ar1_precision(N, 0.3))
    Q = ar1_precision(N, 0.6)
    Q.data[[1, 3]] = bad  # (1, 0) and (0, 1): symmetric
    with pytest.raises(ValueError, match="`A` contains NaN or infinite values"):
        refactor(W, A=Q)


def test_overflowing_capacitance_is_reported_as_by_a_fresh_operator():
    W = _warm(ar1_precision(N, 0.3), b=np.full(N, 1.0))
    big = (1e308 * ar1_precision(N, 0.3)).tocsc()
    W2 = refactor(W, A=big, B=sparse.diags_array(np.full(N, 1e308), format="csc"))
    with pytest.raises(FactorizationError, match="overflowed"):
        W2.logdet()


@pytest.mark.parametrize(
    "make, entries",
    [
        (lambda r: grid_precision(18, kappa=0.2 + r), 1),  # one pattern, one entry
        (lambda r: ar1_precision(N, r), 0),  # a validated band needs no map: arithmetic
    ],
    ids=["grid", "band"],
)
def test_a_pattern_is_forgotten_with_its_arrays(make, entries):
    gc.collect()
    count = len(_updating._PATTERNS)
    W = _warm(make(0.3))
    W2 = refactor(W, A=make(0.5))
    W3 = refactor(W2, A=make(0.7))
    assert len(_updating._PATTERNS) == count + entries
    del W, W2, W3
    gc.collect()
    assert len(_updating._PATTERNS) == count


def test_general_operator_is_unaffected(rng):
    Q = ar1_precision(N, 0.3)
    W = ws.WoodburyMatrix(Q, sparse.eye_array(N, format="csc"))
    W.logdet()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        W2 = refactor(W, A=ar1_precision(N, 0.6))
    ref = np.linalg.inv(ar1_precision(N, 0.6).toarray()) + np.eye(N)
    assert W2.logdet() == pytest.approx(np.linalg.slogdet(ref)[1], rel=1e-10)
