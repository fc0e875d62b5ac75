"""The compiled Takahashi kernel against the NumPy one, and its symmetric layout.

The C kernel computes a group of up to ``GROUP`` (32) columns of a supernode at once and
scales an ``L Lᵀ`` factor itself; the NumPy kernel does one column at a time on an
explicitly scaled unit factor. Both are the same recursion in a different order of
summation, so they agree within the round-off of the recursion (``tol`` of conftest,
``c·n·eps·κ``, relative to ``max|Z|``). The symmetric layout moves values without
arithmetic: it must equal SciPy's route exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from conftest import tol
from woodbury_sparse import testing
from woodbury_sparse._factor import _selinv

pytestmark = pytest.mark.skipif(_selinv.KERNEL != "c", reason="C kernel not installed")


def _unit_factor(Q) -> tuple[sparse.csc_array, np.ndarray]:
    """``(L, d)`` with ``Q = L diag(d) Lᵀ``, ``L`` unit lower, in natural order (dense LAPACK)."""
    chol = np.linalg.cholesky(Q.toarray() if sparse.issparse(Q) else Q)
    chol[np.abs(chol) < 1e-300] = 0.0
    root = np.diag(chol).copy()
    unit = sparse.csc_array(chol / root)
    unit.sort_indices()
    return unit, root**2


def _problems() -> dict[str, object]:
    rng = np.random.default_rng(3)
    return {
        # A dense factor: one supernode of 70 columns, so groups of 32, 32 and 6.
        "dense-70": testing.random_spd(70, rng, density=1.0, dense=True),
        # Natural-order grid: wide nested column patterns, and some that are not.
        "grid-12": testing.grid_precision(12, kappa=0.3),
        "ar1": testing.ar1_precision(50, 0.9),
        "random-sparse": testing.random_spd(60, rng, density=0.05),
    }


PROBLEMS = _problems()


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_c_kernel_matches_numpy_kernel_in_both_forms(name):
    Q = PROBLEMS[name]
    unit, d = _unit_factor(Q)
    _, _, z_numpy = _selinv.takahashi(unit, d, kernel="numpy")
    _, _, z_ldl = _selinv.takahashi(unit, d, kernel="c")
    cholesky = sparse.csc_array(unit @ sparse.diags_array(np.sqrt(d)))
    _, _, z_llt = _selinv.takahashi(cholesky, None, kernel="c")
    bound = tol(Q) * np.abs(z_numpy).max()
    np.testing.assert_allclose(z_ldl, z_numpy, rtol=0, atol=bound)
    np.testing.assert_allclose(z_llt, z_numpy, rtol=0, atol=bound)
    reference = np.linalg.inv(Q.toarray() if sparse.issparse(Q) else Q)
    coo = sparse.coo_array(sparse.csc_array((z_llt, unit.indices, unit.indptr), unit.shape))
    np.testing.assert_allclose(coo.data, reference[coo.row, coo.col], rtol=0, atol=bound)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_symmetric_layout_equals_scipy_route(name):
    unit, d = _unit_factor(PROBLEMS[name])
    indptr, indices, z = _selinv.takahashi(unit, d)
    perm = np.random.default_rng(1).permutation(unit.shape[0])
    for p in (perm, None):
        ours = _selinv._symmetric_csc(indptr, indices, z, p, kernel="c")
        theirs = _selinv._symmetric_csc(indptr, indices, z, p, kernel="numpy")
        assert ours.has_sorted_indices and ours.indices.dtype == np.int32
        np.testing.assert_array_equal(ours.indptr, theirs.indptr)
        np.testing.assert_array_equal(ours.indices, theirs.indices)
        np.testing.assert_array_equal(ours.data, theirs.data)


def test_symmetric_layout_int64_output():
    """Past int32 (not reachable in a test) the kernel writes int64 indices: same layout."""
    unit, d = _unit_factor(PROBLEMS["grid-12"])
    indptr, indices, z = _selinv.takahashi(unit, d)
    n = unit.shape[0]
    perm = np.random.default_rng(2).permutation(n).astype(np.int64)
    size = 2 * indices.size - n
    out = np.empty(n + 1, dtype=np.int64), np.empty(size, dtype=np.int64), np.empty(size)
    _selinv._c_kernel.symmetric(indptr, indices, z, perm, *out)
    reference = _selinv._symmetric_csc(indptr, indices, z, perm, kernel="numpy")
    np.testing.assert_array_equal(out[0], reference.indptr)
    np.testing.assert_array_equal(out[1], reference.indices)
    np.testing.assert_array_equal(out[2], reference.data)


def test_symmetric_layout_errors():
    unit, d = _unit_factor(PROBLEMS["ar1"])
    indptr, indices, z = _selinv.takahashi(unit, d)
    n = unit.shape[0]
    size = 2 * indices.size - n
    out = np.empty(n + 1, dtype=np.int32), np.empty(size, dtype=np.int32), np.empty(size)
    repeated = np.zeros(n, dtype=np.int64)
    with pytest.raises(ValueError, match="perm is not a permutation"):
        _selinv._c_kernel.symmetric(indptr, indices, z, repeated, *out)
    perm = np.arange(n, dtype=np.int64)
    with pytest.raises(ValueError, match="inconsistent array sizes"):
        _selinv._c_kernel.symmetric(indptr, indices, z, perm, out[0], out[1], out[2][:-1])
    with pytest.raises(TypeError, match="out_indices must be a contiguous int32 or int64"):
        _selinv._c_kernel.symmetric(indptr, indices, z, perm, out[0], out[2], out[2])


def test_int32_and_int64_indices_read_alike():
    """SciPy's int32 indices are read in place; int64 ones give the very same numbers."""
    unit, d = _unit_factor(PROBLEMS["grid-12"])
    assert unit.indices.dtype == np.int32
    wide = sparse.csc_array(
        (unit.data, unit.indices.astype(np.int64), unit.indptr.astype(np.int64)), unit.shape
    )
    wide.indices = wide.indices.astype(np.int64)  # SciPy may have narrowed them again
    narrow_out = _selinv.takahashi(unit, d)
    wide_out = _selinv.takahashi(wide, d)
    assert wide_out[1].dtype == np.int64
    np.testing.assert_array_equal(narrow_out[2], wide_out[2])
    perm = np.random.default_rng(5).permutation(unit.shape[0])
    np.testing.assert_array_equal(
        _selinv._symmetric_csc(*narrow_out, perm).data, _selinv._symmetric_csc(*wide_out, perm).data
    )
