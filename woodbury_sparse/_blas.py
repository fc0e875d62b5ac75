"""Dense matrix products through SciPy's BLAS, the one that does our factorisations.

NumPy's and SciPy's wheels each bundle their own OpenBLAS, and each keeps its own pool
of worker threads that spin for a while after every call. On a machine with few cores,
a multi-threaded NumPy product followed by a multi-threaded SciPy solve (or the other
way round) makes the two pools fight over the cores: on the 2-core benchmark machine a
``1000×5 @ 5×1000`` product next to a 5×5 Cholesky solve with 1000 right-hand sides took
8 ms instead of 0.4 ms (scipy/scipy#15050 and #15129 describe the problem). The dense
factorisations and solves of this package run on SciPy's LAPACK, so its multi-column
products (matrix-vector ones included: NumPy threads a 1000×1000 ``gemv``) run on
SciPy's BLAS too, so one operation wakes one pool.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

#: Products with fewer multiply-adds than this go through ``@``: below it OpenBLAS runs
#: single-threaded and the f2py call's overhead would dominate.
SMALL_PRODUCT = 1 << 16


def _transposed_fortran(m: np.ndarray) -> tuple[np.ndarray, int]:
    """``(f, trans)`` with ``f`` Fortran-ordered and ``op(f) = mᵀ`` (no copy when possible)."""
    if m.flags.c_contiguous:
        return m.T, 0
    if m.flags.f_contiguous:
        return m, 1
    return np.ascontiguousarray(m).T, 0


def matmul(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``a @ x`` for a 2-D float64 ``a`` and a dense 1-D or 2-D float64 ``x``.

    Products of at least :data:`SMALL_PRODUCT` multiply-adds go to SciPy's ``dgemv`` or
    ``dgemm``, the latter as ``(xᵀ aᵀ)ᵀ`` so that a C-ordered result comes out without
    copying C- or Fortran-ordered operands.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> matmul(a, np.ones((3, 2)))
    array([[ 3.,  3.],
           [12., 12.]])
    """
    columns = 1 if x.ndim == 1 else x.shape[1]
    if a.shape[0] * a.shape[1] * columns < SMALL_PRODUCT:
        return a @ x
    if x.ndim == 1:
        at, trans_a = _transposed_fortran(a)
        return blas.dgemv(1.0, at, x, trans=1 - trans_a)
    xt, trans_x = _transposed_fortran(x)
    at, trans_a = _transposed_fortran(a)
    return blas.dgemm(1.0, xt, at, trans_a=trans_x, trans_b=trans_a).T


def squared_norm(m: np.ndarray) -> float:
    """``‖m‖²_F`` through SciPy's ``ddot`` (``numpy.vdot`` would wake NumPy's pool)."""
    flat = np.ravel(m)
    return float(blas.ddot(flat, flat)) if flat.size else 0.0
