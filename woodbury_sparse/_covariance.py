"""The exact square root of a positive definite ``W``, as a ``scipy.stats.Covariance``.

Below the operators (which hand it out from ``SymmetricWoodburyMatrix.as_covariance``):
it reads ``W``'s parts and factorisations and imports no operator module. Public as
:class:`woodbury_sparse.stats.WoodburyCovariance`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import linalg
from scipy.stats import Covariance

from ._blas import matmul
from ._cache import cached_property
from ._exceptions import NotPositiveDefiniteError

if TYPE_CHECKING:  # pragma: no cover
    from ._operators import SymmetricWoodburyMatrix

__all__ = ["MAX_COVARIANCE_RANK", "WoodburyCovariance"]

#: The largest ``k = min(n, p)`` for which :class:`WoodburyCovariance` builds its maps:
#: they take ``O(n k²)`` flops and a dense ``n×k`` matrix, cubic in ``n`` when ``X = I``
#: (``p = n``): 0.5 s at ``k`` = 1000, 13 s at 3000 on the development machine.
MAX_COVARIANCE_RANK: int = 1024


class WoodburyCovariance(Covariance):
    r"""A :class:`scipy.stats.Covariance` for ``W = A⁻¹ + X B⁻¹ Xᵀ`` (positive definite).

    Obtain it with :meth:`SymmetricWoodburyMatrix.as_covariance`.

    Notes
    -----
    With ``A = R Rᵀ`` (closed form for identity and diagonal ``A``, LAPACK Cholesky for
    dense ``A``, CHOLMOD ``LLᵀ`` or SciPy's symmetric SuperLU with the fill-reducing
    permutation for sparse ``A``: ``R = Pᵀ L``), ``W = R⁻ᵀ (I + Y Yᵀ) R⁻¹`` where
    ``Y Yᵀ = Rᵀ X B⁻¹ Xᵀ R``. A thin QR of
    ``Rᵀ X = Q₀ T`` and the eigendecomposition of the ``k×k`` matrix ``T B⁻¹ Tᵀ = E Λ Eᵀ``
    (``k = min(n, p)``) give ``Y Yᵀ = Q Λ Qᵀ`` with ``Q = Q₀ E``, hence the exact
    symmetric square root ``S = (I + Y Yᵀ)^½ = I + Q ((1 + Λ)^½ − I) Qᵀ`` and the
    colouring map ``L = R⁻ᵀ S`` with ``L Lᵀ = W``; whitening applies
    ``L⁻¹ = S⁻¹ Rᵀ``. Setup costs ``O(n k²)`` and ``O(n k)`` memory for the dense
    ``n×k`` ``Q``; each map costs ``O(n k)`` per point plus a sparse triangular product
    (whitening) or solve (colouring) with ``R``. Only ``A`` indefinite (``W`` may still be
    positive definite) leaves no exact affordable square root.

    ``whiten`` and ``colorize`` take points along the last axis, as SciPy's own
    covariance classes do: an ``x`` whose last axis is not of length ``n`` is a
    ``ValueError``; a complex ``x`` is mapped by linearity.

    A pickle holds ``W`` only (without factorisations): the maps are rebuilt where it is
    unpickled, on that process's backend, because they depend on the fill-reducing
    permutation of the factor of ``A`` that they were built on.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.stats
    >>> import woodbury_sparse as ws
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((5, 2))
    >>> W = ws.WoodburyMatrix(np.eye(5), np.eye(2), X=X)  # I + X Xᵀ
    >>> cov = W.as_covariance()
    >>> x = rng.standard_normal(5)
    >>> bool(np.allclose(cov.colorize(cov.whiten(x)), x))
    True
    >>> dist = scipy.stats.multivariate_normal(np.zeros(5), cov=cov)
    >>> bool(np.isclose(dist.logpdf(x), ws.dwnorm(x, None, W, log=True)))
    True
    """

    def __init__(self, W: SymmetricWoodburyMatrix) -> None:
        parts = W._state.parts
        a = parts.A
        k = min(W.n, W.p)
        if k > MAX_COVARIANCE_RANK:
            raise ValueError(
                f"W.as_covariance() would build a dense {W.n}×{k} square-root factor "
                f"(k = min(n, p) = {k} > {MAX_COVARIANCE_RANK}; O(n k²) flops, cubic in n "
                "when X = I); woodbury_sparse.WoodburyNormal(mean, W) gives logpdf, rvs and "
                "entropy from W's factorisations without one"
            )
        if not a.factor.positive_definite:
            raise NotPositiveDefiniteError(
                "A",
                "W.as_covariance() needs `A` positive definite (A = R Rᵀ): its exact square "
                f"root of W is built on that Cholesky factor, but the factorisation of A "
                f"({a.factor.method}) shows A is not positive definite, and no other exact "
                "square root of W is affordable; woodbury_sparse.WoodburyNormal(mean, W) "
                "gives logpdf and entropy without one",
            )
        n, p = W.n, W.p
        self._W = W
        self._A = a
        if p:
            z = a.factor.sqrt_t_matmul(
                parts.U.toarray() if parts.U.kind != "dense" else parts.U.data
            )
            q0, t = linalg.qr(z, mode="economic")
            m = t @ parts.B.factor.solve(np.ascontiguousarray(t.T))
            lam, e = linalg.eigh(0.5 * (m + m.T))
            if np.any(1.0 + lam <= 0):
                raise NotPositiveDefiniteError(
                    "W", "W = A⁻¹ + X B⁻¹ Xᵀ is not positive definite: no covariance"
                )
            self._Q = matmul(q0, e)
            root = np.sqrt(1.0 + lam)
            self._up = root - 1.0  # S = I + Q diag(up) Qᵀ
            self._down = 1.0 / root - 1.0  # S⁻¹ = I + Q diag(down) Qᵀ
            log_det = float(np.sum(np.log1p(lam))) - a.factor.slogdet[1]
        else:
            self._Q = np.zeros((n, 0))
            self._up = self._down = np.zeros(0)
            log_det = -a.factor.slogdet[1]
        self._log_pdet = log_det
        self._rank = n
        self._shape = (n, n)
        self._allow_singular = False

    def __reduce__(self):
        # The maps hold quantities (Q, the eigenvalues) built on one backend's Cholesky
        # factor of A, with that backend's fill-reducing permutation; another process may
        # factorise A on another backend (or another CHOLMOD) with another permutation.
        # So the pickle carries only W, and the maps are rebuilt from W where unpickled.
        return (_covariance_of, (self._W,))

    def _apply_columns(self, x, fn) -> np.ndarray:
        """``fn`` on the points of ``x`` (last axis of length n), as columns, reshaped back.

        A complex ``x`` is mapped by linearity, real and imaginary parts in one call.
        """
        arr = np.asarray(x)
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"`x` must hold numbers, got dtype {arr.dtype}")
        n = self._shape[0]
        if arr.ndim == 0 or arr.shape[-1] != n:
            raise ValueError(
                f"`x` must be an array of points of dimension {n} (its last axis of "
                f"length {n}), got shape {arr.shape}"
            )
        if arr.dtype.kind == "c":
            cols = arr.reshape(-1, n).T
            k = cols.shape[1]
            both = fn(np.hstack([cols.real, cols.imag]).astype(np.float64))
            return (both[:, :k] + 1j * both[:, k:]).T.reshape(arr.shape)
        cols = arr.astype(np.float64).reshape(-1, n).T
        return fn(cols).T.reshape(arr.shape)

    def _whiten(self, x: np.ndarray) -> np.ndarray:
        def fn(c):
            y = self._A.factor.sqrt_t_matmul(c)
            return y + matmul(self._Q, self._down[:, None] * matmul(self._Q.T, y))

        return self._apply_columns(x, fn)

    def _colorize(self, x: np.ndarray) -> np.ndarray:
        def fn(c):
            y = c + matmul(self._Q, self._up[:, None] * matmul(self._Q.T, c))
            return self._A.factor.solve_sqrt_t(y)

        return self._apply_columns(x, fn)

    @cached_property
    def _covariance(self) -> np.ndarray:
        """The dense ``W`` (built on first access only: ``O(n²)`` memory)."""
        return self._W.toarray()


def _covariance_of(W: SymmetricWoodburyMatrix) -> WoodburyCovariance:
    """Unpickle a :class:`WoodburyCovariance`: ``W.as_covariance()``, built here."""
    return W.as_covariance()


# Documented, and pickled by reference, under its public module.
WoodburyCovariance.__module__ = "woodbury_sparse.stats"
