"""``SelectedInverse``: its readings (diagonal, entries, positions, matrix) agree with each other.

Every reading is the same recursion's values moved, never recomputed: they must agree
exactly (the dense reference is checked in test_selected_inverse.py and test_diagonal.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from woodbury_sparse import _factor, testing
from woodbury_sparse._factor import SelectedInverse


def _factor_of(Q):
    Q = sparse.csc_array(Q)
    return _factor.factorize(Q, "sparse", Q.shape[0], True, "Q")


@pytest.mark.parametrize(
    "Q", [testing.grid_precision(9, kappa=0.5), testing.ar1_precision(30, 0.8)], ids=["grid", "ar1"]
)
def test_readings_agree(Q):
    inverse = SelectedInverse(_factor_of(Q), "Q")
    S = inverse.matrix()
    coo = sparse.coo_array(S)
    assert inverse.is_sparse
    np.testing.assert_array_equal(inverse.diagonal(), S.diagonal())
    values, found = inverse.entries(coo.row, coo.col)  # distinct pairs: the merge route
    assert np.all(found)
    np.testing.assert_array_equal(values, coo.data)
    twice = np.r_[coo.row, coo.row], np.r_[coo.col, coo.col]  # repeats: the search route
    np.testing.assert_array_equal(inverse.values[inverse.locate(*twice)], np.r_[coo.data, coo.data])
    off = np.array([0]), np.array([Q.shape[0] - 1])  # far corner: off the pattern
    assert inverse.locate(*off)[0] == -1
    assert np.isnan(inverse.entries(*off)[0][0]) and not inverse.entries(*off)[1][0]
    assert not inverse.values.flags.writeable


def test_closed_forms_and_dense():
    diagonal = SelectedInverse(_factor.factorize(np.array([2.0, 4.0]), "diagonal", 2, True, "Q"))
    assert not diagonal.is_sparse
    np.testing.assert_array_equal(diagonal.diagonal(), [0.5, 0.25])
    np.testing.assert_array_equal(diagonal.entries(np.array([0, 0]), np.array([0, 1]))[0], [0.5, 0])
    dense = SelectedInverse(_factor.factorize(np.array([[2.0, 1], [1, 2]]), "dense", 2, True, "Q"))
    np.testing.assert_allclose(dense.matrix().toarray(), np.linalg.inv([[2.0, 1], [1, 2]]))
    with pytest.raises(TypeError, match="only a sparse factor's pattern can be padded"):
        dense.padded(np.array([0]), np.array([1]))
