"""Dense factorisations through LAPACK: Cholesky for SPD matrices, LU otherwise."""

from __future__ import annotations

import threading

import numpy as np
from scipy import linalg

from .._blas import matmul
from ._base import Factor, slogdet_from_pivots

#: Serialises LAPACK ``getrs``: the multithreaded OpenBLAS 0.3.30 bundled with SciPy's
#: wheels corrupts its heap (``malloc(): corrupted top size``, an abort) when several
#: Python threads solve with several right-hand sides at once; one solve at a time is
#: safe and costs an uncontended lock otherwise.
_GETRS_LOCK = threading.Lock()


class DenseCholesky(Factor):
    """``M = L Lᵀ`` (LAPACK ``potrf``); only built for symmetric positive definite ``M``."""

    symmetric = True
    positive_definite = True

    def __init__(self, lower: np.ndarray) -> None:
        self.lower = lower
        self.n = lower.shape[0]
        self.method = "dense-cholesky"

    @classmethod
    def attempt(cls, m: np.ndarray) -> DenseCholesky | None:
        """Factorise ``m``, or return None when it is not (numerically) positive definite."""
        potrf = linalg.get_lapack_funcs("potrf", (m,))
        lower, info = potrf(m, lower=True, clean=True, overwrite_a=False)
        if info != 0 or not np.all(np.isfinite(np.diag(lower))):
            return None
        return cls(lower)

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        return linalg.cho_solve((self.lower, True), b, check_finite=False)

    def _slogdet(self) -> tuple[float, float]:
        return 1.0, 2.0 * float(np.sum(np.log(np.diag(self.lower))))

    def rcond(self, anorm: float) -> float:
        pocon = linalg.get_lapack_funcs("pocon", (self.lower,))
        rcond, _ = pocon(self.lower, anorm, uplo="L")
        return float(rcond)

    def solve_sqrt_t(self, z: np.ndarray) -> np.ndarray:
        return linalg.solve_triangular(self.lower, z, lower=True, trans="T", check_finite=False)

    def sqrt_t_matmul(self, x: np.ndarray) -> np.ndarray:
        return matmul(self.lower.T, x)


class DenseLU(Factor):
    """``M = P L U`` with partial pivoting (LAPACK ``getrf``)."""

    def __init__(self, lu: np.ndarray, piv: np.ndarray, symmetric: bool) -> None:
        self.lu = lu
        self.piv = piv
        self.n = lu.shape[0]
        self.symmetric = symmetric
        self.method = "dense-lu"

    @classmethod
    def attempt(cls, m: np.ndarray, symmetric: bool = False) -> DenseLU | None:
        """Factorise ``m``, or return None when it is exactly singular."""
        getrf = linalg.get_lapack_funcs("getrf", (m,))
        lu, piv, info = getrf(m, overwrite_a=False)
        if info != 0 or not np.all(np.isfinite(np.diag(lu))):
            return None
        return cls(lu, piv, symmetric)

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        with _GETRS_LOCK:
            return linalg.lu_solve((self.lu, self.piv), b, trans=int(transpose), check_finite=False)

    def _slogdet(self) -> tuple[float, float]:
        swaps = np.count_nonzero(self.piv != np.arange(self.n))
        return slogdet_from_pivots(np.diag(self.lu), -1.0 if swaps % 2 else 1.0)

    def rcond(self, anorm: float) -> float:
        gecon = linalg.get_lapack_funcs("gecon", (self.lu,))
        rcond, _ = gecon(self.lu, anorm, norm="1")
        return float(rcond)
