r"""Exact gradients of the Gaussian log density with a Woodbury covariance.

For ``ℓ(θ) = log N(y | μ(θ), W(θ))`` with ``W = A⁻¹ + X B⁻¹ Xᵀ`` (``A``, ``B`` precision
matrices depending on parameters ``θ₁ … θₘ``, ``X`` fixed), the determinant lemma
``log det W = log det O − log det A − log det B`` (``O = B + Xᵀ A X``) and
``r = W⁻¹ (y − μ)`` give, for each parameter,

.. code-block:: text

    ∂ℓ/∂θₖ = −½ [tr(O⁻¹ ∂O) − tr(A⁻¹ ∂A) − tr(B⁻¹ ∂B)] + ½ rᵀ ∂W r + (∂μ)ᵀ r,
    ∂O = ∂B + Xᵀ ∂A X,    ∂W = −A⁻¹ ∂A A⁻¹ − X B⁻¹ ∂B B⁻¹ Xᵀ.

The quadratic term is ``−½ uᵀ ∂A u − ½ sᵀ ∂B s`` with ``u = A⁻¹ r`` and ``s = B⁻¹ Xᵀ r``:
two solves with the factorisations ``W`` already holds. Each trace ``tr(M⁻¹ D)`` is the
sum of ``(M⁻¹)ᵢⱼ Dᵢⱼ`` over the stored entries of ``D``, read from the *selected
inverse* of ``M`` (its entries on the pattern of the Cholesky factor, see
:func:`~woodbury_sparse.selected_inverse`), which holds every entry a derivative within
the pattern of ``M`` needs: exact, no stochastic estimate. Entries a derivative has
outside that pattern (a pattern the library cannot see in advance) are read from
columns of ``M⁻¹`` computed by solves with the same cached factorisation, so the traces
stay exact whatever the derivatives. With ``X ≠ I`` the capacitance derivative
``Xᵀ ∂A X`` is formed as a (sparse or small dense) ``p×p`` product; its pattern lies in
that of ``O ⊇ Xᵀ A X`` whenever ``∂A`` lies in ``A``'s pattern and ``A`` has its diagonal
stored.

Cost: on top of one log density (the factorisations of ``A``, ``B`` and ``O``, one solve),
one selected inversion of each of ``A``, ``B`` and ``O`` (about a numeric factorisation
each; none for identity or diagonal blocks), two solves, and ``O(nnz)`` per derivative.
Nothing ``n×n`` is formed and nothing is refactorised.

Only the symmetric form: a Gaussian log density needs a symmetric covariance, and
``A``, ``B`` must be positive definite (precision matrices), which is what the selected
inverse (a Cholesky factor's) needs. The derivative of ``log|det W|`` of a general
``W = A⁻¹ + U B⁻¹ V`` would need selected inverses of LU factors, which the factor
layer does not provide.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal, NamedTuple, overload

import numpy as np
from scipy import sparse

from ._arguments import check_covariance, mean_vector, points
from ._blocks import arrays_equal
from ._exceptions import NotPositiveDefiniteError
from ._factor import SelectedInverse
from ._validation import require_real, short_repr

__all__ = ["LogDensityGradient", "LogDensityInformation", "log_density_gradient"]

_LOG_2PI = float(np.log(2.0 * np.pi))

#: Columns of ``M⁻¹`` solved for at once when a derivative has entries outside the
#: pattern of ``M``'s selected inverse (an ``n × 256`` dense block at a time).
FALLBACK_COLUMNS: int = 256


class LogDensityGradient(NamedTuple):
    """The log density and its gradient, from :func:`log_density_gradient`.

    Attributes
    ----------
    value : float or ndarray of shape (k,)
        ``log N(y | μ, W)`` for one point, or for each of ``k`` points.
    gradient : ndarray of shape (m,) or (k, m)
        ``∂ℓ/∂θ`` for each of the ``m`` parameters (for each point).
    """

    value: float | np.ndarray
    gradient: np.ndarray


class LogDensityInformation(NamedTuple):
    """The log density, its gradient and the average information matrix.

    From :func:`log_density_gradient` with ``information=True``.

    Attributes
    ----------
    value : float or ndarray of shape (k,)
        ``log N(y | μ, W)`` for one point, or for each of ``k`` points.
    gradient : ndarray of shape (m,) or (k, m)
        ``∂ℓ/∂θ`` for each of the ``m`` parameters (for each point).
    information : ndarray of shape (m, m) or (k, m, m)
        The average information matrix ``½ rᵀ ∂ₖW W⁻¹ ∂ₗW r + ∂ₖμᵀ W⁻¹ ∂ₗμ`` (for each
        point; independent replicates add, like their log densities): symmetric positive
        semidefinite, an approximation of ``−∇²ℓ`` that needs first derivatives only.
    """

    value: float | np.ndarray
    gradient: np.ndarray
    information: np.ndarray


# -- derivatives --------------------------------------------------------------------------
class _Derivative(NamedTuple):
    """A derivative matrix: ``kind`` in zero, scalar (``c·I``), diagonal, sparse, dense."""

    kind: str
    data: float | np.ndarray | Any | None  # None, float, ndarray, ndarray, csc_array

    @property
    def scalar(self) -> float:
        """``c`` of a ``scalar`` derivative ``c·I``."""
        if not isinstance(self.data, float):
            raise TypeError(f"a {self.kind} derivative has no scalar")
        return self.data

    @property
    def array(self) -> np.ndarray:
        """The vector of a ``diagonal`` derivative, the matrix of a ``dense`` one."""
        if not isinstance(self.data, np.ndarray):
            raise TypeError(f"a {self.kind} derivative has no array")
        return self.data

    @property
    def matrix(self) -> Any:
        """The matrix of a ``dense`` or ``sparse`` derivative (an ndarray or a CSC array)."""
        if self.kind not in ("dense", "sparse"):
            raise TypeError(f"a {self.kind} derivative has no matrix")
        return self.data

    def quadratic(self, u: np.ndarray) -> np.ndarray:
        """``uⱼᵀ D uⱼ`` for every column ``uⱼ`` of the ``(n, k)`` array ``u``."""
        if self.kind == "zero":
            return np.zeros(u.shape[1])
        if self.kind == "scalar":
            return self.scalar * np.einsum("ij,ij->j", u, u)
        if self.kind == "diagonal":
            return np.einsum("i,ij,ij->j", self.array, u, u)
        return np.einsum("ij,ij->j", u, np.asarray(self.matrix @ u))

    def apply(self, u: np.ndarray) -> np.ndarray:
        """``D u`` for the ``(n, k)`` array ``u`` (a new array)."""
        if self.kind == "zero":
            return np.zeros_like(u)
        if self.kind == "scalar":
            return self.scalar * u
        if self.kind == "diagonal":
            return self.array[:, None] * u
        return np.asarray(self.matrix @ u)

    def sandwich(self, X: Any) -> _Derivative:
        """``Xᵀ D X`` for the ``(n, p)`` factor ``X`` (a dense array or a CSC array)."""
        if self.kind == "zero":
            return self
        if sparse.issparse(X):
            if self.kind == "scalar":
                m = (X.T @ X) * self.scalar
            elif self.kind == "diagonal":
                m = X.T @ (X.multiply(self.array[:, None]))
            else:
                m = X.T @ (self.matrix @ X)
            return _as_matrix(m)
        if self.kind == "scalar":
            return _Derivative("dense", self.scalar * (X.T @ X))
        if self.kind == "diagonal":
            return _Derivative("dense", X.T @ (self.array[:, None] * X))
        return _Derivative("dense", np.asarray(X.T @ (self.matrix @ X)))


def _as_matrix(m) -> _Derivative:
    if sparse.issparse(m):
        m = sparse.csc_array(m)
        m.sum_duplicates()
        return _Derivative("sparse", m)
    return _Derivative("dense", np.asarray(m))


def _derivative(value, n: int, name: str) -> _Derivative:
    """Validate one derivative of an ``n×n`` block (never copied, never modified)."""
    if value is None:
        return _Derivative("zero", None)
    if sparse.issparse(value):
        require_real(value.dtype, name)
        if value.shape != (n, n):
            raise ValueError(f"`{name}` must have shape ({n}, {n}), got shape {value.shape}")
        m = sparse.csc_array(value, dtype=np.float64)
        if not m.has_canonical_format:
            m = m.copy()
            m.sum_duplicates()
        if not np.all(np.isfinite(m.data)):
            raise ValueError(f"`{name}` contains NaN or infinite values")
        return _Derivative("sparse", m)
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged nested lists
        raise TypeError(f"`{name}` must be a scalar, a vector or a matrix, got {value!r}") from exc
    if arr.dtype == object:
        raise TypeError(f"`{name}` must be a scalar, a vector or a matrix, got {short_repr(value)}")
    require_real(arr.dtype, name)
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    if arr.ndim == 0:
        c = float(arr)
        return _Derivative("zero", None) if c == 0.0 else _Derivative("scalar", c)
    if arr.shape == (n,):
        return _Derivative("diagonal", arr)
    if arr.shape == (n, n):
        return _Derivative("dense", arr)
    raise ValueError(
        f"`{name}` must be a scalar (a multiple of the identity), a vector of shape ({n},) "
        f"(a diagonal) or a matrix of shape ({n}, {n}), got shape {arr.shape}"
    )


def _derivative_list(values, m: int | None, n: int, name: str) -> list[_Derivative] | None:
    if values is None:
        return None
    if not isinstance(values, (list, tuple)):
        raise TypeError(
            f"`{name}` must be a list with one derivative per parameter (None for zero), "
            f"got {type(values).__name__}"
        )
    if m is not None and len(values) != m:
        raise ValueError(
            f"`{name}` must have one entry per parameter: expected {m}, got {len(values)}"
        )
    return [_derivative(v, n, f"{name}[{k}]") for k, v in enumerate(values)]


# -- traces from selected inverses ----------------------------------------------------------
class _SharedPositions:
    """Positions of derivatives' patterns in selected inverses, shared by ``A``, ``B``, ``O``.

    The search of a pattern in a selected inverse (most of a trace's cost for a band or
    grid matrix) depends on the two patterns and the ordering only, not on the values:
    with ``X = I`` and a diagonal ``B``, ``O = B + A`` has ``A``'s pattern and ordering,
    so the positions found for ``∂A`` in ``A⁻¹`` serve ``O⁻¹`` too.
    """

    def __init__(self) -> None:
        self._seen: list[tuple[SelectedInverse, np.ndarray, np.ndarray, np.ndarray]] = []

    def positions(self, inverse: SelectedInverse, m: Any) -> np.ndarray:
        """:meth:`SelectedInverse.positions` of the stored entries of the CSC array ``m``."""
        for other, indptr, indices, found in self._seen:
            if (
                arrays_equal(indptr, m.indptr)
                and arrays_equal(indices, m.indices)
                and (other is inverse or other.same_pattern(inverse))
            ):
                return found
        cols = np.repeat(np.arange(m.shape[1], dtype=np.int64), np.diff(m.indptr))
        found = inverse.positions(m.indices, cols)
        self._seen.append((inverse, m.indptr, m.indices, found))
        return found


class _Traces:
    """``tr(M⁻¹ D)`` for a positive definite ``M`` held by a cached factorisation.

    The entries of ``M⁻¹`` on ``D``'s pattern come from the selected inverse (the factor
    layer's :class:`SelectedInverse`); entries off the factor's pattern from solves with
    the same factorisation, a few columns at a time.
    """

    def __init__(self, block: Any, name: str, shared: _SharedPositions) -> None:
        self.block = block
        self.name = name
        self.n = block.shape[0]
        self.shared = shared

    @cached_property
    def inverse(self) -> SelectedInverse:
        return SelectedInverse(self.block.factor, self.name)

    @cached_property
    def diagonal(self) -> np.ndarray:
        return self.inverse.diagonal()

    #: The last sparse pattern looked up and the entries of ``M⁻¹`` on it: derivatives of
    #: one block often share a pattern, and the entries depend on the pattern only.
    _memo: tuple | None = None

    def trace(self, d: _Derivative) -> float:
        """``tr(M⁻¹ D)`` for a symmetric ``D`` (``Σᵢⱼ (M⁻¹)ᵢⱼ Dᵢⱼ``), exactly."""
        if d.kind == "zero":
            return 0.0
        if d.kind == "scalar":
            return d.scalar * float(np.sum(self.diagonal))
        if d.kind == "diagonal":
            return float(self.diagonal @ d.array)
        if d.kind == "dense" and self.block.kind == "dense":  # p small: every entry
            n = self.n
            rows, cols = np.divmod(np.arange(n * n), n)
            values, _ = self.inverse.entries(rows, cols)
            return float(values @ d.array.ravel())
        m = d.matrix if d.kind == "sparse" else sparse.csc_array(d.matrix)
        memo = self._memo
        if (
            memo is not None
            and arrays_equal(memo[0], m.indptr)
            and arrays_equal(memo[1], m.indices)
        ):
            values, found, covered = memo[2:]
        else:
            if self.inverse.is_sparse:
                values, found = self.inverse.gather(self.shared.positions(self.inverse, m))
            else:
                cols = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(m.indptr))
                values, found = self.inverse.entries(m.indices, cols)
            covered = bool(np.all(found))
            self._memo = (m.indptr, m.indices, values, found, covered)
        if covered:
            return float(values @ m.data)
        # Some entries lie off the factor's pattern: those columns of M⁻¹ are solved for.
        total = float(values[found] @ m.data[found])
        miss = ~found & (m.data != 0)
        if not np.any(miss):
            return total
        cols = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(m.indptr))
        return total + self._solved_entries(m.indices[miss], cols[miss], m.data[miss])

    def _solved_entries(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> float:
        """``Σ (M⁻¹)[rows, cols] · values`` from columns of ``M⁻¹`` solved for."""
        factor = self.block.factor
        wanted, where = np.unique(cols, return_inverse=True)
        total = 0.0
        for lo in range(0, wanted.size, FALLBACK_COLUMNS):
            chunk = wanted[lo : lo + FALLBACK_COLUMNS]
            unit = np.zeros((self.n, chunk.size))
            unit[chunk, np.arange(chunk.size)] = 1.0
            columns = np.asarray(factor.solve(unit))
            sel = (where >= lo) & (where < lo + chunk.size)
            total += float(columns[rows[sel], where[sel] - lo] @ values[sel])
        return total


# -- the public function ----------------------------------------------------------------------
def _count(dA, dB, dmean) -> int:
    lengths = {
        name: len(v)
        for name, v in (("dA", dA), ("dB", dB), ("dmean", dmean))
        if isinstance(v, (list, tuple))
    }
    if not lengths:
        for name, v in (("dA", dA), ("dB", dB), ("dmean", dmean)):
            if v is not None:
                raise TypeError(
                    f"`{name}` must be a list with one derivative per parameter (None for "
                    f"zero), got {type(v).__name__}"
                )
        raise TypeError("at least one of `dA`, `dB` and `dmean` is required (a list per parameter)")
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"`{k}` has {v}" for k, v in lengths.items())
        raise ValueError(f"`dA`, `dB` and `dmean` must have one entry per parameter: {described}")
    return next(iter(lengths.values()))


@overload
def log_density_gradient(
    x,
    mean=...,
    cov=...,
    *,
    dA=...,
    dB=...,
    dmean=...,
    fixed=...,
    information: Literal[False] = ...,
) -> LogDensityGradient: ...
@overload
def log_density_gradient(
    x, mean=..., cov=..., *, dA=..., dB=..., dmean=..., fixed=..., information: Literal[True]
) -> LogDensityInformation: ...
@overload
def log_density_gradient(
    x, mean=..., cov=..., *, dA=..., dB=..., dmean=..., fixed=..., information: bool
) -> LogDensityGradient | LogDensityInformation: ...
def log_density_gradient(
    x,
    mean=None,
    cov=None,
    *,
    dA=None,
    dB=None,
    dmean=None,
    fixed=None,
    information: bool = False,
) -> LogDensityGradient | LogDensityInformation:
    """The log density ``log N(x | μ, W)`` and its exact gradient, from one call.

    ``W = A⁻¹ + X B⁻¹ Xᵀ`` and ``μ`` depend on parameters ``θ₁ … θₘ`` through the
    precision blocks ``A`` and ``B`` (``X`` is fixed); the caller gives the derivatives
    ``∂A/∂θₖ``, ``∂B/∂θₖ`` and ``∂μ/∂θₖ`` at the current ``θ``.

    Parameters
    ----------
    x : (n,) or (k, n) array_like
        One point, or ``k`` points one per row (replicates share every factorisation and
        every trace).
    mean : None, scalar or (n,) array_like, optional
        ``μ``; ``None`` (default) means zero.
    cov : SymmetricWoodburyMatrix
        ``W`` at the current ``θ``, with ``A`` and ``B`` positive definite.
    dA : list of length m, optional
        ``∂A/∂θₖ`` for each parameter: ``None`` (zero), a scalar ``c`` (``c·I``), an
        ``(n,)`` vector (a diagonal), or an ``(n, n)`` dense or sparse symmetric matrix.
        Best within the sparsity pattern of ``A`` (then every entry needed is in ``A``'s
        selected inverse).
    dB : list of length m, optional
        ``∂B/∂θₖ``, likewise ``(p, p)``; for several terms, ``B`` is block diagonal and
        so is its derivative.
    dmean : list of length m, optional
        ``∂μ/∂θₖ``: ``None`` (zero), a scalar (a constant vector) or an ``(n,)`` vector.
    fixed : (n, c) array_like, optional
        A design ``F`` of fixed effects with a flat prior, integrated out: then the
        value is the *restricted* (REML) log likelihood
        ``log N(x − F β̂; μ, W) + (c/2) log 2π − ½ log det(Fᵀ W⁻¹ F)`` (``β̂`` the
        generalised least squares estimate), and the gradient and information are its.
        ``F`` must have full column rank ``c < n``.
    information : bool, optional
        Also return the *average information* matrix (default False), the second-order
        information of REML/ML software's AI algorithm (see Notes).

    Returns
    -------
    LogDensityGradient or LogDensityInformation
        ``(value, gradient)``: a float and an ``(m,)`` array for one point; a ``(k,)``
        and a ``(k, m)`` array for ``k`` points (sum them for replicates). With
        ``information=True``, ``(value, gradient, information)``, the last an
        ``(m, m)`` array, or ``(k, m, m)`` for ``k`` points (sum them for replicates).

    Raises
    ------
    TypeError
        When ``cov`` is not a ``SymmetricWoodburyMatrix``, or no derivative list is given.
    ValueError
        For points, means or derivatives of the wrong shape, lists of unequal lengths,
        or NaN or infinite values.
    NotPositiveDefiniteError
        When ``A`` or ``B`` is not positive definite.

    See Also
    --------
    woodbury_sparse.dwnorm : the log density alone.
    woodbury_sparse.fitting.fit : maximum likelihood with these gradients.

    Notes
    -----
    With ``r = W⁻¹ (x − μ)``, ``u = A⁻¹ r`` and ``s = B⁻¹ Xᵀ r``::

        ∂ℓ/∂θₖ = −½ [tr(O⁻¹ ∂O) − tr(A⁻¹ ∂A) − tr(B⁻¹ ∂B)] − ½ uᵀ ∂A u − ½ sᵀ ∂B s
                 + (∂μ)ᵀ r,      ∂O = ∂B + Xᵀ ∂A X.

    The traces are exact: sums of selected-inverse entries (see the module notes); with
    a dense ``O`` (``p`` small) the whole ``O⁻¹`` is used. Cost beyond one log density:
    a selected inversion of each of ``A``, ``B`` and ``O`` (skipped for identity and
    diagonal blocks, and for blocks no derivative touches), two solves and ``O(nnz)``
    per derivative; with ``X ≠ I`` also the products ``Xᵀ ∂A X``. An entry of a
    derivative outside the pattern of the factor costs a solve for its column.

    With ``fixed=F``, ``r`` becomes ``P (x − μ)``, ``P = W⁻¹ − Z G⁻¹ Zᵀ``, ``Z = W⁻¹ F``,
    ``G = Fᵀ Z``, and the gradient gains ``½ tr(G⁻¹ Zᵀ ∂W Z)`` (the derivative of
    ``−½ log det G``): ``c`` more solves with ``W`` and one each with ``A`` and ``B`` on
    ``c`` columns; the average information uses ``P`` in place of ``W⁻¹``.

    The average information (Gilmour, Thompson & Cullis 1995; Johnson & Thompson 1995)
    is, with ``vₖ = ∂ₖW r = −A⁻¹ ∂A u − X B⁻¹ ∂B s``::

        AIₖₗ = ½ vₖᵀ W⁻¹ vₗ + (∂ₖμ)ᵀ W⁻¹ (∂ₗμ),

    a Gram matrix in the ``W⁻¹`` inner product, hence symmetric positive semidefinite.
    When ``W`` and ``μ`` are linear in ``θ`` it is exactly the average of the observed
    information ``−∇²ℓ`` and the expected (Fisher) information, except for the
    observed information's cross terms ``(∂ₗμ)ᵀ W⁻¹ ∂ₖW r`` between mean and covariance
    parameters, whose expectation is zero and which it leaves out; in general it
    approximates ``−∇²ℓ`` to first order in ``y − μ`` and the curvature of ``W(θ)``,
    which makes it a Newton-like scaling for an optimiser (see
    :func:`woodbury_sparse.fitting.fit`). Cost: one solve with each of ``A``, ``B`` and
    ``W`` on ``m`` columns per point (and the mean derivatives'), with the cached
    factors; nothing is factorised.

    Examples
    --------
    AR(1) plus noise, ``W = Q_ρ⁻¹ + σ² I``, differentiated in ``ρ`` and ``σ²``:

    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> from woodbury_sparse.testing import ar1_precision, ar1_precision_derivative
    >>> n, rho, s2 = 200, 0.8, 0.5
    >>> W = ws.SymmetricWoodburyMatrix(ar1_precision(n, rho), np.eye(n) / s2)
    >>> y = ws.rwnorm(1, 0.0, W, random_state=0)
    >>> dQ = ar1_precision_derivative(n, rho)
    >>> value, grad = ws.log_density_gradient(y, 0.0, W, dA=[dQ, None], dB=[None, -1 / s2**2])
    >>> bool(np.isclose(value, ws.dwnorm(y, 0.0, W, log=True)))
    True
    >>> h = 1e-5
    >>> W2 = ws.SymmetricWoodburyMatrix(ar1_precision(n, rho), np.eye(n) / (s2 + h))
    >>> W1 = ws.SymmetricWoodburyMatrix(ar1_precision(n, rho), np.eye(n) / (s2 - h))
    >>> fd = (ws.dwnorm(y, 0.0, W2, log=True) - ws.dwnorm(y, 0.0, W1, log=True)) / (2 * h)
    >>> bool(np.isclose(grad[1], fd, rtol=1e-6))
    True

    The average information, symmetric positive definite here:

    >>> out = ws.log_density_gradient(
    ...     y, 0.0, W, dA=[dQ, None], dB=[None, -1 / s2**2], information=True
    ... )
    >>> out.information.shape, bool(np.all(np.linalg.eigvalsh(out.information) > 0))
    ((2, 2), True)
    """
    W = check_covariance(cov, "cov")
    n = W.n
    xs = points(x, n)
    mu = mean_vector(mean, n, "mean")
    m = _count(dA, dB, dmean)
    F = _fixed_design(fixed, n)
    state = W._state
    parts = state.parts
    p = state.p
    d_a = _derivative_list(dA, m, n, "dA") or [_Derivative("zero", None)] * m
    d_b = _derivative_list(dB, m, p, "dB") or [_Derivative("zero", None)] * m
    d_mu = _mean_derivatives(dmean, m, n)
    for name, block in (("A", parts.A), ("B", parts.B)):
        if block.shape[0] and not block.factor.positive_definite:
            raise NotPositiveDefiniteError(
                name,
                f"the gradient of the log density needs `{name}` positive definite (a "
                f"precision matrix), but its factorisation ({block.factor.method}) shows "
                "it is not",
            )

    # -- the value, as dwnorm computes it: W is positive definite since A and B are ----------
    dev = (xs - mu).T  # (n, k)
    dev = dev.reshape(n, -1)
    r = np.asarray(state.solve(dev))
    _, logdet = state.slogdet()
    restricted = None if F is None else _Restricted(state, F, dev, r)
    if restricted is not None:  # GLS residuals: dev − F β̂, r = P dev
        dev, r = restricted.dev, restricted.r
        logdet += restricted.logdet
    quad = np.einsum("ij,ij->j", dev, r)
    values = -0.5 * ((n - (0 if F is None else F.shape[1])) * _LOG_2PI + logdet + quad)

    # -- the quadratic and mean terms: u = A⁻¹ r, s = B⁻¹ Xᵀ r -------------------------------
    grad = np.zeros((dev.shape[1], m))
    u = s = None
    if any(d.kind != "zero" for d in d_a):
        u = np.asarray(parts.A.factor.solve(r)).reshape(n, -1)
        for k, d in enumerate(d_a):
            grad[:, k] -= 0.5 * d.quadratic(u)
    if p and any(d.kind != "zero" for d in d_b):
        s = np.asarray(parts.B.factor.solve(parts.V.matmul(r))).reshape(p, -1)
        for k, d in enumerate(d_b):
            grad[:, k] -= 0.5 * d.quadratic(s)
    for k, dm in enumerate(d_mu):
        if dm is not None:
            grad[:, k] += dm @ r

    # -- the traces: −½ [tr(O⁻¹ ∂O) − tr(A⁻¹ ∂A) − tr(B⁻¹ ∂B)] --------------------------------
    shared = _SharedPositions()
    inv_a = _Traces(parts.A, "A", shared)
    inv_b = _Traces(parts.B, "B", shared)
    inv_o = _Traces(state.O, "O", shared) if p else None
    x_factor = None
    if p and parts.U.kind != "identity":
        x_factor = parts.U.data if parts.U.kind in ("dense", "sparse") else parts.U.tosparse()
    gram: list[_Derivative] = []  # Xᵀ X, shared by the derivatives that are c·I
    for k in range(m):
        trace = -inv_a.trace(d_a[k])
        if inv_o is not None:
            trace += inv_o.trace(d_b[k]) - inv_b.trace(d_b[k])
            if x_factor is None:
                trace += inv_o.trace(d_a[k])
            elif d_a[k].kind == "scalar":
                if not gram:
                    gram.append(_Derivative("scalar", 1.0).sandwich(x_factor))
                trace += d_a[k].scalar * inv_o.trace(gram[0])
            else:
                trace += inv_o.trace(d_a[k].sandwich(x_factor))
        grad[:, k] -= 0.5 * trace
    if restricted is not None:  # + ½ tr(G⁻¹ Zᵀ ∂W Z), the same for every point
        grad += restricted.trace_terms(d_a, d_b)[None, :]

    if information:
        info = _average_information(state, r, u, s, d_a, d_b, d_mu, restricted)
        if xs.ndim == 1:
            return LogDensityInformation(float(values[0]), grad[0], info[0])
        return LogDensityInformation(values, grad, info)
    if xs.ndim == 1:
        return LogDensityGradient(float(values[0]), grad[0])
    return LogDensityGradient(values, grad)


def _average_information(
    state: Any,
    r: np.ndarray,
    u: np.ndarray | None,
    s: np.ndarray | None,
    d_a: list[_Derivative],
    d_b: list[_Derivative],
    d_mu: list[np.ndarray | None],
    restricted: _Restricted | None = None,
) -> np.ndarray:
    """The average information of each point, ``(k, m, m)``.

    ``AIₖₗ = ½ vₖᵀ W⁻¹ vₗ + ∂ₖμᵀ W⁻¹ ∂ₗμ`` with ``vₖ = ∂ₖW r = −A⁻¹ ∂ₖA u − X B⁻¹ ∂ₖB s``
    (``u = A⁻¹ r``, ``s = B⁻¹ Xᵀ r`` from the gradient): one solve with ``A``, one with
    ``B`` and one with ``W`` on ``m`` columns per point (plus the mean's), all with the
    cached factors.
    """
    parts = state.parts
    n, k = r.shape
    m = len(d_a)
    v = np.zeros((n, m, k))  # v[:, a, j] = ∂ₐW rⱼ
    touched = [a for a, d in enumerate(d_a) if d.kind != "zero"]
    if u is not None and touched:
        rhs = np.stack([d_a[a].apply(u) for a in touched], axis=1)  # (n, t, k)
        solved = np.asarray(parts.A.factor.solve(rhs.reshape(n, -1)))
        v[:, touched, :] -= solved.reshape(n, len(touched), k)
    touched = [a for a, d in enumerate(d_b) if d.kind != "zero"]
    if s is not None and touched:
        p = s.shape[0]
        rhs = np.stack([d_b[a].apply(s) for a in touched], axis=1)  # (p, t, k)
        solved = np.asarray(parts.B.factor.solve(rhs.reshape(p, -1)))
        v[:, touched, :] -= np.asarray(parts.U.matmul(solved)).reshape(n, len(touched), k)
    mean_columns = [(a, dm) for a, dm in enumerate(d_mu) if dm is not None]
    means = np.array([a for a, _ in mean_columns], dtype=np.intp)
    columns = [v.reshape(n, m * k)]
    if mean_columns:
        columns.append(np.column_stack([dm for _, dm in mean_columns]))
    stacked = np.hstack(columns)
    solved = np.asarray(state.solve(stacked))
    if restricted is not None:  # P = W⁻¹ − Z G⁻¹ Zᵀ in place of W⁻¹
        solved = solved - restricted.project(stacked)
    w = solved[:, : m * k].reshape(n, m, k)
    info = 0.5 * np.einsum("iaj,ibj->jab", v, w)
    if mean_columns:
        g = stacked[:, m * k :].T @ solved[:, m * k :]
        info[np.ix_(np.arange(k), means, means)] += g
    return 0.5 * (info + info.transpose(0, 2, 1))


class _Restricted:
    """The restricted likelihood's pieces: ``F``'s coefficients integrated out (flat prior).

    ``Z = W⁻¹ F``, ``G = Fᵀ W⁻¹ F`` (``c×c``, Cholesky ``L``), the GLS residuals
    ``dev − F β̂`` (``β̂ = G⁻¹ Zᵀ dev``) and ``r = P dev``, ``P = W⁻¹ − Z G⁻¹ Zᵀ``.
    """

    def __init__(self, state: Any, F: np.ndarray, dev: np.ndarray, r: np.ndarray) -> None:
        self.state = state
        self.Z = np.asarray(state.solve(F)).reshape(F.shape)
        gram = F.T @ self.Z
        gram = 0.5 * (gram + gram.T)
        # G is c×c (c small): its condition number is cheap; numerically singular when
        # c·eps·κ(G) reaches 1
        if not gram.shape[0] * np.finfo(np.float64).eps * np.linalg.cond(gram) < 1.0:
            raise ValueError("`fixed` must have linearly independent columns: Fᵀ W⁻¹ F is singular")
        self.L = np.linalg.cholesky(gram)
        self.logdet = 2.0 * float(np.sum(np.log(np.diag(self.L))))
        beta = self._solve_gram(self.Z.T @ dev)
        self.dev = dev - F @ beta
        self.r = r - self.Z @ beta

    def _solve_gram(self, rhs: np.ndarray) -> np.ndarray:
        return np.linalg.solve(self.L.T, np.linalg.solve(self.L, rhs))

    def project(self, rhs: np.ndarray) -> np.ndarray:
        """``Z G⁻¹ Zᵀ rhs``: what ``P`` takes off ``W⁻¹ rhs``."""
        return self.Z @ self._solve_gram(self.Z.T @ rhs)

    def trace_terms(self, d_a: list[_Derivative], d_b: list[_Derivative]) -> np.ndarray:
        """``½ tr(G⁻¹ Zᵀ ∂ₖW Z)`` for each parameter, the derivative of ``−½ log det G``.

        ``Zᵀ ∂W Z = −(A⁻¹Z)ᵀ ∂A (A⁻¹Z) − (B⁻¹XᵀZ)ᵀ ∂B (B⁻¹XᵀZ)``; with ``Z̃ = Z L⁻ᵀ`` the
        trace is a sum of quadratic forms, one per column.
        """
        parts = self.state.parts
        white = np.linalg.solve(self.L, self.Z.T).T  # Z L⁻ᵀ, (n, c)
        out = np.zeros(len(d_a))
        if any(d.kind != "zero" for d in d_a):
            ua = np.asarray(parts.A.factor.solve(white)).reshape(white.shape)
            out -= 0.5 * np.array([d.quadratic(ua).sum() for d in d_a])
        if self.state.p and any(d.kind != "zero" for d in d_b):
            sb = np.asarray(parts.B.factor.solve(parts.V.matmul(white)))
            sb = sb.reshape(self.state.p, -1)
            out -= 0.5 * np.array([d.quadratic(sb).sum() for d in d_b])
        return out


def _fixed_design(fixed, n: int) -> np.ndarray | None:
    """``fixed`` as an ``(n, c)`` float array (a vector is one column); None stays None."""
    if fixed is None:
        return None
    F = np.asarray(fixed.toarray() if sparse.issparse(fixed) else fixed)
    require_real(F.dtype, "fixed")
    F = F.astype(np.float64)
    if F.ndim == 1:
        F = F[:, None]
    if F.ndim != 2 or F.shape[0] != n or F.shape[1] == 0:
        raise ValueError(f"`fixed` must have shape ({n}, c) with c ≥ 1, got shape {F.shape}")
    if F.shape[1] >= n:
        raise ValueError(f"`fixed` must have fewer columns than rows ({n}), got {F.shape[1]}")
    if not np.all(np.isfinite(F)):
        raise ValueError("`fixed` contains NaN or infinite values")
    return F


def _mean_derivatives(dmean, m: int, n: int) -> list[np.ndarray | None]:
    if dmean is None:
        return [None] * m
    if not isinstance(dmean, (list, tuple)):
        raise TypeError(
            "`dmean` must be a list with one derivative per parameter (None for zero), "
            f"got {type(dmean).__name__}"
        )
    out: list[np.ndarray | None] = []
    for k, v in enumerate(dmean):
        out.append(None if v is None else mean_vector(v, n, f"dmean[{k}]"))
    return out
