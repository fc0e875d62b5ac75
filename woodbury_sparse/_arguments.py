"""The arguments of the Gaussian front ends: a covariance, a mean, a sample size.

``stats``, ``dask`` and ``posterior`` accept the same ``cov``, ``mean`` and ``size`` and
refuse them in the same words; the checks live here, between the operators they name and
the modules that use them (seeds and generators: ``_random``).
"""

from __future__ import annotations

import numpy as np

from ._blocks import all_finite
from ._operators import SymmetricWoodburyMatrix, WoodburyMatrix
from ._validation import as_count, require_real, short_repr

__all__ = ["check_covariance", "mean_vector", "points", "size_shape"]


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


def points(x, n: int) -> np.ndarray:
    """``x`` as float64, shape ``(n,)`` or ``(k, n)`` (one point per row); read only.

    Not copied when it already is float64: callers form new arrays from it (a deviation
    from a mean), never write into it.
    """
    arr = np.asarray(x)
    if arr.dtype != np.float64:
        require_real(arr.dtype, "x")
        arr = arr.astype(np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] != n:
        raise ValueError(
            f"`x` must have shape ({n},) for one point or (k, {n}) for k points (one per "
            f"row), got shape {arr.shape}"
        )
    if not all_finite(arr):  # check_finite(arr, "x"), without the call
        raise ValueError("`x` contains NaN or infinite values")
    return arr


def size_shape(size, name: str = "size") -> tuple[int, ...]:
    """``size`` (None, an int, or a tuple / list / 1-D array of ints) as a shape tuple.

    Integers only, NumPy integers included: a float, a string or a bool is a
    ``TypeError`` rather than being truncated or parsed.
    """
    if size is None:
        return ()
    count = as_count(size)
    if count is not None:
        shape: tuple[int, ...] = (count,)
    elif isinstance(size, (tuple, list)) or (isinstance(size, np.ndarray) and size.ndim == 1):
        counts = [as_count(s) for s in size]
        known = [c for c in counts if c is not None]
        if len(known) != len(counts):
            raise TypeError(
                f"`{name}` must be an int or a tuple of ints, got {short_repr(size)} "
                "(an entry is not an integer)"
            )
        shape = tuple(known)
    else:
        raise TypeError(f"`{name}` must be an int or a tuple of ints, got {short_repr(size)}")
    if any(s < 0 for s in shape):
        raise ValueError(f"`{name}` must be non-negative, got {short_repr(size)}")
    return shape
