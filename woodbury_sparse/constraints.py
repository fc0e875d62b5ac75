r"""Gaussians conditioned on linear constraints ``C x = e``, and sum-to-zero constraints.

For ``x ~ N(m, Σ)`` and ``k ≪ n`` constraints ``C x = e`` (``C`` of shape ``k×n``, rows
linearly independent), ``x | C x = e`` is Gaussian on the affine subspace ``{C x = e}``:

    mean  m − Σ Cᵀ (C Σ Cᵀ)⁻¹ (C m − e)
    cov   Σ − Σ Cᵀ (C Σ Cᵀ)⁻¹ C Σ

Only ``V = Σ Cᵀ`` is needed (``k`` solves with the precision's factor): the corrected
marginal variances are ``diag(Σ) − rowsums((V L⁻ᵀ)²)`` with ``C Σ Cᵀ = L Lᵀ``, and a draw is
an unconstrained draw ``x`` corrected by kriging, ``x − V (C Σ Cᵀ)⁻¹ (C x − e)`` (Rue and
Held 2005, §2.3.3; R-INLA's ``constr=``). This is how intrinsic fields are used: a
random walk or an ICAR field observed with noise has a proper posterior, identified by a
sum-to-zero constraint on each connected component of its graph (:func:`sum_to_zero`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import linalg, sparse
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import LinearOperator

from ._gaussian import LOG_2PI, Gaussian, as_indices
from ._validation import as_block, require_real

if TYPE_CHECKING:  # pragma: no cover
    from numpy.typing import ArrayLike

    from .posterior import PrecisionNormal

__all__ = ["ConstrainedNormal", "sum_to_zero"]

_EPS = float(np.finfo(np.float64).eps)

#: A point is on the constraint set when ``|C x − e| ≤ ON_SET_RTOL · (|C| |x| + |e|)``
#: entry by entry: half the digits (``√eps``), far above the round-off of draws and
#: posterior means, far below any real violation.
ON_SET_RTOL: float = float(np.sqrt(_EPS))


def constraint_matrix(C, n: int) -> np.ndarray | sparse.csr_array:
    """``C`` as a dense ``(k, n)`` float64 array or a CSR array; a 1-D ``C`` is one row.

    The validation of constraints shared with :meth:`NoisePosterior.condition`.
    """
    if sparse.issparse(C):
        if C.ndim != 2:
            raise ValueError(f"`C` must be 2-D, got a {C.ndim}-D sparse array")
        require_real(C.dtype, "C")
        mat = sparse.csr_array(C, dtype=np.float64, copy=True)
        values = mat.data
    else:
        arr = np.asarray(C)
        require_real(arr.dtype, "C")
        mat = np.array(np.atleast_2d(arr), dtype=np.float64)
        if arr.ndim not in (1, 2):
            raise ValueError(f"`C` must be 1-D (one constraint) or 2-D, got shape {arr.shape}")
        values = mat
    if mat.shape[1] != n:
        raise ValueError(f"`C` must have {n} columns (one per variable), got shape {mat.shape}")
    if mat.shape[0] == 0 or mat.shape[0] > n:
        raise ValueError(
            f"`C` must have between 1 and {n} rows (one per constraint), got {mat.shape[0]}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("`C` contains NaN or infinite values")
    return mat


def constraint_rhs(e, k: int, batch: int | None) -> np.ndarray:
    """``e`` as a read-only ``(k,)`` or ``(k, batch)`` float64 array (a scalar everywhere).

    The validation of right-hand sides shared with :meth:`NoisePosterior.condition`.
    """
    arr = np.asarray(e)
    require_real(arr.dtype, "e")
    arr = np.array(arr, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(k, float(arr))
    allowed = [(k,)] if batch is None else [(k,), (k, batch)]
    if arr.shape not in allowed:
        wanted = " or ".join(str(a) for a in allowed)
        raise ValueError(f"`e` must be a scalar or have shape {wanted}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("`e` contains NaN or infinite values")
    if batch is not None and arr.ndim == 1:
        arr = np.repeat(arr[:, None], batch, axis=1)
    arr.flags.writeable = False
    return arr


class ConstrainedNormal(Gaussian):
    """A Gaussian conditioned on ``C x = e``: ``x | C x = e`` for ``x ~ N(m, Σ)``.

    Usually made by :meth:`PrecisionNormal.condition`. Nothing forms ``Σ``: the
    constraints cost ``k`` solves with the base distribution's factorisation and
    ``O(n k)`` memory.

    Parameters
    ----------
    base : PrecisionNormal or ConstrainedNormal
        The unconstrained distribution (a batch of ``b`` means is allowed); a
        ``ConstrainedNormal`` adds its constraints to ``C`` (its base becomes the base).
    C : array_like or scipy.sparse matrix/array, shape (k, n) or (n,)
        The constraints, ``1 ≤ k ≤ n`` linearly independent rows (a 1-D ``C`` is one).
    e : scalar, (k,) or (k, b) array_like, optional
        Right-hand sides; default zero. ``(k, b)``: one column per member of a batch.

    Attributes
    ----------
    mean : (n,) or (n, b) ndarray
        ``m − Σ Cᵀ (C Σ Cᵀ)⁻¹ (C m − e)``: satisfies the constraints to round-off.
    base : PrecisionNormal
    constraints : ndarray or scipy.sparse.csr_array
        ``C`` (a copy).
    rhs : ndarray
        ``e``, shape ``(k,)`` or ``(k, b)``.
    cov : scipy.sparse.linalg.LinearOperator
        ``Σ − Σ Cᵀ (C Σ Cᵀ)⁻¹ C Σ``.
    white_dim : int
        The base's: a draw corrects one unconstrained draw.

    Raises
    ------
    ValueError
        When ``C`` has the wrong shape or NaN/inf values, ``e`` the wrong shape, or the
        rows of ``C`` are linearly dependent (``C Σ Cᵀ`` singular to working precision).

    Notes
    -----
    With ``V = Σ Cᵀ`` (``n×k``) and ``C Σ Cᵀ = L Lᵀ``: ``var = diag(Σ) − rowsums(U²)``,
    ``U = V L⁻ᵀ`` (clipped at 0 against round-off); a draw is the kriging correction of
    an unconstrained draw ``x``, ``x − V (C Σ Cᵀ)⁻¹ (C x − e)``, so ``C x = e`` holds to
    round-off. The log density is taken with respect to Lebesgue measure on the
    ``(n − k)``-dimensional set ``{C x = e}`` (Rue and Held 2005, eq. 2.30):

        log π(x | C x = e) = log π(x) − log π_{Cx}(e) − ½ log det(C Cᵀ),

    ``π_{Cx} = N(C m, C Σ Cᵀ)``; points off the set (beyond ``ON_SET_RTOL``) get ``−inf``.

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> from woodbury_sparse.testing import ar1_precision
    >>> prior = ws.PrecisionNormal(None, ar1_precision(100, 0.9))
    >>> field = ws.ConstrainedNormal(prior, np.ones(100), 0.0)  # sum to zero
    >>> draws = field.rvs(size=5, random_state=0)
    >>> bool(np.all(np.abs(draws.sum(axis=1)) < 1e-10))
    True
    >>> bool(np.all(field.var() < prior.var()))
    True
    """

    base: PrecisionNormal
    constraints: np.ndarray | sparse.csr_array
    rhs: np.ndarray

    def __init__(self, base: PrecisionNormal | ConstrainedNormal, C, e: ArrayLike = 0.0) -> None:
        given: object = base  # checked at run time whatever the annotation says
        if not isinstance(given, Gaussian) or not hasattr(given, "logpdf"):
            raise TypeError(
                f"`base` must be a PrecisionNormal or ConstrainedNormal, got {type(base).__name__}"
            )
        n = base.dim
        mat = constraint_matrix(C, n)
        rhs = constraint_rhs(e, mat.shape[0], base.batch)
        if isinstance(base, ConstrainedNormal):  # constraints accumulate on the first base
            stack = (
                sparse.vstack
                if sparse.issparse(mat) or sparse.issparse(base.constraints)
                else np.vstack
            )
            mat = constraint_matrix(stack([base.constraints, mat]), n)
            rhs = np.concatenate([base.rhs, rhs])
            base = base.base
        k = mat.shape[0]
        dense_ct = mat.T.toarray() if sparse.issparse(mat) else np.ascontiguousarray(mat.T)
        v = np.asarray(base.cov @ dense_ct).reshape(n, k)  # Σ Cᵀ
        s = np.asarray(mat @ v).reshape(k, k)
        s = 0.5 * (s + s.T)
        lower = self._cholesky(s)
        self.base = base
        self.constraints = mat
        self.rhs = rhs
        self._v = v
        self._lower = lower
        self._u = linalg.solve_triangular(lower, v.T, lower=True).T  # V L⁻ᵀ, (n, k)
        self._gain = linalg.cho_solve((lower, True), v.T).T  # V (C Σ Cᵀ)⁻¹, (n, k)
        base_mean = np.asarray(base.mean)
        mean = base_mean - self._gain @ (np.asarray(mat @ base_mean).reshape(rhs.shape) - rhs)
        mean.flags.writeable = False
        self._mean = mean
        self.white_dim = base.white_dim

    @staticmethod
    def _cholesky(s: np.ndarray) -> np.ndarray:
        """The Cholesky factor of ``C Σ Cᵀ``; its rows must be independent (rcond > k·eps)."""
        k = s.shape[0]
        try:
            lower = linalg.cholesky(s, lower=True)
        except linalg.LinAlgError:
            lower = None
        if lower is not None:
            pocon = linalg.get_lapack_funcs("pocon", (lower,))
            rcond, _ = pocon(lower, float(np.abs(s).sum(axis=0).max()), uplo="L")
        if lower is None or not rcond > k * _EPS:
            raise ValueError(
                "the rows of `C` must be linearly independent: C Σ Cᵀ is singular to "
                "working precision (drop the redundant constraints)"
            )
        return lower

    @property
    def cov(self) -> LinearOperator:
        """The conditional covariance ``Σ − Σ Cᵀ (C Σ Cᵀ)⁻¹ C Σ`` as a symmetric operator."""
        base_cov, u = self.base.cov, self._u

        def matmul(b):
            b = np.asarray(b, dtype=np.float64)
            return np.asarray(base_cov @ b) - u @ (u.T @ b)

        n = self.dim
        return LinearOperator(
            (n, n), matvec=matmul, rmatvec=matmul, matmat=matmul, rmatmat=matmul, dtype=float
        )

    def var(self) -> np.ndarray:
        """Marginal variances ``diag(Σ) − diag(Σ Cᵀ (C Σ Cᵀ)⁻¹ C Σ)``, shape ``(n,)``."""
        return np.maximum(self.base.var() - np.einsum("ij,ij->i", self._u, self._u), 0.0)

    def cov_entries(self, i, j) -> np.ndarray | float:
        """Entries of the conditional covariance (``i``, ``j`` broadcast together).

        The base's entries (see :meth:`PrecisionNormal.cov_entries`) minus the low-rank
        correction; a float for scalars.
        """
        ii = as_indices(i, self.dim, "i")
        jj = as_indices(j, self.dim, "j")
        ii, jj = np.broadcast_arrays(ii, jj)
        base = np.asarray(self.base.cov_entries(ii, jj), dtype=np.float64)
        out = base - np.einsum("...j,...j->...", self._u[ii], self._u[jj])
        return float(out) if out.ndim == 0 else out

    def _correct(self, x: np.ndarray, target: np.ndarray | float) -> np.ndarray:
        """``x − V (C Σ Cᵀ)⁻¹ (C x − target)`` for columns ``x``."""
        return x - self._gain @ (np.asarray(self.constraints @ x) - target)

    def _colour_columns(self, z: np.ndarray) -> np.ndarray:
        free = np.atleast_2d(self.base.colorize(np.ascontiguousarray(z.T)))  # rows
        return self._correct(np.ascontiguousarray(free.T), 0.0)

    def logpdf(self, x) -> float | np.ndarray:
        """Log density on the constraint set (``−inf`` off it); see the Notes.

        Parameters
        ----------
        x : array_like
            As :meth:`PrecisionNormal.logpdf`.
        """
        dev, single = self._deviations(x)
        points = dev + (self._mean if self.batch is not None else self._mean[:, None])
        target = self.rhs if self.batch is not None else self.rhs[:, None]
        mat = self.constraints
        residual = np.abs(np.asarray(mat @ points) - target)
        scale = np.asarray(abs(mat) @ np.abs(points)) + np.abs(target)
        on_set = np.all(residual <= ON_SET_RTOL * scale, axis=0)
        rows = points.T if self.batch is None else points  # the base's convention
        log_base = np.atleast_1d(self.base.logpdf(rows))
        # log N(e; C m, C Σ Cᵀ) with the base mean: (C m − e)ᵀ (C Σ Cᵀ)⁻¹ (C m − e).
        base_mean = np.asarray(self.base.mean)
        gap = np.asarray(mat @ base_mean).reshape(self.rhs.shape) - self.rhs
        gap = gap if gap.ndim == 2 else gap[:, None]
        white = linalg.solve_triangular(self._lower, gap, lower=True)
        k = mat.shape[0]
        log_det_s = 2.0 * np.sum(np.log(np.diag(self._lower)))
        log_e = -0.5 * (k * LOG_2PI + log_det_s + np.einsum("ij,ij->j", white, white))
        cct = np.asarray((mat @ mat.T).toarray() if sparse.issparse(mat) else mat @ mat.T)
        log_det_cct = np.linalg.slogdet(cct)[1]
        out = np.where(on_set, log_base - log_e - 0.5 * log_det_cct, -np.inf)
        return float(out[0]) if single else out

    def condition(self, C, e: ArrayLike = 0.0) -> ConstrainedNormal:
        """Condition further on ``C x = e``: the constraints of both, on the same base."""
        return ConstrainedNormal(self, C, e)

    def __repr__(self) -> str:
        batch = "" if self.batch is None else f", batch={self.batch}"
        return (
            f"ConstrainedNormal(dim={self.dim}{batch}, constraints={self.constraints.shape[0]}, "
            f"base={self.base!r})"
        )


def sum_to_zero(adjacency) -> sparse.csr_array:
    """Sum-to-zero constraints, one per connected component of a graph.

    The constraint matrix ``C`` of an intrinsic CAR (ICAR) field or a first-order random
    walk: row ``c`` has ones on the nodes of component ``c``, so ``C x = 0`` says the
    field sums to zero on each connected component (an island — a node without
    neighbours — is a component of its own, and is held at zero).

    Parameters
    ----------
    adjacency : array_like or scipy.sparse matrix/array, shape (n, n)
        The graph: ``adjacency[i, j] ≠ 0`` for neighbours ``i``, ``j`` (the pattern is
        what counts, read as undirected; the diagonal is ignored). An ICAR precision
        ``D − A`` itself will do.

    Returns
    -------
    scipy.sparse.csr_array
        ``C``, shape ``(components, n)``, ones and zeros; components ordered by their
        lowest-numbered node.

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> adjacency = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
    >>> ws.sum_to_zero(adjacency).toarray()
    array([[1., 1., 0., 0.],
           [0., 0., 1., 1.]])
    """
    block = as_block(adjacency, "adjacency", square=True)
    graph = block.tosparse()
    count, labels = connected_components(graph, directed=False)
    n = graph.shape[0]
    # Relabel by first appearance: components ordered by their lowest node.
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(np.argsort(first))
    rows = order[labels]
    return sparse.csr_array((np.ones(n), (rows, np.arange(n))), shape=(count, n))
