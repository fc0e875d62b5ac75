r"""Latent-field inference: the posterior of the latent components of a Woodbury model.

A symmetric Woodbury covariance ``W = A⁻¹ + X B⁻¹ Xᵀ`` is the marginal covariance of

    y = μ + e + X z,    e ~ N(0, A⁻¹),  z ~ N(0, B⁻¹)  independent.

Given ``y``, the latent ``z`` and the noise ``e`` are Gaussian again:

    z | y ~ N(O⁻¹ Xᵀ A (y − μ), O⁻¹),   O = B + Xᵀ A X   (W's capacitance)
    e | y = y − μ − X z

:func:`latent_posterior` (or ``WoodburyNormal(μ, W).posterior(y)``) returns both, reusing
the factorisation of ``O`` the operator already holds: the posterior mean is one solve
with it, the marginal variances its selected inverse (Takahashi recursions on the
Cholesky factor; ``O⁻¹`` itself when ``O`` is small and dense), draws go through its
Cholesky factor. Neither ``W`` nor, for the posterior, ``B`` is ever factorised, so an
intrinsic prior (``B`` singular: a random walk, an ICAR field) is fine as long as the
posterior precision ``O`` is positive definite.

=========================  ==================================================================
object                     what it is
=========================  ==================================================================
:class:`PrecisionNormal`   ``N(m, Q⁻¹)`` given by its precision ``Q``: ``z | y``, or a prior
:class:`NoisePosterior`    ``e | y``, the affine image ``y − μ − X z`` of ``z | y``
:class:`LatentPosterior`   both, for one ``y`` or several (columns of ``y``)
``ConstrainedNormal``      any of them conditioned on ``C x = e`` (``.condition(C, e)``)
=========================  ==================================================================

In R this is R-INLA's ``inla.qinv`` (marginal variances from a precision), ``inla.qsample``
(draws, ``constr=`` for constraints) and the posterior of a latent Gaussian model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import LinearOperator

from ._arguments import check_covariance, mean_vector
from ._blocks import Block
from ._cache import cached_property
from ._exceptions import NotPositiveDefiniteError, SingularMatrixError
from ._factor import SelectedInverse
from ._gaussian import LOG_2PI, Gaussian, as_indices, as_mean
from ._validation import as_block, as_vectors, require_symmetric
from .constraints import ConstrainedNormal, constraint_matrix, constraint_rhs

if TYPE_CHECKING:  # pragma: no cover
    from numpy.typing import ArrayLike

    from ._operators import SymmetricWoodburyMatrix

__all__ = ["LatentPosterior", "NoisePosterior", "PrecisionNormal", "latent_posterior"]

#: Columns solved at a time where entries of ``Q⁻¹`` off the selected pattern are needed:
#: bounds the dense workspace at ``CHUNK·d`` floats.
CHUNK: int = 256

#: A sparse ``X`` whose rows pair up at most this many entries ``(j, k)`` in total reads
#: ``diag(X Σ Xᵀ)`` from the selected inverse; more, and it is one solve per row instead.
MAX_PAIRS: int = 10_000_000

_INTRINSIC_HINT = (
    "; an intrinsic field (a random walk, an ICAR) has a singular precision and no "
    "distribution of its own: use its posterior given data (`latent_posterior`), whose "
    "precision is proper, or a proper prior (add a small multiple of the identity, as "
    "R-INLA does) and condition it with `.condition(C, e)`"
)


_POSTERIOR_HINT = (
    "; as the posterior precision of z it must be positive definite: A and B must be "
    "precision matrices (positive semidefinite), and the data must identify every direction "
    "an intrinsic prior leaves free (a random walk or ICAR component observed nowhere is not)"
)


def _positive_definite_factor(block: Block, name: str):
    """``block``'s factorisation, which must prove it positive definite."""
    hint = _POSTERIOR_HINT if name == "O" else _INTRINSIC_HINT
    try:
        factor = block.factor
    except SingularMatrixError as exc:
        raise SingularMatrixError(name, f"{exc.args[0]}{hint}") from None
    if not factor.positive_definite:
        raise NotPositiveDefiniteError(
            name,
            f"`{name}` is not positive definite (its factorisation is {factor.method}){hint}",
        )
    return factor


class PrecisionNormal(Gaussian):
    """The Gaussian ``N(mean, Q⁻¹)`` given by its precision ``Q`` (sparse, dense, diagonal).

    Everything goes through one Cholesky factorisation of ``Q`` (CHOLMOD for sparse ``Q``,
    with its fill-reducing ordering): marginal variances and neighbour covariances from
    its selected inverse, draws through its triangular factor, the log density from its
    determinant. ``Q⁻¹`` is never formed.

    Parameters
    ----------
    mean : None, scalar, (d,) or (d, k) array_like
        The mean; ``None`` is zero. A ``(d, k)`` mean is a batch of ``k`` distributions
        sharing the precision (one per column), as :func:`latent_posterior` returns for
        several observation vectors.
    precision : array_like or scipy.sparse matrix/array, shape (d, d)
        Symmetric positive definite. Never modified.

    Attributes
    ----------
    mean : (d,) or (d, k) ndarray
        Read-only.
    precision : scipy.sparse.csc_array or ndarray
        ``Q`` (a copy: sparse for sparse or diagonal input, dense for dense input).
    dim : int
    batch : int or None
        ``k`` for a batch, else None.
    cov : scipy.sparse.linalg.LinearOperator
        ``Σ = Q⁻¹`` as an operator: ``dist.cov @ b`` is one solve with the factor.
    white_dim : int
        ``d``: standard normals per draw.

    Raises
    ------
    SingularMatrixError, NotPositiveDefiniteError
        When ``precision`` is singular or not positive definite (``.block ==
        "precision"``); an intrinsic field's precision is singular.
    ValueError, TypeError
        For a precision that is not square, symmetric, real and finite, or a mean of the
        wrong shape.

    See Also
    --------
    latent_posterior : the posterior ``z | y`` of a Woodbury model is one of these.
    selected_inverse : the entries of ``Q⁻¹`` behind :meth:`var` and :meth:`cov_entries`.

    Notes
    -----
    With ``P Q Pᵀ = R Rᵀ`` (``P`` the fill-reducing permutation): :meth:`var` reads the
    diagonal of ``Q⁻¹`` from the selected inverse (Takahashi recursions, about the cost
    of the factorisation, exact up to round-off); a draw is ``mean + Pᵀ R⁻ᵀ z`` with white
    ``z``; the log density is ``−½ (d log 2π − log det Q + (x − m)ᵀ Q (x − m))``.

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> from woodbury_sparse.testing import ar1_precision
    >>> dist = ws.PrecisionNormal(np.zeros(500), ar1_precision(500, 0.9))
    >>> bool(np.allclose(dist.var(), 1 / (1 - 0.9**2)))  # stationary AR(1)
    True
    >>> round(float(dist.cov_entries(10, 11) / dist.var()[10]), 12)  # lag-one correlation
    0.9
    >>> dist.rvs(size=3, random_state=0).shape
    (3, 500)
    >>> constrained = dist.condition(np.ones((1, 500)), 0.0)  # sum to zero
    >>> abs(float(constrained.rvs(random_state=1).sum())) < 1e-9
    True
    """

    def __init__(self, mean: ArrayLike | None, precision) -> None:
        if isinstance(precision, Block):  # internal: a checked, symmetric block (W's O)
            block = precision
        else:
            block = as_block(precision, "precision", square=True)
            require_symmetric([block], "a precision matrix is symmetric")
            block = block.symmetrized()
        self._mean = as_mean(mean, block.shape[0])
        self._block = block
        self._factor = _positive_definite_factor(block, block.name)
        self.white_dim = block.shape[0]

    @property
    def precision(self):
        """The precision ``Q``: a new CSC array (sparse or diagonal input) or ndarray."""
        block = self._block
        return block.toarray() if block.kind == "dense" else block.tosparse()

    @property
    def cov(self) -> LinearOperator:
        """The covariance ``Q⁻¹`` as a symmetric operator (products are solves)."""
        return _symmetric_operator(self.dim, self._cov_matmul)

    def _cov_matmul(self, b: np.ndarray) -> np.ndarray:
        return self._factor.solve(np.asarray(b, dtype=np.float64))

    @cached_property
    def _inverse(self) -> SelectedInverse:
        """``Q⁻¹`` on the pattern of ``L + Lᵀ``, read in the factor's ordering (made once)."""
        return SelectedInverse(self._factor, self._block.name)

    def var(self) -> np.ndarray:
        """Marginal variances ``diag(Q⁻¹)``, shape ``(d,)``: exact, from the selected inverse.

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> ws.PrecisionNormal(0.0, np.diag([1.0, 4.0])).var()
        array([1.  , 0.25])
        """
        return np.array(self._variances)

    @cached_property
    def _variances(self) -> np.ndarray:
        """``diag(Q⁻¹)``, read off the Takahashi recursion (no symmetric assembly)."""
        out = np.array(self._inverse.diagonal())
        out.flags.writeable = False
        return out

    def cov_entries(self, i, j) -> np.ndarray | float:
        """Entries ``(Q⁻¹)[i, j]`` of the covariance (``i``, ``j`` broadcast together).

        Entries on the pattern of ``Q``'s Cholesky factor (every diagonal entry, every
        pair of neighbours of ``Q``) come from the selected inverse; the others from one
        solve per distinct column ``j`` among them.

        Parameters
        ----------
        i, j : int or array_like of int
            Row and column indices (negative ones count from the end).

        Returns
        -------
        float or ndarray
            Of the broadcast shape of ``i`` and ``j`` (a float for scalars).

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> Q = np.array([[2.0, -1.0], [-1.0, 2.0]])
        >>> ws.PrecisionNormal(None, Q).cov_entries([0, 0], [0, 1])
        array([0.66666667, 0.33333333])
        """
        ii = as_indices(i, self.dim, "i")
        jj = as_indices(j, self.dim, "j")
        ii, jj = np.broadcast_arrays(ii, jj)
        out = self._entries(ii.ravel(), jj.ravel()).reshape(ii.shape)
        return float(out) if out.ndim == 0 else out

    def _entries(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """``(Q⁻¹)[i[t], j[t]]`` for 1-D index arrays, as a new 1-D array."""
        if i.size == 0:
            return np.empty(0)
        # Distinct pairs only (the lookup reads each position once), spread back after.
        pairs, back = np.unique(i * self.dim + j, return_inverse=True)
        i, j = np.divmod(pairs, self.dim)
        values, found = self._inverse.entries(i, j)
        out = np.array(values, dtype=np.float64)
        missing = np.flatnonzero(~found)
        if missing.size:
            columns, where = np.unique(j[missing], return_inverse=True)
            for start in range(0, columns.size, CHUNK):
                chunk = columns[start : start + CHUNK]
                unit = np.zeros((self.dim, chunk.size))
                unit[chunk, np.arange(chunk.size)] = 1.0
                solved = self._factor.solve(unit)
                take = (where >= start) & (where < start + chunk.size)
                rows = i[missing[take]]
                out[missing[take]] = solved[rows, where[take] - start]
        return out[back.ravel()]

    def _colour_columns(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(self._factor.solve_sqrt_t(np.ascontiguousarray(z)))

    def logpdf(self, x) -> float | np.ndarray:
        """Log density ``−½ (d log 2π − log det Q + (x − m)ᵀ Q (x − m))``.

        Parameters
        ----------
        x : array_like
            ``(d,)`` for one point, ``(m, d)`` for ``m`` points (rows); for a batch of
            ``k``, ``(d, k)``: column ``j`` under member ``j``.

        Returns
        -------
        float or ndarray
            A float for one point, else ``(m,)`` (``(k,)`` for a batch).

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> round(ws.PrecisionNormal(0.0, np.eye(2)).logpdf([0.0, 0.0]), 6)
        -1.837877
        """
        dev, single = self._deviations(x)
        quad = np.einsum("ij,ij->j", dev, np.asarray(self._block.matmul(dev)))
        out = -0.5 * (self.dim * LOG_2PI - self._factor.slogdet[1] + quad)
        return float(out[0]) if single else out

    def condition(self, C, e: ArrayLike = 0.0) -> ConstrainedNormal:
        """The distribution conditioned on the linear constraints ``C x = e``.

        See :class:`ConstrainedNormal`; ``e`` defaults to zero (sum-to-zero constraints).

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> dist = ws.PrecisionNormal(np.ones(3), np.eye(3)).condition(np.ones((1, 3)))
        >>> dist.mean
        array([0., 0., 0.])
        >>> dist.var().round(6)
        array([0.666667, 0.666667, 0.666667])
        """
        return ConstrainedNormal(self, C, e)

    def __repr__(self) -> str:
        batch = "" if self.batch is None else f", batch={self.batch}"
        return f"PrecisionNormal(dim={self.dim}{batch}, precision={self._block.kind})"


class NoisePosterior(Gaussian):
    """The posterior of the noise ``e | y = y − μ − X z`` in ``y = μ + e + X z``.

    An affine image of the latent posterior ``z | y ~ N(m, O⁻¹)`` (:class:`PrecisionNormal`):
    mean ``y − μ − X m``, covariance ``X O⁻¹ Xᵀ`` — of rank at most ``p``, so without a
    density on ``ℝⁿ`` when ``p < n`` (hence no ``logpdf``). Built by
    :func:`latent_posterior`.

    Attributes
    ----------
    mean : (n,) or (n, k) ndarray
        ``y − μ − X E[z | y]``, read-only.
    latent : PrecisionNormal or ConstrainedNormal
        ``z | y`` (conditioned on ``(C X) z = C (y − μ) − c`` after :meth:`condition`).
    cov : scipy.sparse.linalg.LinearOperator
        ``X O⁻¹ Xᵀ``.
    white_dim : int
        ``p``: a draw is ``mean − X G z`` for ``p`` white ``z`` (``G`` the latent colouring).

    Notes
    -----
    :meth:`var` is ``diag(X O⁻¹ Xᵀ)``: the latent variances for ``X = I``; for a sparse
    ``X``, the sums ``Σ X[i, j] X[i, k] (O⁻¹)[j, k]`` over each row's pairs of entries,
    read from the selected inverse of ``O`` (exact, and free for a selection ``X``: one
    entry per row); for a small dense ``O``, the row sums of ``(X O⁻¹) ∘ X``; otherwise
    one solve per row, ``CHUNK`` rows at a time.

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> X = np.ones((4, 1))  # y = e + z·1: a common level observed with unit noise
    >>> W = ws.WoodburyMatrix(np.eye(4), np.eye(1), X=X)
    >>> noise = ws.latent_posterior(W, [1.0, 2.0, 3.0, 4.0]).noise
    >>> noise.mean  # y − E[z | y], E[z | y] = 10 / 5
    array([-1.,  0.,  1.,  2.])
    >>> noise.var()  # X O⁻¹ Xᵀ with O = 1 + 4
    array([0.2, 0.2, 0.2, 0.2])
    >>> noise.rvs(size=2, random_state=0).shape
    (2, 4)
    """

    def __init__(
        self,
        latent: PrecisionNormal | ConstrainedNormal,
        X: Block,
        residual: np.ndarray,
        sparse_latent: bool,
    ) -> None:
        self.latent = latent
        self._X = X
        self._residual = residual  # y − μ
        self._sparse_latent = sparse_latent
        mean = residual - np.asarray(X.matmul(np.asarray(latent.mean)))
        mean.flags.writeable = False
        self._mean = mean
        self.white_dim = latent.white_dim

    @property
    def cov(self) -> LinearOperator:
        """The covariance ``X O⁻¹ Xᵀ`` as a symmetric operator."""
        X = self._X

        def matmul(b):
            return np.asarray(X.matmul(self.latent.cov @ np.asarray(X.T.matmul(b))))

        return _symmetric_operator(self.dim, matmul)

    def var(self) -> np.ndarray:
        """Marginal variances ``diag(X O⁻¹ Xᵀ)``, shape ``(n,)`` (see the Notes)."""
        return self._variances

    @cached_property
    def _variances(self) -> np.ndarray:
        X, latent = self._X, self.latent
        if X.kind == "identity":
            out = latent.var()
        elif X.kind == "diagonal":
            out = X.data**2 * latent.var()
        elif not self._sparse_latent:  # O small: O⁻¹ dense (or diagonal)
            cov = latent.cov @ np.eye(latent.dim)
            out = np.empty(self.dim)
            for start in range(0, self.dim, CHUNK):
                rows = self._x_rows(np.arange(start, min(start + CHUNK, self.dim)))
                out[start : start + CHUNK] = np.einsum("ij,ij->i", rows @ cov, rows)
        elif X.kind == "sparse" and self._pair_count() <= MAX_PAIRS:
            out = self._sparse_variances()
        else:
            out = np.empty(self.dim)
            for start in range(0, self.dim, CHUNK):
                rows = self._x_rows(np.arange(start, min(start + CHUNK, self.dim)))
                solved = latent.cov @ np.ascontiguousarray(rows.T)
                out[start : start + CHUNK] = np.einsum("ij,ji->i", rows, solved)
        out = np.array(out)
        out.flags.writeable = False
        return out

    @cached_property
    def _csr(self) -> sparse.csr_array:
        """A sparse ``X`` by rows (made once)."""
        return sparse.csr_array(self._X.data)

    def _x_rows(self, rows: np.ndarray) -> np.ndarray:
        """The rows ``rows`` of ``X`` as a dense ``(len(rows), p)`` array."""
        X = self._X
        if X.kind == "dense":
            return X.data[rows]
        if X.kind == "sparse":
            return self._csr[rows].toarray()
        out = np.zeros((rows.size, X.shape[1]))
        out[np.arange(rows.size), rows] = 1.0 if X.kind == "identity" else X.data[rows]
        return out

    def _pair_count(self) -> int:
        """``Σᵢ nnz(X[i])²``: the pairs of entries the rows of a sparse ``X`` make."""
        counts = np.diff(self._csr.indptr).astype(np.int64)
        return int(counts @ counts)

    def _sparse_variances(self) -> np.ndarray:
        """``Σ_{j,k} X[i, j] X[i, k] (O⁻¹)[j, k]`` over every row's pairs of entries."""
        rows = self._csr
        counts = np.diff(rows.indptr).astype(np.int64)
        if counts.max(initial=0) <= 1:  # a selection (or scaled one): the diagonal only
            out = np.zeros(self.dim)
            out[counts == 1] = rows.data**2 * self.latent.var()[rows.indices]
            return out
        per_entry = np.repeat(counts, counts)  # each entry pairs with its row's entries
        first = np.repeat(np.arange(rows.nnz, dtype=np.int64), per_entry)
        starts = np.repeat(rows.indptr[:-1].astype(np.int64), counts)
        group = np.repeat(np.cumsum(per_entry) - per_entry, per_entry)
        second = np.repeat(starts, per_entry) + (np.arange(first.size) - group)
        cols = rows.indices.astype(np.int64)
        values = rows.data[first] * rows.data[second]
        values *= self.latent.cov_entries(cols[first], cols[second])
        owner = np.repeat(np.arange(self.dim), counts)
        return np.bincount(owner[first], weights=values, minlength=self.dim)

    def cov_entries(self, i, j) -> np.ndarray | float:
        """Entries ``(X O⁻¹ Xᵀ)[i, j]`` (``i``, ``j`` broadcast together).

        One solve per distinct column ``j`` (``CHUNK`` at a time); a float for scalars.
        """
        ii = as_indices(i, self.dim, "i")
        jj = as_indices(j, self.dim, "j")
        ii, jj = np.broadcast_arrays(ii, jj)
        fi, fj = ii.ravel(), jj.ravel()
        out = np.empty(fi.size)
        columns, where = np.unique(fj, return_inverse=True)
        for start in range(0, columns.size, CHUNK):
            chunk = columns[start : start + CHUNK]
            rows = self._x_rows(chunk)  # X[chunk]: (c, p)
            solved = self.latent.cov @ np.ascontiguousarray(rows.T)  # O⁻¹ X[chunk]ᵀ
            take = np.flatnonzero((where >= start) & (where < start + chunk.size))
            left = self._x_rows(fi[take])
            out[take] = np.einsum("ij,ji->i", left, solved[:, where[take] - start])
        entries = out.reshape(ii.shape)
        return float(entries) if entries.ndim == 0 else entries

    def _colour_columns(self, z: np.ndarray) -> np.ndarray:
        latent = np.atleast_2d(self.latent.colorize(z.T))  # rows (m, p)
        return -np.asarray(self._X.matmul(np.ascontiguousarray(latent.T)))

    def condition(self, C, e: ArrayLike = 0.0) -> NoisePosterior:
        """The noise posterior conditioned on the linear constraints ``C e = c``.

        ``e | y`` is degenerate (its covariance ``X O⁻¹ Xᵀ`` has rank at most ``p``), but
        ``C e = c`` says ``(C X) z = C (y − μ) − c``: the latent posterior is conditioned
        on that (:class:`ConstrainedNormal`, ``k`` solves with ``O``'s factor) and mapped
        back, ``e = y − μ − X z``. The result is a :class:`NoisePosterior` again, whose
        :attr:`latent` is the constrained ``z``: its mean satisfies ``C e = c``, its
        :meth:`var` is the corrected ``diag(X Σ Xᵀ)`` (no ``n×n`` array), and its draws
        satisfy the constraints to round-off.

        Parameters
        ----------
        C : array_like or scipy.sparse matrix/array, shape (k, n) or (n,)
            The constraints on the noise (a 1-D ``C`` is one). ``C X`` must have linearly
            independent rows: a constraint on a direction in which ``e | y`` does not vary
            (``C X`` rank-deficient) is refused, whether or not ``y`` satisfies it.
        e : scalar, (k,) or (k, b) array_like, optional
            The right-hand sides ``c``; default zero. ``(k, b)``: one column per member
            of a batch (several ``y``).

        Returns
        -------
        NoisePosterior
            ``e | y, C e = c``.

        Raises
        ------
        ValueError
            When ``C`` has the wrong shape or NaN/inf values, ``e`` the wrong shape or
            NaN/inf values, or ``C X`` linearly dependent rows.

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> X = np.ones((4, 1))  # y = e + z·1: a common level observed with unit noise
        >>> W = ws.WoodburyMatrix(np.eye(4), np.eye(1), X=X)
        >>> noise = ws.latent_posterior(W, [1.0, 2.0, 3.0, 4.0]).noise
        >>> held = noise.condition(np.ones(4), 0.0)  # the noise sums to zero
        >>> held.mean  # y − ȳ: the level takes the mean of y
        array([-1.5, -0.5,  0.5,  1.5])
        >>> held.var()  # nothing left to vary: one latent direction, one constraint
        array([0., 0., 0., 0.])
        >>> float(abs(held.rvs(size=3, random_state=0).sum(axis=1)).max()) < 1e-12
        True
        """
        mat = constraint_matrix(C, self.dim)
        k = mat.shape[0]
        rhs = constraint_rhs(e, k, self.batch)
        dependent = (
            "`C X` must have linearly independent rows: C X O⁻¹ Xᵀ Cᵀ, the covariance of "
            "C e given y, is singular to working precision (a constraint on a direction in "
            "which e | y does not vary, or more constraints than latent dimensions, "
            f"{self.latent.dim})"
        )
        if k > self.latent.dim:
            raise ValueError(dependent)
        dense_ct = mat.T.toarray() if sparse.issparse(mat) else np.ascontiguousarray(mat.T)
        cx = np.asarray(self._X.T.matmul(dense_ct)).reshape(self.latent.dim, k).T  # C X
        residual = np.asarray(self._residual)
        target = np.asarray(mat @ residual).reshape(rhs.shape) - rhs  # C (y − μ) − c
        try:
            latent = self.latent.condition(cx, target)
        except ValueError as exc:
            if "linearly independent" not in str(exc):  # pragma: no cover - checked above
                raise
            raise ValueError(dependent) from None
        return NoisePosterior(latent, self._X, residual, self._sparse_latent)

    def __repr__(self) -> str:
        batch = "" if self.batch is None else f", batch={self.batch}"
        held = ""
        if isinstance(self.latent, ConstrainedNormal):
            held = f", constraints={self.latent.constraints.shape[0]}"
        return f"NoisePosterior(dim={self.dim}{batch}, latent_dim={self.latent.dim}{held})"


def _symmetric_operator(d: int, matmul) -> LinearOperator:
    return LinearOperator(
        (d, d), matvec=matmul, rmatvec=matmul, matmat=matmul, rmatmat=matmul, dtype=np.float64
    )


class LatentPosterior:
    """The posterior of the latent components of ``y = μ + e + X z`` given ``y``.

    Built by :func:`latent_posterior` (or ``WoodburyNormal(μ, W).posterior(y)``).

    Attributes
    ----------
    latent : PrecisionNormal
        ``z | y ~ N(O⁻¹ Xᵀ A (y − μ), O⁻¹)`` with ``O = B + Xᵀ A X``: mean ``(p,)`` (or
        ``(p, k)`` for ``k`` observation vectors), precision ``O`` (``W``'s cached
        capacitance and its factorisation).
    noise : NoisePosterior
        ``e | y = y − μ − X z``: mean ``(n,)`` (or ``(n, k)``).
    y : (n,) or (n, k) ndarray
        The observations (read-only copy).

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> from woodbury_sparse.testing import ar1_precision
    >>> n = 200  # AR(1) observed with noise of variance 0.5: y = e + z
    >>> W = ws.WoodburyMatrix(np.eye(n) / 0.5, ar1_precision(n, 0.95), symmetric=True)
    >>> y = ws.rwnorm(1, None, W, random_state=1)
    >>> post = ws.latent_posterior(W, y)
    >>> post.latent.mean.shape, post.latent.std().shape
    ((200,), (200,))
    >>> bool(np.allclose(post.latent.mean + post.noise.mean, y))  # e + z = y
    True
    """

    def __init__(self, latent: PrecisionNormal, noise: NoisePosterior, y: np.ndarray) -> None:
        self.latent = latent
        self.noise = noise
        self.y = y

    def __repr__(self) -> str:
        return f"LatentPosterior(latent={self.latent!r}, noise={self.noise!r})"


def latent_posterior(
    W: SymmetricWoodburyMatrix, y: ArrayLike, mean: ArrayLike | None = None
) -> LatentPosterior:
    """The posterior of ``z`` and ``e`` in ``y = μ + e + X z`` given ``y`` (``cov(y) = W``).

    Parameters
    ----------
    W : SymmetricWoodburyMatrix
        ``A⁻¹ + X B⁻¹ Xᵀ``: ``A`` the precision of the noise ``e``, ``B`` that of the
        latent ``z`` (positive semidefinite: an intrinsic prior is fine when the posterior
        precision ``O = B + Xᵀ A X`` is positive definite).
    y : (n,) or (n, k) array_like
        One observation vector, or ``k`` of them as columns (the posteriors share their
        covariance; the means get a column each).
    mean : None, scalar or (n,) array_like, optional
        ``μ``; ``None`` (default) is zero.

    Returns
    -------
    LatentPosterior
        ``.latent`` (``z | y``, a :class:`PrecisionNormal` with precision ``O``) and
        ``.noise`` (``e | y``, a :class:`NoisePosterior`).

    Raises
    ------
    NotPositiveDefiniteError
        When ``O`` is not positive definite (``.block == "O"``): ``A`` or ``B`` is not a
        precision matrix.
    TypeError, ValueError
        For a ``W`` that is not a symmetric Woodbury matrix, or ``y``/``mean`` of the
        wrong shape or with NaN or infinite values.

    See Also
    --------
    WoodburyNormal.posterior : the same, from the frozen distribution.

    Notes
    -----
    ``E[z | y] = O⁻¹ Xᵀ A (y − μ)`` costs a product with ``A X`` (cached by ``W``) and one
    solve with ``O``'s factorisation (cached by ``W``: built by ``W.solve``,
    ``W.logdet``, ``dwnorm``, or here). Nothing factorises ``W``, ``A`` or ``B``.
    R-INLA reports the same for a Gaussian likelihood (``summary.random``), and
    ``inla.qinv`` / ``inla.qsample`` give the variances and draws of a precision.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> import woodbury_sparse as ws
    >>> from woodbury_sparse.testing import ar1_precision
    >>> S = sparse.eye_array(10, format="csr")[[0, 1, 2, 6, 7, 8, 9]]  # weeks 3-5 missing
    >>> W = ws.WoodburyMatrix(np.eye(7) / 0.1, ar1_precision(10, 0.9), X=S)
    >>> post = ws.latent_posterior(W, np.ones(7))
    >>> sd = post.latent.std()  # wider where nothing was observed
    >>> bool(sd[4] > 2 * sd[0])
    True
    >>> ws.latent_posterior(W, np.ones((7, 3))).latent.mean.shape  # three y at once
    (10, 3)
    """
    W = check_covariance(W, "W")
    state = W._state
    n = state.n
    obs = as_vectors(y, n, "y")
    if obs.dtype.kind == "c":
        raise TypeError("`y` must hold real numbers, got complex values")
    obs = np.array(obs)
    obs.flags.writeable = False
    mu = mean_vector(mean, n, "mean")
    residual = obs - (mu if obs.ndim == 1 else mu[:, None])
    capacitance = state.O
    factor = _positive_definite_factor(capacitance, "O") if state.p else None
    if factor is not None:
        _ = state.capacitance_factor  # the same factor, with W's ill-conditioning warning
        latent_mean = np.asarray(factor.solve(np.asarray(state.VA.matmul(residual))))
    else:
        latent_mean = np.zeros((0, *residual.shape[1:]))
    latent_mean.flags.writeable = False
    latent = PrecisionNormal(latent_mean, capacitance)
    noise = NoisePosterior(latent, state.parts.U, residual, capacitance.kind == "sparse")
    return LatentPosterior(latent, noise, obs)
