"""``Block.plus`` of a diagonal and a sparse block that stores its whole diagonal.

The sum keeps the sparse block's pattern (its index arrays shared, read-only) and only
its values are new: checked against SciPy's sparse sum for every pairing, with the
inputs left unchanged; without a stored diagonal entry the general sum serves.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from woodbury_sparse import testing
from woodbury_sparse._blocks import diagonal_positions, same_sparse_pattern
from woodbury_sparse._validation import as_block

MATRICES = {
    "ar1": testing.ar1_precision(300, 0.9),
    "grid": testing.grid_precision(12, 0.3),
    "general": testing.random_sparse(200, 200, 0.02, np.random.default_rng(1), diagonal=3.0),
}


@pytest.mark.parametrize("name", sorted(MATRICES))
@pytest.mark.parametrize("diagonal", ["identity", "diagonal"])
@pytest.mark.parametrize("order", ["diagonal_first", "sparse_first"])
def test_sum_with_a_diagonal_keeps_the_pattern(name, diagonal, order):
    m = MATRICES[name]
    n = m.shape[0]
    d = np.ones(n) if diagonal == "identity" else np.linspace(0.5, 2.0, n)
    a, b = as_block(m, "A"), as_block(sparse.diags_array(d), "B")
    assert b.kind == diagonal
    before = a.data.data.copy()
    total = b.plus(a) if order == "diagonal_first" else a.plus(b)
    expected = (sparse.csc_array(m) + sparse.diags_array(d)).toarray()
    assert total.kind == "sparse"
    np.testing.assert_array_equal(total.toarray(), expected)  # x + d, rounded once
    assert same_sparse_pattern(total, a)
    assert np.shares_memory(total.data.indices, a.data.indices)
    assert not total.data.data.flags.writeable
    np.testing.assert_array_equal(a.data.data, before)


def test_sum_without_a_stored_diagonal_entry_is_the_general_sum():
    m = sparse.csc_array(np.array([[0.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 3.0]]))
    m.eliminate_zeros()
    a = as_block(m, "A")
    assert diagonal_positions(a.data) is None
    total = a.plus(as_block(sparse.eye_array(3), "B"))
    np.testing.assert_array_equal(total.toarray(), m.toarray() + np.eye(3))


def test_diagonal_positions():
    m = sparse.csc_array(testing.ar1_precision(5, 0.5))
    m.sum_duplicates()  # canonical, and known to be: older SciPy does not flag it otherwise
    positions = diagonal_positions(m)
    assert positions is not None
    np.testing.assert_array_equal(m.data[positions], m.diagonal())
    assert diagonal_positions(sparse.csc_array((3, 4))) is None
