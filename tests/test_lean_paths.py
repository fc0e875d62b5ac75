"""The shortened paths of a first and a repeated log density, against dense references.

Issue 15 cut the Python calls, floating-point guards and NumPy passes of
``dwnorm(y, covariance=W)`` for the regression case (diagonal ``A``, diagonal ``B``,
dense ``X``); every check they replaced must still hold, and every value must still
agree with the dense computation.
"""

from __future__ import annotations

import copy
import pickle
import threading
import warnings

import numpy as np
import pytest
from scipy import sparse, stats

import woodbury_sparse as ws
from woodbury_sparse import _core
from woodbury_sparse._blocks import FINITE_CHUNK, all_finite
from woodbury_sparse._cache import _CacheLock
from woodbury_sparse._exceptions import SingularMatrixError
from woodbury_sparse._factor import factorize
from woodbury_sparse._validation import as_block


def _regression(n: int, p: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p))
    d = rng.uniform(0.5, 2.0, n)  # noise precisions
    tau = rng.uniform(1.0, 3.0)
    W = ws.SymmetricWoodburyMatrix(sparse.diags_array(d), tau * np.eye(p), X=x)
    dense = np.diag(1 / d) + x @ x.T / tau
    return W, dense, rng


# -- finiteness --------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 7, FINITE_CHUNK, FINITE_CHUNK + 1, 3 * FINITE_CHUNK])
@pytest.mark.parametrize("layout", ["c", "f", "strided"])
def test_all_finite_agrees_with_isfinite(size, layout):
    rng = np.random.default_rng(size)
    base = rng.standard_normal((max(size, 1), 2)) * 1e300  # sums overflow: entry-wise look
    m = {"c": base, "f": np.asfortranarray(base), "strided": base[:, ::2]}[layout][:size]
    assert all_finite(m) is bool(np.all(np.isfinite(m)))
    for bad in (np.nan, np.inf, -np.inf):
        for where in (0, -1):
            if m.size == 0:
                continue
            broken = np.array(m)  # same layout class (C) is enough: the values matter
            broken.flat[where] = bad
            assert not all_finite(broken)
            assert not all_finite(broken.T)


@pytest.mark.parametrize("what", ["A", "B", "X", "x"])
def test_non_finite_inputs_are_refused_by_name(what):
    W, _, rng = _regression(40, 3)
    d = np.full(40, 2.0)
    b = 3.0 * np.eye(3)
    x = rng.standard_normal((40, 3))
    y = rng.standard_normal(40)
    {"A": d, "B": b, "X": x, "x": y}[what][1] = np.nan
    with pytest.raises(ValueError, match=f"`{what}` contains NaN or infinite values"):
        W = ws.SymmetricWoodburyMatrix(sparse.diags_array(d), b, X=x)
        ws.dwnorm(y, covariance=W, log=True)


# -- as_block ----------------------------------------------------------------------------
def test_as_block_copies_and_freezes_plain_arrays_and_matrices():
    # (np.matrix multiplies with *: a block holding one would compute the wrong products)
    x = np.arange(12.0).reshape(4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        matrix = np.matrix(x)
    block = as_block(matrix, "X")  # an ndarray subclass: stored as a plain array
    assert type(block.data) is np.ndarray
    assert not block.data.flags.writeable
    np.testing.assert_array_equal(block.data, x)
    ints = as_block(np.arange(12).reshape(4, 3), "X")  # converted, not viewed
    assert ints.data.dtype == np.float64
    np.testing.assert_array_equal(ints.data, x)
    x[0, 0] = 99.0  # the caller's array stays the caller's
    assert block.data[0, 0] == 0.0


@pytest.mark.parametrize(
    ("matrix", "kind"),
    [(2.5 * np.eye(4), "diagonal"), (np.eye(4), "identity"), (np.eye(4, k=1) + np.eye(4), "dense")],
)
def test_dense_square_blocks_are_recognised_by_kind(matrix, kind):
    block = as_block(matrix, "B", square=True)
    assert block.kind == kind
    np.testing.assert_array_equal(block.toarray(), matrix)


# -- diagonal factors ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "d",
    [
        np.array([0.5, 2.0, 3.0]),
        np.array([1e-300, 1e300, 2.0]),
        np.array([-1.0, 2.0, 3.0]),
        np.array([6e-309, 1.0]),  # subnormal, its reciprocal still finite
    ],
)
def test_diagonal_factor_agrees_with_the_dense_determinant(d):
    factor = factorize(d, "diagonal", d.size, True, "A")
    assert factor.positive_definite == bool(np.all(d > 0))
    sign, logdet = np.linalg.slogdet(np.diag(d))
    assert factor.slogdet[0] == sign
    np.testing.assert_allclose(factor.slogdet[1], logdet, rtol=1e-15)
    np.testing.assert_array_equal(factor.solve(np.ones(d.size)), 1.0 / d)


@pytest.mark.parametrize("d", [np.array([1.0, 0.0]), np.array([1.0, 1e-310]), np.array([2.0])])
def test_diagonal_factor_refuses_reciprocals_that_are_not_finite(d):
    if d.size == 1:  # the fast path itself: a positive normal diagonal passes
        assert factorize(d, "diagonal", 1, True, "A").positive_definite
        return
    with pytest.raises(SingularMatrixError):
        factorize(d, "diagonal", d.size, True, "A")


# -- the capacitance's condition estimate -------------------------------------------------
def test_capacitance_rcond_is_the_estimate_of_the_singularity_check():
    W, _, _ = _regression(300, 6)
    state = W._state
    factor = state.O.factor
    assert factor.rcond_estimate is not None
    fresh = factor.rcond(state.O.one_norm())
    assert state.capacitance_rcond == fresh
    o = state.O.toarray()
    true = 1.0 / (np.linalg.norm(o, 1) * np.linalg.norm(np.linalg.inv(o), 1))
    assert true / 3 <= state.capacitance_rcond <= 3 * true


# -- the log density ------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "p"), [(1, 2), (60, 5), (2000, 20)])
def test_log_density_matches_the_dense_reference_first_and_repeated(n, p):
    W, dense, rng = _regression(n, p, seed=n)
    y = rng.multivariate_normal(np.zeros(n), dense)
    mean = rng.standard_normal(n)
    reference = stats.multivariate_normal(np.zeros(n), dense)
    for _ in range(2):  # first (cold caches) and repeated
        np.testing.assert_allclose(
            ws.dwnorm(y, covariance=W, log=True), reference.logpdf(y), rtol=1e-11
        )
    points = rng.standard_normal((3, n))
    np.testing.assert_allclose(
        ws.dwnorm(points, mean, covariance=W, log=True),
        stats.multivariate_normal(mean, dense).logpdf(points),
        rtol=1e-11,
    )
    assert ws.dwnorm(np.zeros((0, n)), covariance=W, log=True).shape == (0,)
    assert isinstance(ws.dwnorm(y, covariance=W, log=True), float)


def test_quadratic_forms_beyond_the_float64_range_are_infinite_without_warnings():
    W, dense, rng = _regression(50, 3)
    y = rng.standard_normal(50)
    base = float(y @ np.linalg.solve(dense, y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for scale in (1e150, 1e160, 1e300):
            expected = base * scale * scale  # inf where it leaves the float64 range
            got = ws.mahalanobis(y * scale, cov=W)
            if np.isfinite(expected):
                np.testing.assert_allclose(got, expected, rtol=1e-12)
            else:
                assert got == np.inf
            rows = ws.mahalanobis(np.array([y * scale, y]), cov=W)
            assert rows[0] == got
            np.testing.assert_allclose(rows[1], base, rtol=1e-12)
        assert ws.dwnorm(y * 1e200, covariance=W, log=True) == -np.inf


def test_the_one_pass_quadratic_form_agrees_with_the_solve():
    W, dense, rng = _regression(500, 8)
    state = W._state
    for _ in range(5):
        y = rng.standard_normal(500)
        expected = y @ np.linalg.solve(dense, y)
        np.testing.assert_allclose(state.inverse_quadratic(y), expected, rtol=1e-12)
        np.testing.assert_allclose(state._solved_quadratic(y), expected, rtol=1e-12)


@pytest.mark.parametrize(("n", "p"), [(1000, 20), (4000, 20)])
def test_fused_capacitance_includes_b(n, p):
    W, _, _ = _regression(n, p)
    state = W._state
    assert state._fusable
    parts = state.parts
    x = parts.U.data
    expected = parts.B.toarray() + x.T @ (parts.A.data[:, None] * x)
    scale = np.abs(x).T @ (parts.A.data[:, None] * np.abs(x)) + np.abs(parts.B.toarray())
    eps = np.finfo(float).eps
    assert np.all(np.abs(state.O.toarray() - expected) <= 4 * n * eps * scale)
    assert _core._fused_rows(n, p) == (n if n * p <= 2 * _core.FUSED_ROWS_ENTRIES else 1638)


# -- the caches' lock -----------------------------------------------------------------------
def test_cache_lock_is_reentrant_and_copies_as_a_new_lock():
    lock = _CacheLock()
    with lock, lock:  # re-entrant
        for other in (pickle.loads(pickle.dumps(lock)), copy.copy(lock), copy.deepcopy(lock)):
            assert isinstance(other, _CacheLock)
            acquired: list[bool] = []
            t = threading.Thread(target=lambda o=other, a=acquired: a.append(o.acquire(False)))
            t.start()
            t.join()
            assert acquired == [True]  # unlocked, although the original is held
