"""Dense factorisations through LAPACK: Cholesky for SPD matrices, LU otherwise."""

from __future__ import annotations

import numpy as np
from scipy import linalg

from .._blas import matmul
from ._base import Factor, slogdet_from_pivots

# LAPACK's float64 routines, looked up once: get_lapack_funcs costs a cold first call
# (the caches evicted) about as much as the 20×20 factorisation itself.
_dpotrf = linalg.lapack.dpotrf
_dpocon = linalg.lapack.dpocon


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class DenseCholesky(Factor):
    """``M = L Lᵀ`` (LAPACK ``potrf``); only built for symmetric positive definite ``M``."""

    symmetric = True
    positive_definite = True

    def __init__(self, lower: np.ndarray) -> None:
        self.lower = _frozen(lower)  # the factor's own: nothing may change it
        self.n = lower.shape[0]
        self.method = "dense-cholesky"

    @classmethod
    def attempt(cls, m: np.ndarray) -> DenseCholesky | None:
        """Factorise ``m``, or return None when it is not (numerically) positive definite."""
        potrf = _dpotrf if m.dtype == np.float64 else linalg.get_lapack_funcs("potrf", (m,))
        lower, info = potrf(m, lower=True, clean=True, overwrite_a=False)
        if info != 0 or not np.logical_and.reduce(np.isfinite(lower.diagonal())):
            return None
        return cls(lower)

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        return linalg.cho_solve((self.lower, True), b, check_finite=False)

    def _slogdet(self) -> tuple[float, float]:
        return 1.0, 2.0 * float(np.add.reduce(np.log(self.lower.diagonal())))

    def rcond(self, anorm: float) -> float:
        lower = self.lower
        pocon = _dpocon if lower.dtype == np.float64 else linalg.get_lapack_funcs("pocon", (lower,))
        rcond, _ = pocon(self.lower, anorm, uplo="L")
        return float(rcond)

    def solve_sqrt_t(self, z: np.ndarray) -> np.ndarray:
        return linalg.solve_triangular(self.lower, z, lower=True, trans="T", check_finite=False)

    def sqrt_t_matmul(self, x: np.ndarray) -> np.ndarray:
        return matmul(self.lower.T, x)


class DenseLU(Factor):
    """``M = P L U`` with partial pivoting (LAPACK ``getrf``).

    The factor owns everything it reads: ``lu`` and the pivots are private, read-only
    arrays, and the determinant's sign and logarithm are computed when the factor is
    built. SciPy's ``getrs`` wrapper makes the pivot array 1-based *in place* for the
    duration of the call (and back afterwards), so a pivot array shared between threads
    is seen half-converted by a concurrent reader, and two concurrent solves convert it
    twice: pivots out of range, rows swapped outside the matrix, a corrupted heap
    (``malloc(): corrupted top size`` — once blamed on OpenBLAS). Each solve therefore
    hands LAPACK its own copy of the pivots (``n`` integers); no lock is needed.
    """

    def __init__(self, lu: np.ndarray, piv: np.ndarray, symmetric: bool) -> None:
        self.lu = _frozen(lu)
        self.piv = _frozen(np.array(piv, dtype=piv.dtype))
        self.n = lu.shape[0]
        self.symmetric = symmetric
        self.method = "dense-lu"
        # From the pivots as getrf returned them, before any solve can touch a copy.
        swaps = np.count_nonzero(self.piv != np.arange(self.n))
        self._sign_logdet = slogdet_from_pivots(np.diag(lu), -1.0 if swaps % 2 else 1.0)

    @classmethod
    def attempt(cls, m: np.ndarray, symmetric: bool = False) -> DenseLU | None:
        """Factorise ``m``, or return None when it is exactly singular."""
        getrf = linalg.get_lapack_funcs("getrf", (m,))
        lu, piv, info = getrf(m, overwrite_a=False)
        if info != 0 or not np.all(np.isfinite(np.diag(lu))):
            return None
        return cls(lu, piv, symmetric)

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        # A private, writable copy of the pivots for getrs to convert (see the class notes).
        piv = np.array(self.piv)
        return linalg.lu_solve((self.lu, piv), b, trans=int(transpose), check_finite=False)

    def _slogdet(self) -> tuple[float, float]:
        return self._sign_logdet

    def rcond(self, anorm: float) -> float:
        gecon = linalg.get_lapack_funcs("gecon", (self.lu,))
        rcond, _ = gecon(self.lu, anorm, norm="1")
        return float(rcond)
