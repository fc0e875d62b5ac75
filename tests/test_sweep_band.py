"""A sweep on a validated band: the band stays known along a chain of refactorisations,
and its arithmetic shortcuts (symmetry by strided slices, the capacitance's diagonal by a
strided addition, the log-determinant of positive pivots) give the general routes' bits."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse import _updating
from woodbury_sparse._factor import _sksparse
from woodbury_sparse._factor._base import slogdet_from_pivots
from woodbury_sparse._validation import as_block
from woodbury_sparse.testing import ar1_precision
from woodbury_sparse.updates import refactor


def _band(n: int, b: int, rng) -> np.ndarray:
    dense = np.zeros((n, n))
    for d in range(b + 1):
        v = rng.uniform(-1.0, 1.0, n - d)
        dense += np.diag(v, -d)
        if d:
            dense += np.diag(v, d)
    dense += np.diag(np.full(n, 2.0 * b + 2.0))
    return dense


def test_the_band_stays_known_after_the_first_operator_is_gone():
    n = 400
    x = np.ones(n)
    W = ws.SymmetricWoodburyMatrix(ar1_precision(n, 0.3), sparse.eye_array(n, format="csc"))
    _ = ws.dwnorm(x, covariance=W, log=True)
    for r in (0.5, 0.7, 0.9):
        W = refactor(W, A=ar1_precision(n, r))  # the first operator is dropped here
        gc.collect()
        _ = ws.dwnorm(x, covariance=W, log=True)
        assert _sksparse.known_full_band(W._parts.A.data) == 1
        assert _sksparse.known_full_band(W._state.O.data) == 1
    copy = sparse.csc_array(W._parts.A.data, copy=True)
    assert _sksparse.known_full_band(copy) is None  # other memory
    view = sparse.csc_array((W._parts.A.data.data, np.array(copy.indices), copy.indptr))
    assert _sksparse.known_full_band(view) is None


@pytest.mark.parametrize("n, b", [(10, 1), (11, 2), (40, 1), (41, 3), (200, 2)])
def test_band_symmetry_and_diagonal_equal_the_general_routes(n, b, rng):
    block = as_block(sparse.csc_array(_band(n, b, rng)), "A", square=True)
    m = block.data
    assert _sksparse.known_full_band(m) == b
    mirrors = _updating._Pattern().mirrors(m)
    data = np.array(m.data)
    assert _updating._band_symmetric(data, m, b) is True
    for k in rng.choice(m.nnz, size=min(m.nnz, 25), replace=False):  # one entry changed
        changed = data.copy()
        changed[k] += 1.0
        general = _updating._symmetric_on(changed, *mirrors)
        assert _updating._band_symmetric(changed, m, b) == general
    diagonal = rng.uniform(0.5, 2.0, n)
    expected = np.array(m.data)
    expected[_updating._Pattern().diagonal(sparse.csc_array(m, copy=True))] += diagonal
    got = np.array(m.data)
    _updating._add_band_diagonal(got, m.indptr, n, b, diagonal)
    np.testing.assert_array_equal(got, expected)


def test_positive_pivots_log_determinant_is_bit_identical(rng):
    for n in (1, 2, 17, 10_001):
        pivots = rng.uniform(1e-3, 1e3, n)
        pivots.flags.writeable = False
        assert slogdet_from_pivots(pivots) == (1.0, float(np.sum(np.log(pivots))))
    n = 500
    Q = ar1_precision(n, 0.8)
    W = ws.SymmetricWoodburyMatrix(Q, sparse.eye_array(n, format="csc"))
    sign, logdet = W.slogdet()
    ref = np.linalg.slogdet(np.linalg.inv(Q.toarray()) + np.eye(n))
    assert sign == ref[0] and logdet == pytest.approx(ref[1], rel=1e-12)
