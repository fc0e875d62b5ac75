"""The factorisation protocol shared by every backend.

A :class:`Factor` holds a factorisation of one square matrix ``M`` and answers
``M⁻¹ b``, ``M⁻ᵀ b`` and ``log|det M|`` from it. Factors are created once, cached by the
block that owns them, and never modified afterwards, so one factor may be shared by
several operators (for example an operator and its transpose).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from scipy import sparse
from scipy.sparse import linalg as splinalg
from scipy.sparse.csgraph import connected_components

from .._cache import cached_property
from ._sksparse import known_full_band


class Factor(ABC):
    """Factorisation of a square matrix ``M`` of order ``n``.

    Attributes
    ----------
    n : int
        Order of ``M``.
    method : str
        Short description of the factorisation (``"cholmod-llt"``, ``"dense-lu"``, ...).
    positive_definite : bool
        True when the factorisation proves ``M`` symmetric positive definite (a Cholesky
        factorisation succeeded, or all pivots of a symmetric ``LDLᵀ`` are positive).
    rcond_needs_norm, screening_needs_norm : bool
        Whether :meth:`rcond` (:meth:`screening_rcond`) uses its ``anorm`` argument.
        Estimates that ignore it (the closed forms, CHOLMOD's pivot ratio) spare callers
        the O(nnz) pass for ``‖M‖₁``.
    """

    n: int
    method: str
    positive_definite: bool = False
    symmetric: bool = False
    rcond_needs_norm: bool = True
    screening_needs_norm: bool = True
    #: ``rcond(‖M‖₁)`` as :func:`~._check_rcond` estimated it for the capacitance, if it did.
    rcond_estimate: float | None = None

    @abstractmethod
    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        """Return ``M⁻¹ b`` (or ``M⁻ᵀ b``) for a dense 1-D or 2-D float64 ``b``."""

    @abstractmethod
    def _slogdet(self) -> tuple[float, float]:
        """Compute ``(sign, log|det M|)``."""

    @cached_property
    def slogdet(self) -> tuple[float, float]:
        """``(sign, log|det M|)`` as Python floats; computed once."""
        sign, logabsdet = self._slogdet()
        return float(sign), float(logabsdet)

    def rcond(self, anorm: float) -> float:
        """Estimate the reciprocal condition number ``1 / (‖M‖₁ ‖M⁻¹‖₁)``.

        Parameters
        ----------
        anorm : float
            ``‖M‖₁`` (the factor does not keep ``M``).

        Notes
        -----
        This default divides by the Hager–Higham estimate of ``‖M⁻¹‖₁``
        (:attr:`inverse_one_norm`, a few solves with the factor, computed once); dense
        factors override it with LAPACK's ``pocon``/``gecon``, which run the same
        algorithm on the triangular factors.
        """
        if self.n == 0:
            return 1.0
        if anorm == 0:
            return 0.0
        return float(1.0 / (anorm * self.inverse_one_norm))

    def screening_rcond(self, anorm: float) -> float:
        """The estimate the singularity test of a *given* block (``A``, ``B``) uses.

        :meth:`rcond` here; CHOLMOD factors answer with their pivot ratio, which costs
        nothing but can be optimistic by orders of magnitude (see
        :class:`~woodbury_sparse._factor._sparse.CholmodFactor`). The capacitance ``O``
        is always tested with :meth:`rcond`.
        """
        return self.rcond(anorm)

    @cached_property
    def inverse_one_norm(self) -> float:
        """Estimate of ``‖M⁻¹‖₁`` (exact for ``n ≤ 4``); computed once.

        The Hager–Higham estimator (Higham, *Accuracy and Stability*, Alg. 15.4, as in
        LAPACK's ``xLACN2``): SciPy's ``onenormest`` with one column, which needs no
        random starting vectors (with more columns it draws them from NumPy's *global*
        generator, which a library must not touch), and LAPACK's extra test vector
        ``xᵢ = (−1)ⁱ (1 + i/(n−1))`` for the matrices that defeat the iteration. A lower
        bound on ``‖M⁻¹‖₁``, almost always within a factor 3; about 4 to 6 solves.
        """
        n = self.n
        if n == 0:
            return 0.0
        if n <= 4:
            return float(np.abs(self.solve(np.eye(n))).sum(axis=0).max())
        inverse = splinalg.LinearOperator(
            (n, n),
            matvec=self.solve,
            rmatvec=lambda x: self.solve(x, transpose=True),
            matmat=self.solve,
            rmatmat=lambda x: self.solve(x, transpose=True),
            dtype=np.float64,
        )
        estimate = float(splinalg.onenormest(inverse, t=1))
        alternating = np.where(np.arange(n) % 2 == 0, 1.0, -1.0) * (1.0 + np.arange(n) / (n - 1))
        extra = 2.0 * float(np.abs(self.solve(alternating)).sum()) / (3.0 * n)
        return max(estimate, extra)

    def solve_sqrt_t(self, z: np.ndarray) -> np.ndarray:
        """Return ``R⁻ᵀ z`` where ``M = R Rᵀ``; ``cov(R⁻ᵀ z) = M⁻¹`` for white ``z``.

        Only positive definite factorisations provide it.
        """
        raise NotImplementedError(f"{self.method} factorisations have no square root")

    def sqrt_t_matmul(self, x: np.ndarray) -> np.ndarray:
        """Return ``Rᵀ x`` where ``M = R Rᵀ``: the inverse of :meth:`solve_sqrt_t`.

        ``R`` is the same square root as in :meth:`solve_sqrt_t`, so
        ``solve_sqrt_t(sqrt_t_matmul(x)) = x``; ``x`` is dense 1-D or 2-D. Only positive
        definite factorisations provide it.
        """
        raise NotImplementedError(f"{self.method} factorisations have no square root")

    @property
    def T(self) -> Factor:
        """The factorisation of ``Mᵀ``, sharing all storage with this one."""
        return self if self.symmetric else _TransposedFactor(self)

    def positive_count(self) -> int | None:
        """Number of positive eigenvalues of the (symmetric) ``M``, or ``None`` if unknown.

        Known cheaply for a positive definite factorisation (all ``n``) and, by
        Sylvester's law of inertia, for an ``LDLᵀ`` with ``1×1`` pivots (those of ``D``);
        the factorisations that know more override this.
        """
        return self.n if self.positive_definite else None


class _TransposedFactor(Factor):
    """``Mᵀ`` seen through the factorisation of ``M``."""

    def __init__(self, parent: Factor) -> None:
        self.parent = parent
        self.n = parent.n
        self.method = parent.method
        self.positive_definite = parent.positive_definite
        self.rcond_needs_norm = parent.rcond_needs_norm
        self.screening_needs_norm = parent.screening_needs_norm

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        return self.parent.solve(b, transpose=not transpose)

    def rcond(self, anorm: float) -> float:
        # ‖Mᵀ‖₁ = ‖M‖_∞: the 1-norm estimate of the parent is the right size, not exact.
        return self.parent.rcond(anorm)

    def screening_rcond(self, anorm: float) -> float:
        return self.parent.screening_rcond(anorm)

    def _slogdet(self) -> tuple[float, float]:
        return self.parent.slogdet

    @property
    def T(self) -> Factor:
        return self.parent


def dominance_rcond_bound(m: sparse.csc_array) -> float:
    """A proven lower bound on ``1 / (‖M‖₁ ‖M⁻¹‖₁)`` of a strictly diagonally dominant ``M``.

    Parameters
    ----------
    m : scipy.sparse.csc_array
        A square matrix with finite entries and no duplicate entries.

    Returns
    -------
    float
        ``α / ‖M‖₁`` where ``α = minⱼ (|mⱼⱼ| − Σᵢ≠ⱼ |mᵢⱼ|)``, when every column is
        strictly dominated by its diagonal entry (``α > 0``); otherwise 0.0, which
        proves nothing.

    Notes
    -----
    Varah's bound (Varah, *Linear Algebra Appl.* 11, 1975), applied to ``Mᵀ``: a matrix
    strictly diagonally dominant by columns has ``‖M⁻¹‖₁ ≤ 1/α``, whether symmetric or not,
    definite or not. The GMRF precisions of this package's problems (AR(1), random walks
    with a shift, grids ``κ² I + L``) and their sums with positive diagonals are dominant,
    so the capacitance ``O = B + A`` of such a model is proven well-conditioned by one
    ``O(nnz)`` pass, where the Hager–Higham estimate (:attr:`Factor.inverse_one_norm`)
    costs four to six solves. The bound errs only low: the column sums are rounded up
    (each by at most ``(k+2)·eps`` relative for ``k ≤ nnz`` stored entries, allowed for
    twice over), so a matrix it calls well-conditioned is.
    """
    n = m.shape[0]
    if n == 0 or m.nnz == 0:
        return 0.0
    half_width = known_full_band(m)
    if half_width is not None:
        return _band_dominance_bound(m, half_width)
    # |M|ᵀ in CSR is |M| in CSC read row-wise: |M|ᵀ·1 gives the column sums of |M| in one
    # compiled product (3× faster than numpy.add.reduceat over the column stretches).
    rows_of_transpose = sparse.csr_array((np.abs(m.data), m.indices, m.indptr), shape=m.shape)
    sums = rows_of_transpose @ np.ones(n)
    eps = float(np.finfo(np.float64).eps)
    sums *= 1.0 + 2.0 * eps * (m.nnz + 2)  # rounded up (no column holds more than nnz)
    gap = m.diagonal()
    np.abs(gap, out=gap)
    gap *= 2.0
    gap -= sums
    alpha = float(gap.min())
    norm = float(sums.max())
    if not (alpha > 0.0 and np.isfinite(norm)):
        return 0.0
    return alpha / norm * (1.0 - 4.0 * eps)  # the division's rounding


#: Columns per chunk in :func:`_band_dominance_bound` (temporaries stay in cache).
_BAND_CHUNK: int = 1 << 13


def _band_dominance_bound(m: sparse.csc_array, b: int) -> float:
    """:func:`dominance_rcond_bound` of a full band of half-width ``b`` (validated).

    Its interior columns ``b … n − b − 1`` are the rows of an ``(n − 2b) × (2b+1)`` view
    of the values, the diagonal in the middle column: column sums and diagonal come from
    strided reads, chunk by chunk, instead of a copy of ``|M|``, a sparse product and a
    diagonal search (15 → 4 ms at n = 10⁶). The edge columns are summed one by one. The
    same rounding allowance as the general route covers any order of summation.
    """
    n, width = m.shape[0], 2 * b + 1
    data, indptr = m.data, m.indptr
    eps = float(np.finfo(np.float64).eps)
    up = 1.0 + 2.0 * eps * (m.nnz + 2)
    alpha, norm = np.float64(np.inf), np.float64(0.0)
    for j in (*range(min(b, n)), *range(max(b, n - b), n)):  # the edge columns
        column = data[indptr[j] : indptr[j + 1]]
        total = float(np.sum(np.abs(column))) * up
        diagonal = abs(float(column[min(j, b)]))
        # np.minimum and np.maximum carry a NaN through (Python's min and max drop it)
        alpha, norm = np.minimum(alpha, 2.0 * diagonal - total), np.maximum(norm, total)
    start, stop = int(indptr[b]), int(indptr[n - b])
    values = data[start:stop].reshape(-1, width)
    for lo in range(0, values.shape[0], _BAND_CHUNK):
        chunk = values[lo : lo + _BAND_CHUNK]
        sums = np.abs(chunk[:, 0])
        for t in range(1, width):
            sums += np.abs(chunk[:, t])
        sums *= up
        gap = np.abs(chunk[:, b])
        gap *= 2.0
        gap -= sums
        alpha, norm = np.minimum(alpha, gap.min()), np.maximum(norm, sums.max())
    if not (alpha > 0.0 and np.isfinite(norm)):
        return 0.0
    return float(alpha / norm * (1.0 - 4.0 * eps))


def permutation_sign(perm: np.ndarray) -> float:
    """Sign (+1 or -1) of the permutation ``perm`` of ``0..n-1``, in O(n).

    A permutation with ``c`` cycles is a product of ``n - c`` transpositions.
    """
    perm = np.asarray(perm, dtype=np.intp)
    n = perm.size
    if n == 0:
        return 1.0
    graph = sparse.csr_array((np.ones(n), (np.arange(n), perm)), shape=(n, n))
    cycles = connected_components(graph, directed=True, connection="weak", return_labels=False)
    return -1.0 if (n - cycles) % 2 else 1.0


def slogdet_from_pivots(pivots: np.ndarray, sign: float = 1.0) -> tuple[float, float]:
    """``(sign, log|det|)`` of a product of pivots, times an extra ``sign``."""
    pivots = np.asarray(pivots)
    if pivots.size == 0:
        return sign, 0.0
    negatives = np.count_nonzero(pivots < 0)
    with np.errstate(divide="ignore"):
        logs = np.abs(pivots, dtype=np.float64)
        np.log(logs, out=logs)  # in place: one pivot-sized temporary, not two
        logabsdet = float(np.sum(logs))
    if np.any(pivots == 0):
        return 0.0, -np.inf
    return sign * (-1.0 if negatives % 2 else 1.0), logabsdet
