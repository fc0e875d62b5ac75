"""The arguments of the Gaussian front ends (``stats`` and ``dask``): a covariance, a mean.

Both modules accept the same ``cov`` and ``mean`` and refuse them in the same words;
the checks live here, between the operators they name and the two modules that use them.
"""

from __future__ import annotations

import numpy as np

from ._operators import SymmetricWoodburyMatrix, WoodburyMatrix
from ._validation import require_real

__all__ = ["check_covariance", "mean_vector"]


def check_covariance(cov, name: str) -> SymmetricWoodburyMatrix:
    """``cov`` itself when it is a :class:`SymmetricWoodburyMatrix`; otherwise an error.

    ``None`` and non-operators are a ``TypeError``; a general :class:`WoodburyMatrix` a
    ``ValueError`` saying how to build a symmetric one.
    """
    if cov is None:
        raise TypeError(f"`{name}` is required: a SymmetricWoodburyMatrix")
    if isinstance(cov, SymmetricWoodburyMatrix):
        return cov
    if isinstance(cov, WoodburyMatrix):
        raise ValueError(
            f"`{name}` must be a SymmetricWoodburyMatrix (a covariance is symmetric), "
            "got a general WoodburyMatrix; build it with `X=` or `symmetric=True`"
        )
    raise TypeError(f"`{name}` must be a SymmetricWoodburyMatrix, got {type(cov).__name__}")


def mean_vector(mean, n: int, name: str) -> np.ndarray:
    """``mean`` as a float64 vector of length ``n`` (``None`` → zeros, scalar → constant)."""
    if mean is None:
        return np.zeros(n)
    arr = np.asarray(mean)
    require_real(arr.dtype, name)
    arr = arr.astype(np.float64)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.ndim == 2 and 1 in arr.shape and arr.size == n:  # R's n×1 column matrices
        arr = arr.ravel()
    if arr.shape != (n,):
        raise ValueError(f"`{name}` must be a scalar or have shape ({n},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return arr
