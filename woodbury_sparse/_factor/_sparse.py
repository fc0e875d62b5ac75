"""Sparse factorisations: CHOLMOD (through scikit-sparse) and SciPy's SuperLU."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse
from scipy.sparse import linalg as splinalg

from .._cache import cached_property, seed
from . import _sksparse
from ._base import Factor, permutation_sign, slogdet_from_pivots

#: Largest normwise backward error accepted from a factorisation without off-diagonal
#: pivoting of an indefinite matrix; beyond it element growth has spoilt the solves and a
#: partially pivoted LU is used instead.
EPS: float = float(np.finfo(np.float64).eps)
BACKWARD_ERROR_TOL: float = 1e3 * EPS


def backward_stable(factor: CholmodFactor | SuperLUFactor, m: sparse.csc_array) -> bool:
    """Whether ``factor``, an ``LDLᵀ`` of ``m`` without off-diagonal pivots, is stable.

    Such a factorisation of a symmetric indefinite matrix (CHOLMOD's, or SuperLU's with
    diagonal pivots) can suffer unbounded element growth: the pivot ``δ`` of
    ``[[δ, 1], [1, δ]]`` gives errors of ``eps/δ`` although the matrix is perfectly
    conditioned. The computed factors and every solve with them are backward stable with
    ``|ΔM| ≲ c·eps·|L||D||Lᵀ|`` (Higham, *Accuracy and Stability*, §9.3 and §11.1), so
    the growth ``g = ‖|L||D||Lᵀ|‖∞ / ‖M‖∞`` bounds the normwise backward error of *every*
    right-hand side by ``c·eps·g``. ``‖|L||D||Lᵀ|‖∞`` is the largest entry of
    ``|L|(|D|(|Lᵀ| 1))``: three products with the factor, no fill. The factor is kept when
    ``4·eps·g ≤ BACKWARD_ERROR_TOL``. (A probe solve with one right-hand side, used before,
    accepted a factor whose backward error on other right-hand sides was 155 times that.)
    """
    lower, d, _ = factor.ldl_parts()
    if d is None:  # LLᵀ of a positive definite matrix: no element growth
        return True
    # Unit lower: the stored diagonal may hold D (CHOLMOD's simplicial layout) or ones.
    lower = abs(sparse.tril(sparse.csc_array(lower), k=-1, format="csc"))
    lower = lower + sparse.eye_array(m.shape[0], format="csc")
    ones = np.ones(m.shape[0])
    row_sums = lower @ (np.abs(d) * (lower.T @ ones))
    norm = splinalg.norm(m, np.inf)
    if not (np.all(np.isfinite(row_sums)) and norm > 0):
        return False
    growth = float(row_sums.max()) / norm
    return bool(4.0 * EPS * growth <= BACKWARD_ERROR_TOL)


class CholmodFactor(Factor):
    """``P M Pᵀ = L D Lᵀ`` by CHOLMOD, for symmetric ``M``.

    ``LLᵀ`` is tried first, simplicial or supernodal as the symbolic statistics of ``M``'s
    pattern decide (:func:`~woodbury_sparse._factor._sksparse.choose_mode`: supernodal
    from 200 flops per entry of ``L``, where CHOLMOD's own rule says 40), a choice kept by
    :meth:`refactor`; when ``M`` is not positive definite, a simplicial ``LDLᵀ`` without
    pivoting is tried, which succeeds for many symmetric indefinite matrices. Positive
    definiteness is read off the pivots, never taken on trust: CHOLMOD's simplicial
    ``LDLᵀ`` does not report indefinite input.

    :meth:`rcond` is the Hager–Higham estimate (:attr:`Factor.inverse_one_norm`), not
    CHOLMOD's pivot ratio ``min|dᵢ| / max|dᵢ|``: that ratio only bounds ``1/cond₂`` from
    above for a positive definite matrix (every pivot lies in ``[λ_min, λ_max]``) and
    says nothing for an indefinite one; it was 1,598 times optimistic on a near-unit-root
    AR(1) capacitance and hid its ill-conditioning. Cost, measured with scikit-sparse
    0.4 and one BLAS thread on a loaded 2-core machine (best of two factorisations
    against ``inverse_one_norm`` on a fresh factor, two sessions): 4–6 solves, 0.66–0.69×
    the factorisation of a tridiagonal matrix of order 10⁶ (102–120 ms against 147–183
    ms: a banded factor costs about as much to solve with as to compute) and 0.10–0.17×
    that of a 2-D grid of order 2.5·10⁵ (~300 ms against 1.8–3.1 s); the first
    ``dwnorm`` of the AR(1)+noise benchmark at 10⁶ went from 604 to 705 ms. It is
    therefore spent on the capacitance ``O`` (its condition drives the warning and the
    singularity test of the one matrix the library forms itself), while the given
    blocks ``A`` and ``B`` are screened with the free pivot ratio
    (:meth:`screening_rcond`), confirmed by the estimate only when the ratio is below
    ``√eps`` or the factor indefinite (``_factor.SCREENING_TRUSTED``).
    """

    symmetric = True
    screening_needs_norm = False  # the pivot ratio needs no ‖M‖₁
    #: True for a factor made by :meth:`refactor` (another factor's symbolic analysis).
    analysis_reused = False

    def __init__(self, handle: _sksparse.CholmodHandle, n: int) -> None:
        self.handle = handle
        self.n = n
        pivots = handle.pivots()
        if pivots is None:  # scikit-sparse 0.5 LLᵀ: positive definite or it raised
            logdet = handle.logdet_llt()
            seed(self, "_sign_logdet", (1.0, logdet))
            self.positive_definite = bool(np.isfinite(logdet))
            self.nonsingular = self.positive_definite
        else:
            # The two extremes settle the usual case (every pivot positive and finite:
            # positive definite, hence nonsingular) without the log-determinant, which is
            # computed when asked for (a first product or solve does not need it: 5 ms of
            # logarithms at n = 10⁶). Otherwise every pivot is looked at.
            low, high = handle.pivot_extremes()
            self.positive_definite = bool(low > 0.0 and high < np.inf)
            self.nonsingular = self.positive_definite or _nonsingular_pivots(pivots)
        self.method = "cholmod-llt" if self.positive_definite else "cholmod-ldlt"

    @classmethod
    def attempt(cls, m: sparse.csc_array) -> CholmodFactor | None:
        """Factorise the symmetric ``m``, or return None when CHOLMOD cannot."""
        for ldl in (False, True):
            try:
                handle = _sksparse.CholmodHandle.factorize(m, ldl=ldl)
            except _sksparse.CholmodFailure:
                continue
            factor = cls(handle, m.shape[0])
            if factor.nonsingular:
                if factor.positive_definite or backward_stable(factor, m):
                    return factor
        return None

    def refactor(self, m: sparse.csc_array) -> CholmodFactor | None:
        """Factorise ``m`` (same sparsity pattern) reusing the symbolic analysis.

        Returns a new factor (this one is unchanged), or None when CHOLMOD fails on the
        new values; the caller then factorises afresh.
        """
        try:
            handle = self.handle.refactorize(m)
        except _sksparse.CholmodFailure:
            return None
        factor = type(self)(handle, m.shape[0])
        factor.analysis_reused = True
        if not factor.nonsingular:
            return None
        return factor if factor.positive_definite or backward_stable(factor, m) else None

    def updown(self, c: sparse.csc_array, subtract: bool = False) -> CholmodFactor | None:
        """The factor of ``M ± C Cᵀ`` by a CHOLMOD rank update/downdate of a copy.

        Returns None when the result is not positive definite (CHOLMOD does not report
        that on a downdate, so every pivot is checked) or CHOLMOD fails.
        """
        try:
            handle = self.handle.updown(c, subtract)
        except _sksparse.CholmodFailure:
            return None
        pivots = handle.pivots()
        if pivots is not None and not (np.all(np.isfinite(pivots)) and np.all(pivots > 0)):
            return None
        factor = type(self)(handle, self.n)
        return factor if factor.positive_definite else None

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        return self.handle.solve(b)

    def positive_count(self) -> int | None:
        if self.positive_definite:
            return self.n
        pivots = self.handle.pivots()  # LDLᵀ with 1×1 pivots: the inertia of D
        return None if pivots is None else int(np.count_nonzero(pivots > 0))

    def screening_rcond(self, anorm: float) -> float:
        """CHOLMOD's pivot ratio (free; optimistic): the singularity screen of ``A``, ``B``."""
        return self.handle.pivot_ratio()

    @cached_property
    def _sign_logdet(self) -> tuple[float, float]:
        """``(sign, log|det M|)`` from the pivots (0.5 ``LLᵀ`` factors set it at once)."""
        pivots = self.handle.pivots()
        assert pivots is not None  # a 0.5 LLᵀ factor's value is set in __init__
        if self.positive_definite and pivots.size:
            # Every pivot positive and finite (its extremes, in __init__): the sign is +1
            # and |dᵢ| = dᵢ, so the logarithms alone, the same numbers bit for bit as
            # slogdet_from_pivots's (which also takes |d|, counts signs and zeros: three
            # more passes over the pivots, 2 ms at n = 10⁶).
            logs = np.log(pivots)
            return 1.0, float(np.sum(logs))
        return slogdet_from_pivots(pivots)

    def _slogdet(self) -> tuple[float, float]:
        return self._sign_logdet

    def solve_sqrt_t(self, z: np.ndarray) -> np.ndarray:
        if not self.positive_definite:
            raise NotImplementedError("an LDLᵀ factorisation has no real square root")
        return self.handle.solve_sqrt_t(z)

    def sqrt_t_matmul(self, x: np.ndarray) -> np.ndarray:
        if not self.positive_definite:
            raise NotImplementedError("an LDLᵀ factorisation has no real square root")
        return self.handle.sqrt_t_matmul(x)

    def ldl_parts(self) -> tuple[sparse.csc_array, np.ndarray | None, np.ndarray]:
        """``(L, d, perm)``: ``M[perm][:, perm] = L diag(d) Lᵀ`` (``d`` None for ``LLᵀ``)."""
        return self.handle.ldl_parts()


def _nonsingular_pivots(pivots: np.ndarray) -> bool:
    """Whether every pivot is finite and nonzero: ``log|det M|`` is then a finite number.

    The test :func:`~._base.slogdet_from_pivots` would answer (a nonzero sign and a
    finite logarithm), without the logarithms.
    """
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.isfinite(pivots)) and not np.any(pivots == 0))


class SuperLUFactor(Factor):
    """``Pr M Pc = L U`` by SciPy's SuperLU.

    For symmetric ``M`` a symmetric ordering with diagonal pivoting is tried first
    (``Pr = Pcᵀ``); when it needs no off-diagonal pivot, ``U = D Lᵀ`` and the pivots ``D``
    decide positive definiteness, which makes this the Cholesky of the fallback backend.
    """

    def __init__(self, lu: splinalg.SuperLU, symmetric: bool) -> None:
        self.lu = lu
        self.n = lu.shape[0]
        self.symmetric = symmetric
        pivots = lu.U.diagonal()
        self._pivots = pivots
        # SuperLU: Pr A Pc = L U with Pr[perm_r[i], i] = 1 and Pc[j, perm_c[j]] = 1, so
        # Pr A Pc = A[q_r][:, q_c] with q = argsort(perm): symmetric when perm_r == perm_c.
        self._symmetric_pivoting = symmetric and np.array_equal(lu.perm_r, lu.perm_c)
        self.positive_definite = bool(self._symmetric_pivoting and np.all(pivots > 0))
        self.method = "superlu-ldlt" if self._symmetric_pivoting else "superlu"

    @classmethod
    def attempt(cls, m: sparse.csc_array, symmetric: bool) -> SuperLUFactor | None:
        """Factorise ``m``, or return None when SuperLU finds it singular."""
        tries = []
        if symmetric:
            tries.append(
                dict(
                    permc_spec="MMD_AT_PLUS_A",
                    diag_pivot_thresh=0.0,
                    options=dict(SymmetricMode=True),
                )
            )
        tries.append(dict(permc_spec="COLAMD"))
        for kwargs in tries:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    lu = splinalg.splu(sparse.csc_matrix(m, copy=True), **kwargs)
            except RuntimeError:  # "Factor is exactly singular"
                continue
            factor = cls(lu, symmetric)
            if np.all(np.isfinite(factor._pivots)) and np.all(factor._pivots != 0):
                pivoted = "options" not in kwargs  # COLAMD with partial pivoting: stable
                if pivoted or factor.positive_definite or backward_stable(factor, m):
                    return factor
        return None

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        return self.lu.solve(np.asarray(b), trans="T" if transpose else "N")

    def _slogdet(self) -> tuple[float, float]:
        sign = permutation_sign(self.lu.perm_r) * permutation_sign(self.lu.perm_c)
        return slogdet_from_pivots(self._pivots, sign)

    def positive_count(self) -> int | None:
        if not self._symmetric_pivoting:
            return None
        return int(np.count_nonzero(self._pivots > 0))  # symmetric pivoting: LDLᵀ

    def solve_sqrt_t(self, z: np.ndarray) -> np.ndarray:
        if not self.positive_definite:
            raise NotImplementedError("only a positive definite LDLᵀ has a square root")
        # M[q][:, q] = L D Lᵀ with q = argsort(perm_c), i.e. M = Pᵀ L D Lᵀ P for the row
        # selection P = I[q]: R = Pᵀ L D^½ and R⁻ᵀ z = Pᵀ L⁻ᵀ D^-½ z, where (Pᵀ y)[q] = y,
        # i.e. Pᵀ y = y[perm_c].
        scale = 1.0 / np.sqrt(self._pivots)
        y = z * (scale if z.ndim == 1 else scale[:, None])
        y = splinalg.spsolve_triangular(
            sparse.csr_array(self._unit_lower.T), y, lower=False, unit_diagonal=True
        )
        return y[self.lu.perm_c]

    @cached_property
    def _unit_lower(self) -> sparse.csc_array:
        """SuperLU's unit lower triangular ``L`` (``lu.L`` builds a new copy per access)."""
        return sparse.csc_array(self.lu.L)

    def sqrt_t_matmul(self, x: np.ndarray) -> np.ndarray:
        if not self.positive_definite:
            raise NotImplementedError("only a positive definite LDLᵀ has a square root")
        # With R = Pᵀ L D^½ as in solve_sqrt_t: Rᵀ x = D^½ Lᵀ P x, where P x = x[q] for
        # P = I[q], q = argsort(perm_c).
        q = np.argsort(self.lu.perm_c)
        y = self._unit_lower.T @ np.asarray(x)[q]
        root = np.sqrt(self._pivots)
        return y * (root if y.ndim == 1 else root[:, None])

    def ldl_parts(self) -> tuple[sparse.csc_array, np.ndarray, np.ndarray]:
        """``(L, d, perm)``: ``M[perm][:, perm] = L diag(d) Lᵀ``, ``L`` unit lower.

        Only meaningful for a symmetric pivoting (``perm_r == perm_c``), where
        ``M[q][:, q] = L U`` with ``U = D Lᵀ`` and ``q = argsort(perm_c)``.
        """
        return self._unit_lower, self._pivots, np.argsort(self.lu.perm_c)
