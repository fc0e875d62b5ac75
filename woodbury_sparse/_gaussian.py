"""What the Gaussians of ``posterior`` and ``constraints`` share: shapes, draws, points.

A :class:`Gaussian` knows its mean (``(d,)``, or ``(d, k)`` for a batch of ``k``
distributions with one covariance: the posteriors of ``k`` observation vectors), its
marginal variances and a colouring map ``G`` (``G Gᵀ = Σ``) applied to rows of white
noise; draws, standard deviations and the handling of points follow from those here, once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ._arguments import points, size_shape
from ._random import resolve
from ._validation import require_real

__all__ = ["LOG_2PI", "Gaussian", "as_indices", "as_mean"]

LOG_2PI = float(np.log(2.0 * np.pi))


def as_mean(mean, d: int, name: str = "mean") -> np.ndarray:
    """``mean`` as a read-only float64 array of shape ``(d,)`` or ``(d, k)``.

    ``None`` is zero, a scalar is constant; a 2-D mean is a batch of ``k`` means, one per
    column (as the right-hand sides of ``W.solve``).
    """
    if mean is None:
        arr = np.zeros(d)
    else:
        arr = np.asarray(mean)
        require_real(arr.dtype, name)
        arr = np.array(arr, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(d, float(arr))
        if arr.ndim not in (1, 2) or arr.shape[0] != d:
            raise ValueError(
                f"`{name}` must be a scalar or have shape ({d},), or ({d}, k) for k "
                f"distributions, got shape {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"`{name}` contains NaN or infinite values")
    arr.flags.writeable = False
    return arr


def as_indices(index, d: int, name: str) -> np.ndarray:
    """``index`` as an int64 array of positions in ``[0, d)`` (negative ones count back)."""
    arr = np.asarray(index)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"`{name}` must hold integers (indices), got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = (arr < -d) | (arr >= d)
    if np.any(bad):
        raise IndexError(f"`{name}` holds {int(arr[bad].flat[0])}, outside [-{d}, {d})")
    return np.where(arr < 0, arr + d, arr)


class Gaussian(ABC):
    """A (possibly degenerate) Gaussian of dimension ``dim``, or a batch of them.

    Subclasses set ``_mean`` (read-only, ``(dim,)`` or ``(dim, k)``) and ``white_dim`` and
    implement :meth:`var` and :meth:`colorize`.
    """

    _mean: np.ndarray
    #: The number of independent standard normals one draw consumes (``colorize``'s input).
    white_dim: int

    @property
    def mean(self) -> np.ndarray:
        """The mean: shape ``(dim,)``, or ``(dim, k)`` for a batch (read-only)."""
        return self._mean

    @property
    def dim(self) -> int:
        """The dimension ``d`` of the distribution."""
        return self._mean.shape[0]

    @property
    def batch(self) -> int | None:
        """``k`` for a batch of ``k`` distributions (a 2-D mean), else ``None``."""
        return self._mean.shape[1] if self._mean.ndim == 2 else None

    @abstractmethod
    def var(self) -> np.ndarray:
        """Marginal variances, shape ``(dim,)`` (shared by every member of a batch)."""

    def std(self) -> np.ndarray:
        """Marginal standard deviations, ``sqrt(var())``, shape ``(dim,)``."""
        return np.sqrt(self.var())

    @abstractmethod
    def _colour_columns(self, z: np.ndarray) -> np.ndarray:
        """``G z`` for white columns ``z`` of shape ``(white_dim, m)``: ``(dim, m)``."""

    def colorize(self, z) -> np.ndarray:
        """Map white noise to the distribution's fluctuations: ``x = G z`` with ``G Gᵀ = Σ``.

        The exact linear map behind :meth:`rvs` (which adds the mean), as
        ``scipy.stats.Covariance.colorize``: rows of ``z`` are independent draws.

        Parameters
        ----------
        z : array_like, shape (white_dim,) or (m, white_dim)
            Independent standard normal numbers, one draw per row.

        Returns
        -------
        ndarray, shape (dim,) or (m, dim)
            Draws with mean zero and covariance ``Σ``.
        """
        arr = np.asarray(z)
        require_real(arr.dtype, "z")
        arr = arr.astype(np.float64)
        if arr.ndim not in (1, 2) or arr.shape[-1] != self.white_dim:
            raise ValueError(
                f"`z` must have shape ({self.white_dim},) or (m, {self.white_dim}), got shape "
                f"{arr.shape}"
            )
        if arr.ndim == 1:
            return self._colour_columns(arr[:, None])[:, 0]
        return np.ascontiguousarray(self._colour_columns(arr.T).T)

    def rvs(self, size=1, random_state=None, *, rng=None) -> np.ndarray:
        """Draw samples.

        Parameters
        ----------
        size : int or tuple of int, optional
            Number (or array shape) of draws; default 1.
        random_state : None, int, numpy.random.Generator or RandomState, optional
            Seed or generator; the same seed gives the same draws. The older spelling
            of ``rng``.
        rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator, optional
            Read as ``numpy.random.default_rng(rng)`` (SPEC 7); give ``rng`` or
            ``random_state``, not both. The same seed gives the same draws either way.

        Returns
        -------
        ndarray
            Each draw has the mean's shape: ``size + mean.shape``, or ``mean.shape`` for
            ``size=1`` (as SciPy's frozen distributions return one draw).

        Raises
        ------
        TypeError
            When ``size`` is not an int or a tuple of ints, ``rng`` or ``random_state``
            is not a seed or generator, or both are given.
        ValueError
            When ``size`` is negative.
        """
        shape = size_shape(size)
        source = resolve(rng, random_state, "random_state", "rvs")
        count = int(np.prod(shape, dtype=np.int64))
        k = self.batch or 1
        white = source.standard_normal((count * k, self.white_dim))
        draws = self._colour_columns(white.T)  # (dim, count·k), draw-major
        if self.batch is None:
            out = draws.T + self._mean
        else:
            out = draws.reshape(self.dim, count, k).transpose(1, 0, 2) + self._mean
        if not np.iterable(size) and size == 1:
            return out[0]
        return np.ascontiguousarray(out.reshape(shape + self._mean.shape))

    # -- points ------------------------------------------------------------------------
    def _deviations(self, x) -> tuple[np.ndarray, bool]:
        """``x − mean`` as columns ``(dim, m)``, and whether ``x`` was one point.

        One distribution: ``x`` is ``(dim,)`` or ``(m, dim)`` (points as rows, as in
        ``stats``). A batch of ``k``: ``x`` is ``(dim, k)``, column ``j`` a point of member
        ``j``.
        """
        if self.batch is None:  # one point or one per row, read as everywhere else
            arr = points(x, self.dim)
            return np.ascontiguousarray((np.atleast_2d(arr) - self._mean).T), arr.ndim == 1
        arr = np.asarray(x)
        require_real(arr.dtype, "x")
        arr = arr.astype(np.float64)
        if arr.shape != self._mean.shape:
            raise ValueError(
                f"`x` must have shape {self._mean.shape} (one point per member of the "
                f"batch, as columns), got shape {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError("`x` contains NaN or infinite values")
        return np.ascontiguousarray(arr - self._mean), False
