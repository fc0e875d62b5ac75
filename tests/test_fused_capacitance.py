"""``Xᵀ (A X)`` formed block by block from ``X``, for a diagonal ``A``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg, sparse

import woodbury_sparse as ws
from woodbury_sparse import _core


@pytest.mark.parametrize(("n", "p"), [(1, 2), (7, 3), (3000, 20), (5000, 20), (3000, 64)])
def test_fused_products_match_the_dense_formula(n, p):
    rng = np.random.default_rng(n + p)
    x = rng.standard_normal((n, p))
    d = rng.uniform(0.5, 2.0, n)
    b = np.diag(rng.uniform(1.0, 3.0, p))
    W = ws.SymmetricWoodburyMatrix(sparse.diags_array(d), b, X=x)
    state = W._state
    assert state._fusable
    rows = _core._fused_rows(n, p)  # one block, or several (both are tested)
    assert rows >= n if n * p <= 2 * _core.FUSED_ROWS_ENTRIES else rows < n
    np.testing.assert_array_equal(state.AU.toarray(), d[:, None] * x)  # bit for bit
    expected = b + x.T @ (d[:, None] * x)
    scale = np.abs(x).T @ (d[:, None] * np.abs(x)) + np.abs(b)
    assert np.all(np.abs(state.O.toarray() - expected) <= 4 * n * np.finfo(float).eps * scale)
    dense = np.diag(1 / d) + x @ np.linalg.solve(b, x.T)
    rhs = rng.standard_normal(n)
    if n <= 3000:
        np.testing.assert_allclose(W.solve(rhs), linalg.solve(dense, rhs), rtol=1e-9)
        np.testing.assert_allclose(W.logdet(), np.linalg.slogdet(dense)[1], rtol=1e-11)


def test_not_fused_where_the_result_is_large_or_x_is_not_c_ordered():
    rng = np.random.default_rng(2)
    d = np.ones(200)
    wide = rng.standard_normal((200, 70))  # 70² > SMALL_RESULT: the plain product
    W = ws.SymmetricWoodburyMatrix(sparse.diags_array(d), np.eye(70), X=wide)
    assert not W._state._fusable
    np.testing.assert_allclose(W._state.O.toarray(), np.eye(70) + wide.T @ wide, rtol=1e-12)
    dense_a = np.diag(np.arange(1.0, 201.0)) + 0.1 * np.eye(200, k=1) + 0.1 * np.eye(200, k=-1)
    W = ws.SymmetricWoodburyMatrix(dense_a, np.eye(3), X=rng.standard_normal((200, 3)))
    assert not W._state._fusable  # A not diagonal
