"""Gaussian graphical models: precision updates and partial-correlation networks.

A gene-expression covariance ``Σ`` with precision ``Θ = Σ⁻¹`` gains regulatory pathways
with loadings ``X`` (``N×D``, ``D ≪ N``). The updated precision is

.. math::

    (Σ + X Xᵀ)⁻¹ = Θ − Θ X (I + Xᵀ Θ X)⁻¹ Xᵀ Θ,

the inverse of ``SymmetricWoodburyMatrix(A=Θ, B=I_D, X=X)``: a *lazy* operator, "sparse
minus rank ``D``", that is never formed. The network is the matrix of partial
correlations ``ρᵢⱼ = −Θᵢⱼ / √(Θᵢᵢ Θⱼⱼ)`` (unit diagonal).

Every function that takes a ``precision`` accepts a dense ndarray, a SciPy sparse
matrix, a :class:`~woodbury_sparse.WoodburyInverse` (as returned by
:func:`updated_precision`) or any symmetric :class:`~scipy.sparse.linalg.LinearOperator`.
A precision must be real, finite, square and symmetric (up to round-off), and is
refused otherwise, never cast or summarised (``TypeError`` / ``ValueError`` naming the
argument): a complex matrix, a NaN, a general (non-symmetric)
:class:`~woodbury_sparse.WoodburyMatrix` or its inverse. Sparse duplicates are summed on
a copy; the input is never modified. The checks cost ``O(nnz)`` for sparse input,
``O(N²)`` for dense, and one two-column product for an operator (a probe of
``uᵀ P v = vᵀ P u``; its rows are checked for NaN as they are formed).
Network-wide functions (:func:`strong_edges`, :func:`network_summary`,
:func:`top_changed_edges`) stream the precision in row blocks of bounded size, so their
memory is ``O(block_size · N)`` however large ``N`` is.

=====================================  ============================================
function                               cost for ``Θ`` sparse (``nnz``) + rank ``D``
=====================================  ============================================
:func:`updated_precision`              lazy; ``O(D)`` products with ``Θ`` at first use
:func:`updated_precision_dense`        ``O(N² D)`` (never an ``O(N³)`` inversion)
:func:`precision_diagonal`             ``O(N D² + D·nnz)``; sparse ``X``: a selected inverse
:func:`precision_entries`              ``O(m D)`` for ``m`` pairs (after the above)
:func:`strong_edges` and friends       ``O(N² D)`` time, ``O(block · N)`` memory
=====================================  ============================================
"""

from __future__ import annotations

import contextlib
import functools
import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.linalg import blas as linalg_blas
from scipy.sparse.linalg import LinearOperator

from . import _blas
from ._blocks import Block, all_finite, dense_asymmetry, sparse_asymmetry
from ._cache import cached_property
from ._core import RCOND_WARNING, InverseReader, Reuse
from ._factor import DenseCholesky
from ._operators import SymmetricWoodburyMatrix, WoodburyInverse, WoodburyMatrix
from ._progress import Reporter, reporter
from ._validation import (
    SYMMETRY_RTOL,
    as_block,
    check_dtype,
    check_finite,
    normalise,
    require_symmetric,
    symmetry_roundoff,
)
from .updates import add_terms

__all__ = [
    "EdgeChanges",
    "Edges",
    "NetworkSummary",
    "add_pathways",
    "network_summary",
    "partial_correlation_entries",
    "partial_correlations",
    "precision_diagonal",
    "precision_entries",
    "strong_edges",
    "summary_table",
    "top_changed_edges",
    "updated_precision",
    "updated_precision_dense",
]

#: Default bound on the entries of one streamed row block (16 MiB of float64).
MAX_BLOCK_ENTRIES: int = 2**21


# -- the updated precision ------------------------------------------------------------
def updated_precision(theta, X, B=None) -> WoodburyInverse:
    """The precision ``(Θ⁻¹ + X B⁻¹ Xᵀ)⁻¹`` after adding pathways, as a lazy operator.

    Parameters
    ----------
    theta : (N, N) array_like or sparse matrix
        Base precision ``Θ = Σ⁻¹`` (symmetric positive definite).
    X : (N, D) array_like or sparse matrix
        Pathway loadings, one column per pathway.
    B : (D, D) array_like, optional
        Precision of the pathway activities (default ``I_D``: ``Σ + X Xᵀ``).

    Returns
    -------
    WoodburyInverse
        ``Θ − Θ X (B + Xᵀ Θ X)⁻¹ Xᵀ Θ``; its products cost products with ``Θ`` plus
        ``O(N D)``. ``.W`` is the updated covariance ``SymmetricWoodburyMatrix``.

    Raises
    ------
    TypeError
        When ``theta`` is complex, not numeric or a LinearOperator (an explicit matrix
        is needed).
    ValueError
        When ``theta`` is not 2-D, square, finite and symmetric, or ``X`` does not have
        one row per gene.

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse import ggm
    >>> rng = np.random.default_rng(0)
    >>> Sigma = np.diag(rng.uniform(1, 2, 5)); X = rng.standard_normal((5, 2))
    >>> P = ggm.updated_precision(np.linalg.inv(Sigma), X)
    >>> bool(np.allclose(P.toarray(), np.linalg.inv(Sigma + X @ X.T)))
    True
    """
    return _updated(_check_theta(theta), X, B).inv()


def _check_theta(theta, copy: bool = True) -> Block:
    """Validate the base precision under its own name (the operator calls it ``A``).

    Real, finite, 2-D, square and symmetric up to round-off; returns it as a block,
    copied unless ``copy`` is false (see ``as_block``).
    """
    return _checked_symmetric(as_block(theta, "theta", square=True, copy=copy))


def _checked_symmetric(theta: Block) -> Block:
    """``theta``, once its symmetry (and, uncopied, its finiteness) has been checked."""
    require_symmetric([theta], "a precision matrix is symmetric")
    return theta


def _updated(theta: Block, X, B, reuse: Reuse | None = None) -> SymmetricWoodburyMatrix:
    """The covariance ``Θ⁻¹ + X B⁻¹ Xᵀ`` from a checked ``Θ``, validated and copied once."""
    X = _check_loadings(X, theta.shape[0], "`theta`")
    B = np.eye(X.shape[1]) if B is None else B
    # Symmetrised here, under `theta`'s checks: the operator's own find nothing to say.
    parts = normalise(theta.symmetrized().renamed("A"), B, X=X, symmetric=True)
    return SymmetricWoodburyMatrix._from_parts(parts, reuse=reuse)


def _check_loadings(X, n: int, of: str):
    """``X`` as a 2-D array (or sparse matrix) with one row per gene."""
    X = X if sparse.issparse(X) else np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"`X` must be 2-D (genes × pathways), got shape {X.shape}")
    if X.shape[0] != n:
        raise ValueError(
            f"`X` has {X.shape[0]} rows but {of} is {n}×{n}: expected one row per gene "
            f"(shape ({n}, D)), got shape {X.shape}"
        )
    return X


def updated_precision_dense(theta, X, B=None) -> np.ndarray:
    """The updated precision ``(Θ⁻¹ + X B⁻¹ Xᵀ)⁻¹`` as a dense ``N×N`` array.

    Costs ``O(N² D)`` flops (plus ``D`` products with ``Θ``), never an ``O(N³)``
    inversion; the memory is the ``N×N`` result.

    Notes
    -----
    A dense ``Θ`` is read where it lies and checked within the product ``Θ X`` that the
    update computes anyway: ``Θ`` is multiplied by ``[X Z]``, ``Z`` holding
    ``_SYMMETRY_PROBES`` (3) fixed random columns. The product is finite exactly when
    ``Θ`` is (every entry of ``Θ`` meets a nonzero entry of ``Z``), and the
    antisymmetric part of ``Zᵀ Θ Z`` estimates ``‖Θ − Θᵀ‖_F / ‖Θ‖_F`` (see
    ``_probed_asymmetry``). Below a tolerance of ``64·√N·eps`` (the notebook's
    ``numpy.linalg.inv(Σ)``, condition about ``10³``, reads ``1–7 √N·eps``) ``Θ`` is used
    as it is, and the result is ``Θ − (Θ X) (I + Xᵀ Θ X)⁻¹ (Θ X)ᵀ``, formed by one GEMM
    into the one ``N×N`` array made (a copy of ``Θ``); the capacitance is factorised
    directly when it is positive definite and well-conditioned, by the operator
    otherwise (and always when ``B`` is given), with its warnings and errors. Any other
    ``Θ`` takes the exact
    checks of :func:`updated_precision`, with their errors and warnings: a ``Θ`` that
    is not symmetric (``‖Θ − Θᵀ‖_F > √eps ‖Θ‖_F``) is refused, one symmetric only to
    more than round-off is used as ``(Θ + Θᵀ)/2`` with an
    :class:`~woodbury_sparse.AsymmetryWarning`. A matrix beyond ``√eps`` passes the
    probe only if three independent Gaussian sums all fall below
    ``64·√N·eps / √eps`` (``≈ 10⁻⁵ √N``) times their typical size: odds of
    about ``10⁻¹⁴`` at ``N = 1000``. The result's columns are checked for
    cancellation as :meth:`WoodburyInverse.toarray
    <woodbury_sparse.WoodburyInverse.toarray>` checks them (a column that may have
    cancelled takes that method, which refines it). The result cannot overflow, so it
    is not read again: ``|(Θ X) C⁻¹ (Θ X)ᵀ|`` is bounded by ``1e300`` (else the method
    above, which checks), and the probe bounds ``Θ``'s entries — a ``Θ`` holding an
    entry beyond ``1e110`` passes the probe's range test (``‖Θ zₚ‖²`` averaging below
    ``1e200``) with odds below ``10⁻²⁹``.

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse import ggm
    >>> ggm.updated_precision_dense(np.eye(2), np.ones((2, 1)))
    array([[ 0.66666667, -0.33333333],
           [-0.33333333,  0.66666667]])
    """
    # Nothing is kept: Θ is read where it lies (no copy), checked once.
    block = None
    if not _plain_square(theta):  # converted (a copy) and checked for shape and type
        block = as_block(theta, "theta", square=True, copy=False)
    values = theta if block is None else block.data if block.kind == "dense" else None
    out = None if values is None else _probed_update(values, X, B)
    if out is not None:
        return out
    block = block or as_block(theta, "theta", square=True, copy=False)
    return _updated(_checked_symmetric(block), X, B).inv().toarray()


def _plain_square(value) -> bool:
    """Whether ``value`` is a non-empty square C-contiguous float64 ndarray (used as is)."""
    return (
        type(value) is np.ndarray
        and value.dtype == np.float64
        and value.ndim == 2
        and value.shape[0] == value.shape[1] > 0
        and value.flags.c_contiguous
    )


#: Random columns that probe a dense ``Θ``'s symmetry (see updated_precision_dense).
_SYMMETRY_PROBES: int = 3
_PROBE_SEED = 0x5EED

#: Sums of squares between this and its reciprocal neither overflowed nor underflowed.
_SAFE_SQUARES = 1e-200


def _probe_tolerance(n: int) -> float:
    """The largest probed asymmetry a dense update takes as round-off: ``64·√n·eps``.

    Sixteen times :func:`~woodbury_sparse._validation.symmetry_roundoff`: the probe of a
    symmetric matrix reads ``0.1–0.2 √n·eps`` (its own rounding), ``numpy.linalg.inv``
    of the notebook's covariances (condition about ``10³``, ``n`` up to 4000)
    ``1–7 √n·eps``: taken as they are, with a margin of about ten.
    """
    return 16.0 * symmetry_roundoff(n)


def _probed_asymmetry(gram: np.ndarray, squares: np.ndarray) -> float:
    """An estimate of ``‖Θ − Θᵀ‖_F / ‖Θ‖_F`` from ``gram = Zᵀ Θ Z`` and ``‖Θ zₚ‖²``.

    For independent standard normal columns ``zₚ`` of ``Z``, ``zₚᵀ (Θ − Θᵀ) z_q``
    (``p ≠ q``) has mean square ``‖Θ − Θᵀ‖²_F`` and ``‖Θ zₚ‖²`` has mean ``‖Θ‖²_F``: the
    ratio of their averages estimates the squared relative asymmetry. ``nan`` when the
    squares are NaN or infinite (``Θ Z`` holds NaN or infinities, or its squares
    overflowed) or their mean is below ``1e-200`` or above ``1e200`` (then nothing is
    known).
    """
    s = squares.size
    scale = float(np.sum(squares)) / s
    if not _SAFE_SQUARES < scale < 1.0 / _SAFE_SQUARES:
        return float("nan")
    skew = gram - gram.T  # its diagonal is zero; each pair appears twice
    return float(np.sqrt(np.sum(skew * skew) / (s * (s - 1)) / scale))


@functools.lru_cache(maxsize=4)
def _probe_vectors(n: int) -> np.ndarray:
    """The fixed standard normal probe columns (``n×_SYMMETRY_PROBES``, read-only)."""
    z = np.random.default_rng(_PROBE_SEED).standard_normal((n, _SYMMETRY_PROBES))
    z[z == 0.0] = 1.0  # every entry of Θ must reach the product (finiteness)
    z.flags.writeable = False
    return z


#: Largest ``Σₖ maxᵢ|Lᵢₖ| |Rₖⱼ|`` (a bound on ``|L R|``) that ``Θ − L R`` is formed for
#: without a finiteness check (see updated_precision_dense).
_SAFE_PRODUCT = 1e300


def _probed_update(theta: np.ndarray, X, B) -> np.ndarray | None:
    """The dense update of a probed-symmetric dense ``Θ`` (see updated_precision_dense).

    ``theta`` is a square C-contiguous float64 array (the caller's, never written).
    ``None`` when the exact path must decide: ``Θ`` not finite, or not symmetric to
    round-off by the probe; ``X`` not a dense ``N×D`` array of ``D ≥ 1`` real numbers
    (its errors come after ``Θ``'s own).
    """
    n = theta.shape[0]
    if sparse.issparse(X):
        return None
    try:
        x = as_block(X, "X")
    except (TypeError, ValueError):
        return None
    if x.kind != "dense" or x.shape[0] != n or x.shape[1] == 0:
        return None
    d = x.shape[1]
    # The thread policy of _blas, taken once for the whole update (not per product).
    small = n * n * (d + _SYMMETRY_PROBES) < _blas.LARGE_PRODUCT
    with _blas.one_thread() if small else contextlib.nullcontext():
        operand = np.empty((n, d + _SYMMETRY_PROBES))
        operand[:, :d] = x.data
        operand[:, d:] = _probe_vectors(n)
        # Θ [X Z] as ([X Z]ᵀ Θᵀ)ᵀ: both operands in BLAS's plain layout, Θ read once (the
        # thin-product layout of _blas.matmul measured 1.2–1.3× slower here, Θ cold).
        product = linalg_blas.dgemm(1.0, operand.T, theta.T).T
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            gram = _blas.matmul(operand.T, product)  # Xᵀ Θ X, and the probe's Zᵀ Θ Z
            squares = np.einsum("ij,ij->j", product, product)  # finite iff Θ [X Z] is
        if not all_finite(squares):
            return None
        if not _probed_asymmetry(gram[d:, d:], squares[d:]) <= _probe_tolerance(n):
            return None
        theta_x = np.ascontiguousarray(product[:, :d])
        right = _solved_capacitance(gram[:d, :d], theta_x) if B is None else None
        if right is not None:
            out = np.array(theta)  # the one N×N array
            _blas.subtract_product(out, theta_x, right)
            if not _may_cancel(out, theta_x, right):
                return out
        # Θ as it is, symmetric to round-off: the operator factorises and checks the
        # capacitance from Θ X (warning, LU, SingularMatrixError as always), and refines
        # a column that cancelled; it never reads Θ's triangles against each other.
        view = theta.view()
        view.flags.writeable = False
        a = Block("dense", theta.shape, view, True, "theta")
        W = _updated(a, x.data, B, Reuse(AU=Block.from_matrix(theta_x)))
        return W.inv().toarray()


def _solved_capacitance(core: np.ndarray, theta_x: np.ndarray) -> np.ndarray | None:
    """``C⁻¹ (Θ X)ᵀ`` for the capacitance ``C = I + Xᵀ Θ X``, or ``None``.

    ``core`` is ``Xᵀ Θ X``, symmetrised here. Only for a ``C`` that is finite, positive
    definite and well-conditioned (LAPACK's reciprocal condition estimate at least the
    operator's warning level): what the operator computes without a word. Anything else
    is left to the operator, which says what it must.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        cap = 0.5 * (core + core.T) + np.eye(core.shape[0])
    if not all_finite(cap):
        return None
    factor = DenseCholesky.attempt(cap)
    if factor is None or not factor.rcond(float(np.abs(cap).sum(axis=0).max())) >= RCOND_WARNING:
        return None
    return factor.solve(theta_x.T)


def _may_cancel(out: np.ndarray, left: np.ndarray, right: np.ndarray) -> bool:
    """Whether ``out = Θ − L R`` may have lost digits to cancellation in a column.

    The first test of ``WoodburyInverse.toarray``'s: with ``sⱼ = Σₖ maxᵢ|Lᵢₖ| |Rₖⱼ|``
    (``≥ |L R|ᵢⱼ``), a column whose diagonal has ``6·|outⱼⱼ| ≥ sⱼ`` did not cancel.
    Any other column, or an ``sⱼ`` above :data:`_SAFE_PRODUCT` (or NaN), sends the update
    down the operator's path, which refines the column and checks for overflow.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN fail the tests below
        bound = np.max(np.abs(left), axis=0, initial=0.0) @ np.abs(right)
        safe = np.all(6.0 * np.abs(np.diagonal(out)) >= bound)
    return not (safe and np.max(bound, initial=0.0) <= _SAFE_PRODUCT)


def add_pathways(precision: WoodburyInverse, X, B=None) -> WoodburyInverse:
    """Add pathways to an updated precision, reusing everything already computed.

    Parameters
    ----------
    precision : WoodburyInverse
        A precision from :func:`updated_precision` (or from an earlier call).
    X : (N, k) array_like or sparse matrix
        Loadings of the new pathways.
    B : (k, k) array_like, optional
        Their precision (default ``I_k``).

    Returns
    -------
    WoodburyInverse
        The new precision; ``precision`` is unchanged. A single pathway (``k = 1``)
        takes the Sherman–Morrison path of :func:`woodbury_sparse.updates.add_terms`.

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse import ggm
    >>> X = np.random.default_rng(1).standard_normal((4, 2))
    >>> P = ggm.updated_precision(np.eye(4), X[:, :1])
    >>> P2 = ggm.add_pathways(P, X[:, 1:])
    >>> bool(np.allclose(P2.toarray(), np.linalg.inv(np.eye(4) + X @ X.T)))
    True
    """
    if not isinstance(precision, WoodburyInverse):
        raise TypeError(
            f"`precision` must be a WoodburyInverse from updated_precision(), "
            f"got {type(precision).__name__}"
        )
    if not isinstance(precision.W, SymmetricWoodburyMatrix):
        raise ValueError(_GENERAL_OPERATOR.format(name="precision"))
    X = _check_loadings(X, precision.shape[0], "`precision`")
    B = np.eye(X.shape[1]) if B is None else B
    return add_terms(precision.W, B, X=X).inv()


# -- uniform access to a precision ----------------------------------------------------
_GENERAL_OPERATOR = (
    "`{name}` is a general (non-symmetric) Woodbury operator, but a precision matrix is "
    "symmetric: build it with `X=` (SymmetricWoodburyMatrix, or updated_precision())"
)


def _not_symmetric(name: str, asymmetry: float) -> ValueError:
    return ValueError(
        f"`{name}` is not symmetric (‖M − Mᵀ‖/‖M‖ = {asymmetry:.2e} > {SYMMETRY_RTOL:.1e}), "
        "but a precision matrix is symmetric"
    )


class _Precision:
    """Rows, entries and the diagonal of a dense, sparse or lazy precision.

    The input is validated once here and never modified: real (complex is refused, not
    cast), finite, square and symmetric (round-off aside), duplicate sparse entries
    summed on a copy.
    """

    def __init__(self, precision, name: str = "precision") -> None:
        self.name = name
        self.dense = self.sparse = self.lazy = self.operator = None
        if isinstance(precision, WoodburyInverse):
            if not isinstance(precision.W, SymmetricWoodburyMatrix):
                raise ValueError(_GENERAL_OPERATOR.format(name=name))
            self.lazy = precision
        elif isinstance(precision, WoodburyMatrix) and not isinstance(
            precision, SymmetricWoodburyMatrix
        ):
            raise ValueError(_GENERAL_OPERATOR.format(name=name))
        elif isinstance(precision, LinearOperator):
            check_dtype(np.dtype(precision.dtype), name)
            self.operator = precision
        elif sparse.issparse(precision):
            check_dtype(precision.dtype, name)
            # a copy: summing duplicates must not touch the caller's matrix
            m = sparse.csr_array(precision, dtype=np.float64, copy=True)
            m.sum_duplicates()
            check_finite(m.data, name)
            self.sparse = m
        else:
            arr = np.asarray(precision)
            check_dtype(arr.dtype, name)
            self.dense = arr.astype(np.float64, copy=False)
            check_finite(self.dense, name)
        shape = precision.shape
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"`{name}` must be a square matrix, got shape {tuple(shape)}")
        self.n = int(shape[0])
        self._check_symmetric()

    def _check_symmetric(self) -> None:
        """Refuse a precision that is not symmetric (only its upper triangle is read).

        ``O(nnz)`` for sparse, ``O(N²)`` in tiles for dense; an operator is probed with
        two random vectors (``uᵀ P v`` against ``vᵀ P u``), except a
        :class:`~woodbury_sparse.SymmetricWoodburyMatrix` or its inverse, symmetric by
        construction.
        """
        if self.sparse is not None:
            m = self.sparse  # its CSR arrays are the canonical CSC arrays of Mᵀ
            t = sparse.csc_array((m.data, m.indices, m.indptr), shape=m.shape)
            t.has_canonical_format = True
            asym = sparse_asymmetry(t)
        elif self.dense is not None:
            asym = dense_asymmetry(np.ascontiguousarray(self.dense))
        elif self.lazy is not None or isinstance(self.operator, SymmetricWoodburyMatrix):
            return
        else:
            asym = self._probe_asymmetry()
            if asym > SYMMETRY_RTOL:
                raise ValueError(
                    f"`{self.name}` is not symmetric: for two random vectors u, v, "
                    f"|uᵀ P v − vᵀ P u| / (‖u‖ ‖P v‖ + ‖v‖ ‖P u‖) = {asym:.2e} > "
                    f"{SYMMETRY_RTOL:.1e}, but a precision matrix is symmetric"
                )
            return
        if asym > SYMMETRY_RTOL:
            raise _not_symmetric(self.name, asym)

    def _probe_asymmetry(self) -> float:
        """``|uᵀ P v − vᵀ P u| / (‖u‖ ‖P v‖ + ‖v‖ ‖P u‖)`` for two fixed random vectors.

        Zero up to round-off (a few ``n·eps``) for a symmetric ``P``; of order
        ``‖P − Pᵀ‖ / (√n ‖P‖)`` otherwise. One two-column product.
        """
        if self.n == 0:
            return 0.0
        assert self.operator is not None  # only an operator is probed
        uv = np.random.default_rng(0x5EED).standard_normal((self.n, 2))
        p_uv = self._checked(np.asarray(self.operator.matmat(uv), dtype=np.float64))
        u, v, pu, pv = uv[:, 0], uv[:, 1], p_uv[:, 0], p_uv[:, 1]
        scale = np.linalg.norm(u) * np.linalg.norm(pv) + np.linalg.norm(v) * np.linalg.norm(pu)
        return float(abs(u @ pv - v @ pu) / scale) if scale > 0 else 0.0

    def _checked(self, values: np.ndarray) -> np.ndarray:
        """``values`` computed from an operator, refused if any is NaN or infinite."""
        check_finite(values, self.name)
        return values

    # the lazy form  P = A − (A U) O⁻¹ (V A), read through the state of W
    @cached_property
    def _inverse(self) -> InverseReader:
        assert self.lazy is not None  # read only for a lazy precision
        return self.lazy.W._state.inverse_reader()

    def rows(self, r0: int, r1: int, c0: int = 0) -> np.ndarray:
        """Rows ``r0:r1``, columns ``c0:``, as a new dense array."""
        if self.dense is not None:
            return np.array(self.dense[r0:r1, c0:])
        if self.sparse is not None:
            return self.sparse[r0:r1, c0:].toarray()
        if self.lazy is not None:
            return self._checked(self._inverse.rows(r0, r1, c0))
        assert self.operator is not None  # the last kind of precision
        eye = np.zeros((self.n, r1 - r0))
        eye[np.arange(r0, r1), np.arange(r1 - r0)] = 1.0
        cols = np.asarray(self.operator.matmat(eye), dtype=np.float64)
        return self._checked(cols.T[:, c0:])  # rows: the precision is symmetric

    @cached_property
    def diagonal(self) -> np.ndarray:
        if self.dense is not None:
            return np.array(self.dense.diagonal())
        if self.sparse is not None:
            return np.asarray(self.sparse.diagonal())
        if self.lazy is not None:  # selected inverses, never the N×D (or N×N) factors
            return self.lazy.diagonal()
        return np.concatenate([np.diagonal(r, offset=r0) for r0, r in self.iter_rows()])

    def entries(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        if self.dense is not None:
            return self.dense[i, j]
        if self.sparse is not None:
            return np.asarray(self.sparse[i, j]).ravel()
        if self.lazy is not None:
            return self._inverse.entries(i, j)
        return np.array([self.rows(a, a + 1)[0, b] for a, b in zip(i, j, strict=True)])

    def block_size(self, block_size: int | None) -> int:
        if block_size is None:
            return max(1, min(self.n, MAX_BLOCK_ENTRIES // max(1, self.n)))
        if int(block_size) < 1:
            raise ValueError(f"`block_size` must be a positive integer, got {block_size!r}")
        return int(block_size)

    def iter_rows(self, block_size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        size = self.block_size(block_size)
        for r0 in range(0, self.n, size):
            yield r0, self.rows(r0, min(self.n, r0 + size))

    def iter_upper(self, block_size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Row blocks of ``ρ`` restricted to the strict upper triangle.

        Yields ``(r0, rho)`` with ``rho[a, c] = ρ[r0 + a, r0 + c]`` for ``c > a`` and 0
        on and below the diagonal: only columns ``≥ r0`` are computed (half the work).
        """
        s = self.inv_sqrt_diag
        size = self.block_size(block_size)
        for r0 in range(0, self.n, size):
            r1 = min(self.n, r0 + size)
            rho = self.rows(r0, r1, r0)
            rho *= -s[r0:r1, None]
            rho *= s[None, r0:]
            b = r1 - r0
            rho[np.tril_indices(b)] = 0.0
            yield r0, rho

    @cached_property
    def inv_sqrt_diag(self) -> np.ndarray:
        d = self.diagonal
        if not np.all(d > 0):
            bad = int(np.flatnonzero(~(d > 0))[0])
            raise ValueError(
                f"`{self.name}` must have a positive diagonal (a precision matrix); "
                f"entry {bad} is {d[bad]!r}"
            )
        return 1.0 / np.sqrt(d)

    def iter_rho(self, block_size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Row blocks of the partial correlations (unit diagonal)."""
        s = self.inv_sqrt_diag
        for r0, rows in self.iter_rows(block_size):
            rho = rows
            rho *= -s[r0 : r0 + rows.shape[0], None]
            rho *= s[None, :]
            rho[np.arange(rows.shape[0]), np.arange(r0, r0 + rows.shape[0])] = 1.0
            yield r0, rho


def _check_genes(genes, n: int) -> tuple[str, ...] | None:
    if genes is None:
        return None
    names = tuple(str(g) for g in genes)
    if len(names) != n:
        raise ValueError(f"`genes` has {len(names)} names but the precision is {n}×{n}")
    return names


# -- partial correlations ---------------------------------------------------------------
def partial_correlations(precision):
    """Partial correlations ``ρᵢⱼ = −Θᵢⱼ / √(Θᵢᵢ Θⱼⱼ)`` with unit diagonal.

    Parameters
    ----------
    precision : (N, N) ndarray, sparse matrix or LinearOperator
        A precision matrix (positive diagonal).

    Returns
    -------
    ndarray or scipy.sparse.csr_array
        Sparse (with the pattern of ``precision``) for sparse input, dense otherwise.
        A lazy precision is formed row block by row block: ``O(N² D)`` for a
        :class:`~woodbury_sparse.WoodburyInverse`, ``O(N²)`` memory for the result.

    Raises
    ------
    TypeError
        When ``precision`` is complex or not numeric.
    ValueError
        When the diagonal is not positive; when ``precision`` holds NaN or infinite
        values, is not square or not symmetric, or is a general Woodbury operator.

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse import ggm
    >>> ggm.partial_correlations(np.array([[2.0, -1.0], [-1.0, 2.0]]))
    array([[1. , 0.5],
           [0.5, 1. ]])
    """
    prec = _Precision(precision)
    s = prec.inv_sqrt_diag
    if prec.sparse is not None:
        coo = prec.sparse.tocoo()
        values = -coo.data * s[coo.row] * s[coo.col]
        values[coo.row == coo.col] = 1.0
        out = sparse.csr_array((values, (coo.row, coo.col)), shape=coo.shape)
        return out
    if prec.dense is not None:
        out = -prec.dense * s[:, None] * s[None, :]
        np.fill_diagonal(out, 1.0)
        return out
    out = np.empty((prec.n, prec.n))
    for r0, rho in prec.iter_rho():
        out[r0 : r0 + rho.shape[0]] = rho
    return out


def precision_diagonal(precision) -> np.ndarray:
    """The diagonal of a precision, lazy updated precisions included.

    For a lazy updated precision, :meth:`WoodburyInverse.diagonal
    <woodbury_sparse.WoodburyInverse.diagonal>`: ``O(N D²)`` for dense loadings ``X``;
    for ``X = I`` or sparse loadings the selected inverse of the sparse capacitance
    ``B + Xᵀ Θ X``, about the cost of its factorisation, where this was ``O(N²)``
    before. No ``N×N`` array either way.

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse import ggm
    >>> ggm.precision_diagonal(ggm.updated_precision(np.eye(2), np.ones((2, 1))))
    array([0.66666667, 0.66666667])
    """
    return np.array(_Precision(precision).diagonal)


def _pairs(pairs, genes, n: int) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(pairs, dtype=object if genes is not None else None)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"`pairs` must have shape (m, 2), got {arr.shape}")
    if genes is not None:
        index = {g: k for k, g in enumerate(genes)}
        try:
            arr = np.array(
                [[index[x] if isinstance(x, str) else int(x) for x in row] for row in arr],
                dtype=np.intp,
            ).reshape(-1, 2)
        except KeyError as exc:
            raise ValueError(f"`pairs` names an unknown gene {exc.args[0]!r}") from None
    elif arr.size and arr.dtype.kind not in "iu":
        raise TypeError(
            f"`pairs` must hold integer indices (or gene names with `genes`), got {arr.dtype}"
        )
    i, j = arr[:, 0].astype(np.intp), arr[:, 1].astype(np.intp)
    if arr.size and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n):
        raise ValueError(f"`pairs` holds an index outside 0..{n - 1}")
    return i, j


def precision_entries(precision, pairs, genes: Sequence[str] | None = None) -> np.ndarray:
    """Entries ``Θᵢⱼ`` for a list of gene pairs, without forming ``N×N``.

    Parameters
    ----------
    precision : (N, N) ndarray, sparse matrix or LinearOperator
    pairs : (m, 2) array_like
        Index pairs, or gene names when ``genes`` is given.
    genes : sequence of str, optional
        Gene names (length ``N``).

    Returns
    -------
    (m,) ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse import ggm
    >>> P = ggm.updated_precision(np.eye(3), np.ones((3, 1)))
    >>> ggm.precision_entries(P, [["a", "b"], ["c", "c"]], genes=["a", "b", "c"])
    array([-0.25,  0.75])
    """
    prec = _Precision(precision)
    i, j = _pairs(pairs, _check_genes(genes, prec.n), prec.n)
    return prec.entries(i, j)


def partial_correlation_entries(precision, pairs, genes: Sequence[str] | None = None) -> np.ndarray:
    """Partial correlations ``ρᵢⱼ`` for a list of gene pairs (``O(m D)`` when lazy).

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse import ggm
    >>> P = ggm.updated_precision(np.eye(3), np.ones((3, 1)))
    >>> ggm.partial_correlation_entries(P, [[0, 1], [2, 2]])
    array([0.33333333, 1.        ])
    """
    prec = _Precision(precision)
    i, j = _pairs(pairs, _check_genes(genes, prec.n), prec.n)
    s = prec.inv_sqrt_diag
    rho = -prec.entries(i, j) * s[i] * s[j]
    return np.where(i == j, 1.0, rho)


# -- networks -----------------------------------------------------------------------------
def _pairs_above(rows: int, n: int) -> int:
    """Pairs ``i < j`` of ``n`` genes with ``i < rows``: the progress unit of a scan."""
    return rows * (n - 1) - rows * (rows - 1) // 2


def _scan(progress, desc: str) -> Reporter:
    """The reporter of a scan over gene pairs (validates ``progress`` before any work)."""
    return reporter(progress, desc, unit="pair")


def _check_threshold(threshold: float) -> float:
    t = float(threshold)
    if not 0.0 <= t < 1.0:
        raise ValueError(f"`threshold` must be in [0, 1), got {threshold!r}")
    return t


@dataclass(frozen=True)
class Edges:
    """Edges ``i < j`` of a network with their partial correlations ``rho``.

    Attributes
    ----------
    i, j : ndarray of int
        Gene indices, ``i < j``, sorted by ``(i, j)``.
    rho : ndarray
        Partial correlations.
    genes : tuple of str or None
        Gene names, when supplied.

    Examples
    --------
    What :func:`strong_edges` returns; here the chain network of an AR(1) precision:

    >>> from woodbury_sparse import ggm
    >>> from woodbury_sparse.testing import ar1_precision
    >>> edges = ggm.strong_edges(ar1_precision(4, 0.5), 0.3, genes=["a", "b", "c", "d"])
    >>> len(edges), edges.names()
    (3, [('a', 'b'), ('b', 'c'), ('c', 'd')])
    >>> edges.rho
    array([0.4472136, 0.4      , 0.4472136])
    """

    i: np.ndarray
    j: np.ndarray
    rho: np.ndarray
    genes: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.i.size)

    def names(self) -> list[tuple[str, str]]:
        """The edges as pairs of gene names (``"gene <k>"`` without names)."""
        return [(self._name(a), self._name(b)) for a, b in zip(self.i, self.j, strict=True)]

    def _name(self, k) -> str:
        return self.genes[k] if self.genes is not None else f"gene {int(k)}"


@dataclass(frozen=True)
class EdgeChanges:
    """Gene pairs whose ``|ρ|`` changed most, sorted by ``|change|`` (largest first).

    ``change = |ρ_after| − |ρ_before|``.

    Examples
    --------
    What :func:`top_changed_edges` returns; a pathway joining genes ``a`` and ``d`` of a
    chain network links them:

    >>> import numpy as np
    >>> from woodbury_sparse import ggm
    >>> from woodbury_sparse.testing import ar1_precision
    >>> theta = ar1_precision(4, 0.5)
    >>> P = ggm.updated_precision(theta, np.array([[1.0], [0.0], [0.0], [1.0]]))
    >>> changes = ggm.top_changed_edges(theta, P, k=2, genes=["a", "b", "c", "d"])
    >>> changes.names(), changes.change
    ([('a', 'd'), ('a', 'c')], array([0.5       , 0.18898224]))
    """

    i: np.ndarray
    j: np.ndarray
    before: np.ndarray
    after: np.ndarray
    change: np.ndarray
    genes: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.i.size)

    def names(self) -> list[tuple[str, str]]:
        """The pairs as gene names (``"gene <k>"`` without names)."""
        return Edges(self.i, self.j, self.after, self.genes).names()


def strong_edges(
    precision,
    threshold: float,
    *,
    genes: Sequence[str] | None = None,
    block_size: int | None = None,
    progress=None,
) -> Edges:
    """The edges with ``|ρᵢⱼ| > threshold``, streamed in row blocks.

    Parameters
    ----------
    precision : (N, N) ndarray, sparse matrix or LinearOperator
    threshold : float
        In ``[0, 1)``.
    genes : sequence of str, optional
        Gene names, carried into the result.
    block_size : int, optional
        Rows per block; default such that a block holds about ``2²¹`` entries.
    progress : None, bool or callable, optional
        Report the scan's progress in gene pairs: ``None``/``False`` (default) silent,
        ``True`` a bar on a terminal (tqdm's when installed), or a callable called as
        ``progress(done, total)`` (``total = N(N−1)/2``) after each row block.

    Returns
    -------
    Edges

    Notes
    -----
    Memory is ``O(block_size · N)`` plus the edges found, whatever ``N``; time is
    ``O(N² D)`` for a lazy updated precision of rank ``D``.

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse import ggm
    >>> theta = np.array([[2.0, -1.0, 0.0], [-1.0, 2.0, -0.1], [0.0, -0.1, 2.0]])
    >>> edges = ggm.strong_edges(theta, 0.2, genes=["TP53", "MDM2", "MYC"])
    >>> edges.names(), edges.rho
    ([('TP53', 'MDM2')], array([0.5]))
    """
    t = _check_threshold(threshold)
    report = _scan(progress, "strong edges")
    prec = _Precision(precision)
    names = _check_genes(genes, prec.n)
    found_i, found_j, found_rho = [], [], []
    with report:
        report.start(_pairs_above(prec.n, prec.n))
        for r0, rho in prec.iter_upper(block_size):
            rows, cols = np.nonzero(np.abs(rho) > t)
            found_i.append(rows + r0)
            found_j.append(cols + r0)
            found_rho.append(rho[rows, cols])
            report.update(_pairs_above(r0 + rho.shape[0], prec.n))
    if not found_i:  # N = 0
        return Edges(np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0), names)
    return Edges(
        np.concatenate(found_i).astype(np.intp),
        np.concatenate(found_j).astype(np.intp),
        np.concatenate(found_rho),
        names,
    )


@dataclass(frozen=True)
class NetworkSummary:
    """Statistics of ``|ρᵢⱼ|`` over the ``N(N−1)/2`` pairs ``i < j``.

    Examples
    --------
    What :func:`network_summary` returns:

    >>> from woodbury_sparse import ggm
    >>> from woodbury_sparse.testing import ar1_precision
    >>> summary = ggm.network_summary(ar1_precision(4, 0.5), 0.3)
    >>> summary.n_edges, summary.density, round(summary.max_abs, 4)
    (3, 0.5, 0.4472)
    >>> sorted(summary.as_dict())
    ['density', 'max_abs', 'mean_abs', 'n_edges', 'n_genes', 'threshold']
    """

    n_genes: int
    threshold: float
    n_edges: int
    mean_abs: float
    max_abs: float
    density: float

    def as_dict(self) -> dict[str, float]:
        """The statistics as a plain dictionary."""
        return dict(self.__dict__)


def network_summary(
    precision, threshold: float, *, block_size: int | None = None, progress=None
) -> NetworkSummary:
    """Edge count (``|ρ| > threshold``), mean and max ``|ρ|`` and density, streamed.

    Parameters
    ----------
    precision : (N, N) ndarray, sparse matrix or LinearOperator
    threshold : float
        In ``[0, 1)``.
    block_size : int, optional
        Rows per streamed block.
    progress : None, bool or callable, optional
        Report the scan's progress in gene pairs: ``None``/``False`` (default) silent,
        ``True`` a bar on a terminal (tqdm's when installed), or a callable called as
        ``progress(done, total)`` (``total = N(N−1)/2``) after each row block.

    Returns
    -------
    NetworkSummary

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse import ggm
    >>> s = ggm.network_summary(np.array([[2.0, -1.0], [-1.0, 2.0]]), 0.15)
    >>> s.n_edges, s.max_abs, s.density
    (1, 0.5, 1.0)
    """
    t = _check_threshold(threshold)
    report = _scan(progress, "network summary")
    prec = _Precision(precision)
    n = prec.n
    total = 0.0
    largest = 0.0
    count = 0
    with report:
        report.start(_pairs_above(n, n))
        for r0, rho in prec.iter_upper(block_size):
            upper = np.abs(rho)
            if upper.size:
                total += float(upper.sum())
                largest = max(largest, float(upper.max()))
                count += int(np.count_nonzero(upper > t))
            report.update(_pairs_above(r0 + rho.shape[0], n))
    pairs = n * (n - 1) // 2
    return NetworkSummary(
        n_genes=n,
        threshold=t,
        n_edges=count,
        mean_abs=total / pairs if pairs else 0.0,
        max_abs=largest,
        density=count / pairs if pairs else 0.0,
    )


def summary_table(before: NetworkSummary, after: NetworkSummary) -> str:
    """A before/after table of two :class:`NetworkSummary` objects.

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse import ggm
    >>> s = ggm.network_summary(np.eye(3), 0.1)
    >>> print(ggm.summary_table(s, s).splitlines()[0])
    Metric                                Before      After
    """
    rows = [
        (f"Strong edges (|ρ| > {before.threshold:g})", before.n_edges, after.n_edges, "d"),
        ("Mean |partial correlation|", before.mean_abs, after.mean_abs, ".4f"),
        ("Max |partial correlation|", before.max_abs, after.max_abs, ".4f"),
        ("Network density", before.density, after.density, ".4f"),
    ]
    lines = [f"{'Metric':<35} {'Before':>10} {'After':>10}", "-" * 57]
    lines += [f"{name:<35} {a:>10{fmt}} {b:>10{fmt}}" for name, a, b, fmt in rows]
    return "\n".join(lines)


def _keep_largest(
    best: list[tuple[float, int, int, float, float]],
    k: int,
    r0: int,
    rho_old: np.ndarray,
    rho_new: np.ndarray,
) -> None:
    """Push one row block's largest ``|change|`` into the heap ``best`` of size ``k``."""
    nrows, ncols = rho_old.shape
    size_change = np.abs(np.abs(rho_new) - np.abs(rho_old))
    size_change[np.tril_indices(nrows)] = -1.0  # never among the top: not a pair i < j
    flat = size_change.ravel()
    m = min(k, flat.size - nrows * (nrows + 1) // 2)
    if m <= 0:
        return
    for idx in np.argpartition(flat, flat.size - m)[flat.size - m :]:
        a, c = divmod(int(idx), ncols)
        item = (float(flat[idx]), r0 + a, r0 + c, float(rho_old[a, c]), float(rho_new[a, c]))
        if len(best) < k:
            heapq.heappush(best, item)
        elif item > best[0]:
            heapq.heapreplace(best, item)


def top_changed_edges(
    before,
    after,
    k: int = 20,
    *,
    genes: Sequence[str] | None = None,
    block_size: int | None = None,
    progress=None,
) -> EdgeChanges:
    """The ``k`` gene pairs whose ``|ρ|`` changed most between two precisions, streamed.

    Parameters
    ----------
    before, after : (N, N) ndarray, sparse matrix or LinearOperator
        The precisions before and after an update.
    k : int
        Number of pairs.
    genes : sequence of str, optional
        Gene names, carried into the result.
    block_size : int, optional
        Rows per streamed block.
    progress : None, bool or callable, optional
        Report the scan's progress in gene pairs: ``None``/``False`` (default) silent,
        ``True`` a bar on a terminal (tqdm's when installed), or a callable called as
        ``progress(done, total)`` (``total = N(N−1)/2``) after each row block.

    Returns
    -------
    EdgeChanges
        Sorted by ``|change|``, largest first; ``change = |ρ_after| − |ρ_before|``.

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse import ggm
    >>> theta = np.eye(3)
    >>> P = ggm.updated_precision(theta, np.array([[1.0], [1.0], [0.0]]))
    >>> top = ggm.top_changed_edges(theta, P, k=1, genes=["a", "b", "c"])
    >>> top.names(), top.change
    ([('a', 'b')], array([0.5]))
    """
    if int(k) < 1:
        raise ValueError(f"`k` must be a positive integer, got {k!r}")
    k = int(k)
    report = _scan(progress, "changed edges")
    old, new = _Precision(before, "before"), _Precision(after, "after")
    if old.n != new.n:
        raise ValueError(
            f"`before` is {old.n}×{old.n} but `after` is {new.n}×{new.n}; they must match"
        )
    names = _check_genes(genes, old.n)
    size = old.block_size(block_size)
    best: list[tuple[float, int, int, float, float]] = []
    pairs = zip(old.iter_upper(size), new.iter_upper(size), strict=True)
    with report:
        report.start(_pairs_above(old.n, old.n))
        for (r0, rho_old), (_, rho_new) in pairs:
            _keep_largest(best, k, r0, rho_old, rho_new)
            report.update(_pairs_above(r0 + rho_old.shape[0], old.n))
    best.sort(reverse=True)
    i = np.array([e[1] for e in best], dtype=np.intp)
    j = np.array([e[2] for e in best], dtype=np.intp)
    rho_before = np.array([e[3] for e in best])
    rho_after = np.array([e[4] for e in best])
    return EdgeChanges(i, j, rho_before, rho_after, np.abs(rho_after) - np.abs(rho_before), names)
