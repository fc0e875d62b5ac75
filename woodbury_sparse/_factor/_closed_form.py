"""Closed-form "factorisations" of diagonal matrices (the identity included)."""

from __future__ import annotations

import numpy as np

from ._base import Factor, slogdet_from_pivots


class DiagonalFactor(Factor):
    """``M = diag(d)``: solves are divisions, the determinant is a product."""

    symmetric = True

    def __init__(self, d: np.ndarray, positive: bool | None = None) -> None:
        self.d = d
        self.n = d.size
        self.method = "diagonal"
        self.rcond_needs_norm = self.screening_needs_norm = False
        # ``positive``: the caller has proved every dᵢ > 0 already.
        self.positive_definite = bool(np.all(d > 0)) if positive is None else positive

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        return b / (self.d if b.ndim == 1 else self.d[:, None])

    def _slogdet(self) -> tuple[float, float]:
        if self.positive_definite and self.n:  # what slogdet_from_pivots adds up, directly
            return 1.0, float(np.add.reduce(np.log(self.d)))
        return slogdet_from_pivots(self.d)

    def rcond(self, anorm: float) -> float:
        magnitude = np.abs(self.d)
        return float(magnitude.min() / magnitude.max()) if self.n else 1.0

    def solve_sqrt_t(self, z: np.ndarray) -> np.ndarray:
        root = np.sqrt(self.d)
        return z / (root if z.ndim == 1 else root[:, None])

    def sqrt_t_matmul(self, x: np.ndarray) -> np.ndarray:
        root = np.sqrt(self.d)
        return x * (root if x.ndim == 1 else root[:, None])


class IdentityFactor(Factor):
    """``M = I``: nothing to do."""

    symmetric = True
    positive_definite = True
    rcond_needs_norm = screening_needs_norm = False

    def __init__(self, n: int) -> None:
        self.n = n
        self.method = "identity"

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        return b

    def _slogdet(self) -> tuple[float, float]:
        return 1.0, 0.0

    def rcond(self, anorm: float) -> float:
        return 1.0

    def solve_sqrt_t(self, z: np.ndarray) -> np.ndarray:
        return z

    def sqrt_t_matmul(self, x: np.ndarray) -> np.ndarray:
        return x
