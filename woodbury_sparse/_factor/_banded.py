"""LAPACK's banded Cholesky for sparse blocks of small bandwidth (the SciPy fallback).

AR(1) precisions, random walks and their sums are banded: ``M = L Lᵀ`` with ``L`` inside
the band, no fill and no ordering needed. Without scikit-sparse the fallback factorised
them with SuperLU, about 10× slower than CHOLMOD on first calls; LAPACK's ``pbtrf``
(``scipy.linalg.cholesky_banded``) takes ``O(n u²)`` flops for bandwidth ``u`` and stores
``(u + 1)·n`` numbers. Solves are ``pbtrs`` (``cho_solve_banded``), the log-determinant
comes from the factor's diagonal, and the square roots are triangular banded solves and
products (``tbtrs`` and a loop over the ``u + 1`` diagonals).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg, sparse
from scipy.linalg import lapack

from ._base import Factor

__all__ = ["BANDED_MAX_BANDWIDTH", "BandedCholesky"]

#: Sparse symmetric blocks whose bandwidth is at most this take the banded Cholesky on
#: the SciPy backend. Its cost ``n u²`` beats SuperLU's with a fill-reducing ordering for
#: the narrow bands of 1-D models; a 2-D grid (bandwidth ``√n`` in natural order) is left
#: to SuperLU, whose ordering keeps the fill near ``n log n``.
BANDED_MAX_BANDWIDTH: int = 16


def lower_band(m: sparse.csc_array, u: int) -> np.ndarray:
    """LAPACK's lower band storage of the symmetric ``m``: ``ab[i − j, j] = m[i, j]``, ``i ≥ j``.

    ``m`` is canonical CSC (sorted, no duplicates) with bandwidth at most ``u``; only its
    lower triangle is read.
    """
    n = m.shape[0]
    ab = np.zeros((u + 1, n))
    # One compiled pass per diagonal (SciPy's ``diagonal``) beats a scatter through the
    # coordinates of every entry: 10 against 61 ms for a tridiagonal matrix of order 10⁶.
    for k in range(min(u + 1, n)):
        ab[k, : n - k] = m.diagonal(-k)
    return ab


class BandedCholesky(Factor):
    """``M = L Lᵀ`` of a symmetric positive definite banded ``M`` by LAPACK ``pbtrf``.

    Parameters
    ----------
    band : ndarray of shape (u + 1, n)
        The factor ``L`` in LAPACK's lower band storage (``band[i − j, j] = L[i, j]``).
    """

    method = "lapack-banded-cholesky"
    positive_definite = True
    symmetric = True
    screening_needs_norm = False  # the pivot ratio needs no ‖M‖₁

    def __init__(self, band: np.ndarray) -> None:
        band.flags.writeable = False
        self.band = band
        self.u = band.shape[0] - 1
        self.n = band.shape[1]

    @classmethod
    def attempt(cls, m: sparse.csc_array, u: int) -> BandedCholesky | None:
        """Factorise ``m`` (bandwidth ``u``), or None when it is not positive definite."""
        try:
            band = linalg.cholesky_banded(lower_band(m, u), lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return None
        return cls(band)

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        if self.n == 0:
            return np.array(b, dtype=np.float64)
        return linalg.cho_solve_banded((self.band, True), b, check_finite=False)

    def _slogdet(self) -> tuple[float, float]:
        return 1.0, 2.0 * float(np.sum(np.log(self.band[0])))

    def screening_rcond(self, anorm: float) -> float:
        """The pivot ratio ``min lⱼⱼ² / max lⱼⱼ²`` (free; optimistic, as CHOLMOD's).

        Each pivot ``lⱼⱼ²`` of a Cholesky factorisation without pivoting is a Schur
        complement's diagonal entry, inside ``[λ_min, λ_max]``: the ratio lies above
        ``1/cond₂``, so it screens the given blocks the way CHOLMOD's pivot ratio does,
        confirmed by the 1-norm estimate when below ``√eps``.
        """
        if self.n == 0:
            return 1.0
        squares = np.square(self.band[0])
        return float(squares.min() / squares.max())

    def solve_sqrt_t(self, z: np.ndarray) -> np.ndarray:
        """``L⁻ᵀ z`` (no permutation: ``R = L``), by LAPACK ``tbtrs``."""
        if z.size == 0:
            # SciPy's ``dtbtrs`` wrapper corrupts the heap for a right-hand side with no
            # columns (shape (n, 0)): seen as crashes in later garbage collection.
            return np.zeros(z.shape)
        x, info = lapack.dtbtrs(self.band, z, uplo="L", trans="T", diag="N")
        if info != 0:  # pragma: no cover - pbtrf succeeded: L is nonsingular
            raise np.linalg.LinAlgError(f"tbtrs failed (info={info})")
        return x

    def sqrt_t_matmul(self, x: np.ndarray) -> np.ndarray:
        """``Lᵀ x``: ``(Lᵀ x)[j] = Σₖ L[j + k, j] x[j + k]``, one diagonal at a time."""
        band = self.band if x.ndim == 1 else self.band[:, :, None]
        out = band[0] * x
        for k in range(1, self.u + 1):
            out[: self.n - k] += band[k, : self.n - k] * x[k:]
        return out

    def ldl_parts(self) -> tuple[sparse.csc_array, None, np.ndarray]:
        """``(L, None, perm)`` with ``L`` as a CSC array (the whole band stored), no ``D``.

        For the selected inverse: the band is closed under the Takahashi recursion.
        """
        n, u = self.n, self.u
        counts = np.minimum(u + 1, n - np.arange(n))
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        columns = np.repeat(np.arange(n), counts)
        offsets = np.arange(indptr[-1]) - np.repeat(indptr[:-1], counts)
        lower = sparse.csc_array(
            (self.band[offsets, columns], columns + offsets, indptr), shape=(n, n)
        )
        lower.has_sorted_indices = True
        return lower, None, np.arange(n)
