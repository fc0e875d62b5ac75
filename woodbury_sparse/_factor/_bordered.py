"""Factorisations of bordered matrices, extended from the factorisation of a block.

``M = [[M₁₁, C₁₂], [C₂₁, D]]`` with ``M₁₁`` already factorised: the capacitance of a
Woodbury operator that gains terms (see :mod:`woodbury_sparse.updates`). A dense
Cholesky factor gains rows; anything else is solved by block elimination through the
old factor and a factorisation of the Schur complement ``S = D − C₂₁ M₁₁⁻¹ C₁₂``.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from .._cache import cached_property
from ._base import Factor
from ._closed_form import DiagonalFactor, IdentityFactor
from ._dense import DenseCholesky, DenseLU

__all__ = ["BorderedFactor", "extend_factor"]


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class BorderedFactor(Factor):
    """Factorisation of ``M = [[M₁₁, C₁₂], [C₂₁, D]]`` by block elimination.

    Holds the factorisation of ``M₁₁`` (shared, not copied), ``Z = M₁₁⁻¹ C₁₂`` and a
    factorisation of the Schur complement ``S = D − C₂₁ Z``. Solves cost one solve with
    ``M₁₁``, one with ``S`` and ``O(pk)`` flops; ``det M = det M₁₁ · det S``.

    Parameters
    ----------
    f11 : Factor
        Factorisation of the leading ``p×p`` block.
    c12 : (p, k) ndarray
    c21 : (k, p) ndarray
    s_factor : Factor
        Factorisation of the ``k×k`` Schur complement.
    z : (p, k) ndarray
        ``M₁₁⁻¹ C₁₂``.
    symmetric : bool
        Whether ``M`` is symmetric (then ``C₂₁ = C₁₂ᵀ``).
    """

    def __init__(self, f11: Factor, c12, c21, s_factor: Factor, z, symmetric: bool) -> None:
        self.f11 = f11
        self.c12 = c12
        self.c21 = c21
        self.s_factor = s_factor
        self.z = z
        self.symmetric = bool(symmetric)
        self.n = f11.n + s_factor.n
        self.method = f"bordered({f11.method}; {s_factor.method})"
        self.positive_definite = bool(
            symmetric and f11.positive_definite and s_factor.positive_definite
        )

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        """``M⁻¹ b`` (or ``M⁻ᵀ b``) by block elimination."""
        p = self.f11.n
        b1, b2 = b[:p], b[p:]
        transpose = transpose and not self.symmetric
        x0 = self.f11.solve(b1, transpose=transpose)
        if transpose:  # Mᵀ = [[M₁₁ᵀ, C₂₁ᵀ], [C₁₂ᵀ, Dᵀ]]
            y = self.s_factor.solve(b2 - self.c12.T @ x0, transpose=True)
            x = x0 - self._zt @ y
        else:
            y = self.s_factor.solve(b2 - self.c21 @ x0)
            x = x0 - self.z @ y
        return np.concatenate([x, y], axis=0)

    @cached_property
    def _zt(self) -> np.ndarray:
        """``M₁₁⁻ᵀ C₂₁ᵀ``, for transposed solves; built on first use."""
        return self.f11.solve(np.array(self.c21.T), transpose=True)

    def _slogdet(self) -> tuple[float, float]:
        s1, l1 = self.f11.slogdet
        s2, l2 = self.s_factor.slogdet
        if s1 * s2 == 0:
            return 0.0, -np.inf
        return s1 * s2, l1 + l2


def _cholesky_lower(factor: Factor) -> np.ndarray | None:
    """The dense lower Cholesky factor behind ``factor``, when it has one."""
    if isinstance(factor, DenseCholesky):
        return factor.lower
    if isinstance(factor, IdentityFactor):
        return np.eye(factor.n)
    if isinstance(factor, DiagonalFactor) and factor.positive_definite:
        return np.diag(np.sqrt(factor.d))
    return None


def _factor_small(s: np.ndarray, symmetric: bool) -> Factor | None:
    """Factorise the Schur complement; a 1×1 one is inverted in closed form."""
    if s.shape == (1, 1):
        return DiagonalFactor(_frozen(s[0].copy())) if s[0, 0] != 0 else None
    factor = DenseCholesky.attempt(s) if symmetric else None
    return factor if factor is not None else DenseLU.attempt(s, symmetric)


def extend_factor(f11: Factor, c12, c21, d22, symmetric: bool) -> Factor | None:
    """The factorisation of ``[[M₁₁, C₁₂], [C₂₁, D]]`` from that of ``M₁₁``, or None.

    None means the Schur complement is singular; the caller then lets the bordered
    matrix be factorised (and reported singular) the ordinary way.
    """
    p, k = c12.shape
    lower = _cholesky_lower(f11) if symmetric else None
    if lower is not None:
        w = linalg.solve_triangular(lower, c12, lower=True, check_finite=False) if p else c12
        s = d22 - w.T @ w
        s = 0.5 * (s + s.T)
        if k == 1:  # Sherman–Morrison: no factorisation, one square root
            ls = np.sqrt(s) if s[0, 0] > 0 else None
        else:
            chol = DenseCholesky.attempt(s)
            ls = chol.lower if chol is not None else None
        if ls is not None:
            new = np.zeros((p + k, p + k))
            new[:p, :p] = lower
            new[p:, :p] = w.T
            new[p:, p:] = ls
            return DenseCholesky(_frozen(new))
        z = linalg.solve_triangular(lower, w, lower=True, trans="T", check_finite=False)
    else:
        z = f11.solve(c12) if p else np.zeros((0, k))
        s = d22 - c21 @ z
        if symmetric:
            s = 0.5 * (s + s.T)
    s_factor = _factor_small(np.ascontiguousarray(s), symmetric)
    if s_factor is None:
        return None
    return BorderedFactor(f11, c12, c21, s_factor, _frozen(np.asarray(z)), symmetric)
