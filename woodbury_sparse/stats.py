r"""The multivariate normal distribution ``N(μ, W)`` with a Woodbury covariance.

``W = A⁻¹ + X B⁻¹ Xᵀ`` is a :class:`~woodbury_sparse.SymmetricWoodburyMatrix`; nothing
here ever forms or factorises ``W`` itself.

============================  =========================================================
function                      what it needs
============================  =========================================================
:func:`mahalanobis`           one (multi right-hand side) solve with ``W``
:func:`dwnorm`, ``logpdf``    the solve and ``log det W`` (factorisations of ``A``, ``B``
                              and the capacitance ``O = B + Xᵀ A X``)
:func:`rwnorm`, ``rvs``       Cholesky factors of ``A`` and ``B``: a draw with covariance
                              ``A⁻¹`` plus ``X`` times a draw with covariance ``B⁻¹``
``W.as_covariance()``         an exact square root of ``W``: the Cholesky factor of ``A``
                              (any kind, positive definite) and a thin QR and
                              eigendecomposition of an ``n×k`` problem, ``k = min(n, p)``
============================  =========================================================

The R-compatible functions keep R's names and argument order (``mahalanobis(x, center,
cov)``, ``dwnorm(x, mean, covariance, log)``, ``rwnorm(n, mean, covariance)``);
:class:`WoodburyNormal` is the frozen distribution with the interface of
``scipy.stats.multivariate_normal(mean, cov)``.

Points are rows: ``x`` is one point of shape ``(n,)`` or ``k`` points of shape
``(k, n)``, and the mean is subtracted from every row (R's ``mahalanobis`` subtracts a
vector centre along the wrong axis of a matrix ``x``).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from ._arguments import check_covariance, mean_vector, points, size_shape
from ._covariance import WoodburyCovariance, _covariance_of  # noqa: F401 (public here; old pickles)
from ._exceptions import WoodburyWarning
from ._operators import SymmetricWoodburyMatrix
from ._random import RandomGenerator, check_one, generator, legacy_generator, resolve
from ._validation import require_integer
from .posterior import LatentPosterior, latent_posterior

if TYPE_CHECKING:  # pragma: no cover
    from numpy.typing import ArrayLike


__all__ = ["WoodburyCovariance", "WoodburyNormal", "dwnorm", "mahalanobis", "rwnorm"]

_LOG_2PI = float(np.log(2.0 * np.pi))


# -- argument handling ---------------------------------------------------------------------
# -- the numerical kernels -----------------------------------------------------------------
def _deviations(x, mean, n: int, name: str) -> np.ndarray:
    """``x − mean``, validated; ``x`` itself (read only) when ``mean`` is ``None``."""
    if mean is None:  # no zero vector and no subtraction: x is only read from here on
        return points(x, n)
    return points(x, n) - mean_vector(mean, n, name)


def _maha(W: SymmetricWoodburyMatrix, dev: np.ndarray) -> np.ndarray | float:
    """``devᵢ W⁻¹ devᵢᵀ`` for every row of ``dev`` (see ``State.inverse_quadratic``)."""
    # ``dev`` is validated (float64, finite, n columns): no W.solve checks are repeated.
    if dev.ndim == 2 and dev.shape[0] == 0:
        return np.zeros(0)
    return W._state.inverse_quadratic(dev)


def _check_positive_definite(W: SymmetricWoodburyMatrix) -> None:
    """Raise unless ``W`` is positive definite (see ``State.gaussian_log_normaliser``)."""
    _ = W._state.gaussian_log_normaliser


def _logpdf(W: SymmetricWoodburyMatrix, dev: np.ndarray):
    # n log 2π + log det W, with the positive definiteness check: computed once per W.
    return -0.5 * (W._state.gaussian_log_normaliser + _maha(W, dev))


def _pdf_from_log(logp):
    with np.errstate(under="ignore", over="ignore"):
        out = np.exp(logp)
    logp_arr = np.asarray(logp)
    out_arr = np.asarray(out)
    lost = np.isfinite(logp_arr) & ((out_arr == 0) | ~np.isfinite(out_arr))
    if np.any(lost):
        worst = logp_arr[lost].flat[0]
        warnings.warn(
            f"the density {'underflows to 0' if worst < 0 else 'overflows to inf'} in "
            f"float64 where its logarithm is finite (log density {worst:.6g}); use the log "
            "density (`logpdf`, or `dwnorm(..., log=True)`) instead",
            WoodburyWarning,
            stacklevel=3,
        )
    return float(out) if np.ndim(out) == 0 else out


def _draw(W: SymmetricWoodburyMatrix, mean: np.ndarray, count: int, rng):
    """``count`` draws as a ``(count, n)`` array, from the generator ``rng``."""
    white = rng.standard_normal((count, W.n + W.p))
    return mean + W._state.colour(white.T).T


def mahalanobis(x: ArrayLike, center: ArrayLike | None = None, cov=None) -> float | np.ndarray:
    """Squared Mahalanobis distance ``(x − center)ᵀ W⁻¹ (x − center)``, as R computes it.

    Parameters
    ----------
    x : (n,) or (k, n) array_like
        One point, or ``k`` points one per row.
    center : None, scalar or (n,) array_like, optional
        Centre subtracted from every point; ``None`` (default) means zero.
    cov : SymmetricWoodburyMatrix
        The covariance ``W`` (required; keyword ``cov=`` when ``center`` is omitted).

    Returns
    -------
    float or (k,) ndarray
        The *squared* distance (R's convention), a float for 1-D ``x``.

    Raises
    ------
    SingularMatrixError
        When ``W`` is singular. ``W`` need not be positive definite.

    Notes
    -----
    Several points are handled with one multi-right-hand-side solve ``W⁻¹ (x − μ)ᵀ``:
    products with ``A`` and one solve with the ``p×p`` capacitance.

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> W = ws.WoodburyMatrix(np.eye(2), np.eye(2))  # W = 2 I
    >>> ws.mahalanobis(np.ones(2), cov=W)
    1.0
    >>> ws.mahalanobis(np.array([[1.0, 1.0], [2.0, 0.0]]), 0.0, W)
    array([1., 2.])
    """
    W = check_covariance(cov, "cov")
    dev = _deviations(x, center, W.n, "center")
    return _maha(W, dev)


def dwnorm(
    x: ArrayLike, mean: ArrayLike | None = None, covariance=None, log: bool = False
) -> float | np.ndarray:
    """(Log) density of ``N(mean, covariance)`` with a Woodbury covariance, as in R.

    Parameters
    ----------
    x : (n,) or (k, n) array_like
        One point, or ``k`` points one per row.
    mean : None, scalar or (n,) array_like, optional
        The mean; ``None`` (default) means zero.
    covariance : SymmetricWoodburyMatrix
        The covariance ``W``; must be positive definite.
    log : bool, optional
        Return the log density (default ``False``).

    Returns
    -------
    float or (k,) ndarray
        A float for 1-D ``x``.

    Raises
    ------
    NotPositiveDefiniteError
        When ``W`` is not positive definite (``.block == "W"``); R silently returns a
        number there.

    Warns
    -----
    WoodburyWarning
        When ``log=False`` and the density underflows to 0 (or overflows) in float64
        although its logarithm is finite — common in high dimension; use ``log=True``.

    Notes
    -----
    ``−½ (n log 2π + log det W + (x − μ)ᵀ W⁻¹ (x − μ))``, with ``log det W`` from the
    determinant lemma and the quadratic form from one multi-RHS solve.

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> W = ws.WoodburyMatrix(np.eye(2), np.eye(2))  # W = 2 I
    >>> round(ws.dwnorm(np.ones(2), covariance=W, log=True), 6)
    -3.031024
    """
    W = check_covariance(covariance, "covariance")
    state = W._state
    # _logpdf(W, _deviations(x, mean, W.n, "mean")), without its calls: a repeated log
    # density is tens of µs, of which Python's calls were a fifth.
    dev = points(x, state.n) if mean is None else _deviations(x, mean, state.n, "mean")
    normaliser = state.gaussian_log_normaliser  # n log 2π + log det W; checks W > 0
    if dev.ndim == 2 and dev.shape[0] == 0:
        logp = -0.5 * (normaliser + np.zeros(0))
    else:
        logp = -0.5 * (normaliser + state.inverse_quadratic(dev))
    return logp if log else _pdf_from_log(logp)


def rwnorm(
    n: int,
    mean: ArrayLike | None = None,
    covariance=None,
    random_state=None,
    *,
    rng=None,
) -> np.ndarray:
    """Draw ``n`` samples of ``N(mean, covariance)``, as R's ``rwnorm``.

    Parameters
    ----------
    n : int
        Number of draws.
    mean : None, scalar or (d,) array_like, optional
        The mean; ``None`` (default) means zero.
    covariance : SymmetricWoodburyMatrix
        The covariance ``W = A⁻¹ + X B⁻¹ Xᵀ``; ``A`` and ``B`` must be positive definite.
    random_state : None, int, numpy.random.Generator or RandomState, optional
        The older spelling of ``rng``, kept with its meaning (a ``RandomState`` is used as
        it is); give one of the two.
    rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator, optional
        Read as ``numpy.random.default_rng(rng)`` (SPEC 7): ``None`` (default) draws fresh
        entropy, the same seed gives the same draws, a ``Generator`` is used and advanced.

    Returns
    -------
    ndarray
        Shape ``(d,)`` when ``n == 1`` (as R returns a vector), ``(n, d)`` otherwise.

    Raises
    ------
    NotPositiveDefiniteError
        When ``A`` or ``B`` is not positive definite (``.block`` names which).
    TypeError
        When ``n`` is not an integer (a float or bool is not truncated),
        ``rng`` or ``random_state`` is not a seed or generator, or both are given.
    ValueError
        When ``n`` is negative.

    Notes
    -----
    ``x = μ + R_A⁻ᵀ z₁ + X R_B⁻ᵀ z₂`` with white ``z₁`` (``n``) and ``z₂`` (``p``) and
    Cholesky factors ``A = R_A R_Aᵀ``, ``B = R_B R_Bᵀ`` (fill-reducing permutation
    applied): ``cov(x) = A⁻¹ + X B⁻¹ Xᵀ``. ``W`` is never factorised; all draws are made
    at once with multi-column triangular solves.

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> W = ws.WoodburyMatrix(np.eye(3), np.eye(1), X=np.ones((3, 1)))
    >>> ws.rwnorm(5, 0.0, W, rng=0).shape
    (5, 3)
    >>> ws.rwnorm(1, np.zeros(3), W, rng=np.random.default_rng(0)).shape
    (3,)
    """
    W = check_covariance(covariance, "covariance")
    count = require_integer(n, "n")
    source = resolve(rng, random_state, "random_state", "rwnorm")
    out = _draw(W, mean_vector(mean, W.n, "mean"), count, source)
    return out[0] if count == 1 else out


# -- frozen distribution -------------------------------------------------------------------
class WoodburyNormal:
    """Frozen ``N(mean, cov)`` with ``cov`` a :class:`~woodbury_sparse.SymmetricWoodburyMatrix`.

    Mirrors a frozen ``scipy.stats.multivariate_normal(mean, cov)``: ``logpdf``, ``pdf``,
    ``rvs``, ``entropy``, ``mean``, ``cov``, ``dim``, ``random_state``; adds
    ``mahalanobis``, and the marginal ``var`` and ``std``.

    Parameters
    ----------
    mean : None, scalar or (n,) array_like, optional
        The mean; ``None`` (default) means zero.
    cov : SymmetricWoodburyMatrix
        The covariance ``W``.
    seed : None, int, numpy.random.Generator or RandomState, optional
        Default random state of :meth:`rvs` (SciPy's ``seed`` argument, kept with its
        meaning: a ``RandomState`` is used as it is); the older spelling of ``rng``.
    rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator, optional
        Default generator of :meth:`rvs`, read as ``numpy.random.default_rng(rng)``
        (SPEC 7). Give ``rng`` or ``seed``, not both.

    Attributes
    ----------
    mean : (n,) ndarray
        Read-only mean vector.
    cov : SymmetricWoodburyMatrix
        The covariance operator (not a dense array: use ``cov.toarray()`` for that).
    dim : int
        Dimension ``n``.
    random_state : numpy.random.Generator or RandomState
        Used by :meth:`rvs` when no ``random_state`` is passed.

    Notes
    -----
    Output shapes follow the input, without SciPy's squeezing: a 1-D ``x`` gives a
    float, a ``(k, n)`` ``x`` gives ``(k,)`` (also for ``k = 1``). ``rvs(size)`` gives
    ``size + (n,)``, except ``size=1`` (the default) which gives ``(n,)`` as in SciPy.

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> W = ws.WoodburyMatrix(np.eye(2), np.eye(2))  # W = 2 I
    >>> dist = ws.WoodburyNormal(mean=[0.0, 0.0], cov=W, rng=1)
    >>> round(dist.logpdf([1.0, 1.0]), 6)
    -3.031024
    >>> dist.logpdf(np.ones((3, 2))).shape
    (3,)
    >>> dist.rvs(size=4).shape
    (4, 2)
    >>> round(dist.entropy(), 6)
    3.531024
    """

    def __init__(self, mean: ArrayLike | None = None, cov=None, seed=None, *, rng=None) -> None:
        W = check_covariance(cov, "cov")
        self._W = W
        self._mean = mean_vector(mean, W.n, "mean")
        self._mean.flags.writeable = False
        self._random_state = resolve(rng, seed, "seed", "WoodburyNormal")

    @property
    def random_state(self) -> RandomGenerator:
        """The generator :meth:`rvs` draws from when it is given none.

        Setting it to a seed (an int, say) makes a new generator *once*, as SciPy's
        frozen distributions do: later draws advance it, so each :meth:`rvs` call gives
        fresh draws, and setting the same seed again replays them.
        """
        return self._random_state

    @random_state.setter
    def random_state(self, seed) -> None:
        self._random_state = legacy_generator(seed)

    @property
    def mean(self) -> np.ndarray:
        """The mean vector (read-only)."""
        return self._mean

    @property
    def cov(self) -> SymmetricWoodburyMatrix:
        """The covariance operator ``W``."""
        return self._W

    @property
    def dim(self) -> int:
        """Dimension of the distribution."""
        return self._W.n

    def var(self) -> np.ndarray:
        """The marginal variances ``Var(xᵢ) = Wᵢᵢ``: the diagonal of the covariance.

        Named as the package's other Gaussians name it (``PrecisionNormal.var``, the
        posteriors' ``var``) and as ``scipy.stats``' univariate distributions do.
        ``diag(A⁻¹) + diag(X B⁻¹ Xᵀ)`` from the selected inverses of the cached
        factorisations (or closed forms, or blocked solves), never a dense ``n×n``
        array; see :meth:`~woodbury_sparse.WoodburyMatrix.diagonal` for the routes and
        their costs.

        Returns
        -------
        (n,) ndarray
            A new array.

        See Also
        --------
        std : their square roots.

        Examples
        --------
        >>> import numpy as np
        >>> import scipy.sparse as sp
        >>> import woodbury_sparse as ws
        >>> from woodbury_sparse.testing import ar1_precision
        >>> W = ws.WoodburyMatrix(ar1_precision(500, 0.5), 4.0 * sp.eye_array(500))
        >>> dist = ws.WoodburyNormal(cov=W)
        >>> var = dist.var()  # AR(1) variance 1/(1 − 0.25) + noise 1/4
        >>> bool(np.allclose(var, 1 / 0.75 + 0.25))
        True
        """
        return self._W.diagonal()

    def std(self) -> np.ndarray:
        """The marginal standard deviations, ``sqrt(var())``.

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> ws.WoodburyNormal(cov=ws.WoodburyMatrix(np.eye(2), 3.0 * np.eye(2))).std()
        array([1.15470054, 1.15470054])
        """
        return np.sqrt(self.var())

    def mahalanobis(self, x: ArrayLike) -> float | np.ndarray:
        """Squared Mahalanobis distance ``(x − μ)ᵀ W⁻¹ (x − μ)`` of each point (row)."""
        return _maha(self._W, points(x, self.dim) - self._mean)

    def logpdf(self, x: ArrayLike) -> float | np.ndarray:
        """Log density at ``x`` (``(n,)`` → float, ``(k, n)`` → ``(k,)``).

        Raises
        ------
        NotPositiveDefiniteError
            When ``W`` is not positive definite.
        """
        return _logpdf(self._W, points(x, self.dim) - self._mean)

    def pdf(self, x: ArrayLike) -> float | np.ndarray:
        """Density at ``x``; warns (:class:`WoodburyWarning`) where it under/overflows.

        In high dimension the density is routinely below the smallest float64
        (``logpdf < −745``); ``pdf`` then returns 0 *with a warning*: use :meth:`logpdf`.
        """
        return _pdf_from_log(self.logpdf(x))

    def rvs(self, size=1, random_state=None, *, rng=None) -> np.ndarray:
        """Draw samples: shape ``size + (n,)``, or ``(n,)`` for ``size=1``.

        Parameters
        ----------
        size : int or tuple of int, optional
            Number (or array shape) of draws; default 1. NumPy integers are accepted;
            a float, string or bool is a ``TypeError``.
        random_state : None, int, numpy.random.Generator or RandomState, optional
            Overrides the distribution's ``random_state`` for this call; the older
            spelling of ``rng``.
        rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator, optional
            Overrides it too, read as ``numpy.random.default_rng(rng)`` (SPEC 7). Give
            ``rng`` or ``random_state``, not both; with neither, the draws come from
            the distribution's ``random_state``.

        Raises
        ------
        NotPositiveDefiniteError
            When ``A`` or ``B`` is not positive definite.
        TypeError
            When ``size`` is not an int or a tuple of ints, ``rng`` or ``random_state``
            is not a seed or generator, or both are given.
        ValueError
            When ``size`` is negative.
        """
        shape = size_shape(size)
        check_one(rng, random_state, "random_state", "rvs")
        if rng is not None:
            source: RandomGenerator = generator(rng)
        elif random_state is not None:
            source = legacy_generator(random_state)
        else:
            source = self._random_state
        count = int(np.prod(shape, dtype=np.int64))
        out = _draw(self._W, self._mean, count, source)
        if not np.iterable(size) and size == 1:
            return out[0]
        return out.reshape((*shape, self.dim))

    def posterior(self, y: ArrayLike) -> LatentPosterior:
        """The posterior of the latent components given ``y`` (see :func:`latent_posterior`).

        The covariance ``W = A⁻¹ + X B⁻¹ Xᵀ`` is that of ``y = mean + e + X z`` with
        ``e ~ N(0, A⁻¹)``, ``z ~ N(0, B⁻¹)``: this returns ``z | y`` (``.latent``) and
        ``e | y`` (``.noise``), reusing ``W``'s factorisation of ``O = B + Xᵀ A X``.

        Parameters
        ----------
        y : (n,) or (n, k) array_like
            One observation vector, or ``k`` as columns.

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> W = ws.WoodburyMatrix(np.eye(3), np.eye(3), symmetric=True)  # e + z, unit variances
        >>> post = ws.WoodburyNormal(np.zeros(3), W).posterior([2.0, 0.0, -2.0])
        >>> post.latent.mean, post.latent.var()
        (array([ 1.,  0., -1.]), array([0.5, 0.5, 0.5]))
        """
        return latent_posterior(self._W, y, self._mean)

    def entropy(self) -> float:
        """Differential entropy ``½ (n (1 + log 2π) + log det W)``.

        Raises
        ------
        NotPositiveDefiniteError
            When ``W`` is not positive definite.
        """
        _check_positive_definite(self._W)
        return 0.5 * (self.dim * (1.0 + _LOG_2PI) + self._W.logdet())

    def __repr__(self) -> str:
        return f"WoodburyNormal(dim={self.dim}, cov={self._W!r})"


# -- scipy.stats.Covariance ----------------------------------------------------------------
