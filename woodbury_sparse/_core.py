"""The Woodbury matrix as a value: its normalised parts and everything computed from them.

``W = A⁻¹ + U B⁻¹ V`` (``U = X`` and ``V = Xᵀ`` in the symmetric form) is held as a
:class:`State`: the parts and, built once on first use (thread-safe, see ``_cache``), the
products ``A U`` and ``V A``, the capacitance ``O = B + V A U`` with its checked
factorisation, and the ``n×n`` matrix ``A W`` for determinants. The operations read as the
README's formulas:

* ``W x = A⁻¹ x + U B⁻¹ V x`` (:meth:`State.apply`);
* ``W⁻¹ b = A b − (A U) O⁻¹ (V A b)`` (:meth:`State.solve`), refined where it cancels;
* ``det W = det O / (det A · det B)`` (:meth:`State.slogdet`);
* ``W⁻¹ = A − (A U) O⁻¹ (V A)`` as a dense array (:meth:`State.inverse_array`), or read
  a few rows or entries at a time (:meth:`State.inverse_reader`, for ``ggm``).

The public operators (``_operators``) are thin shells over one state; an update
(``_updating``) builds the new state from the old one's parts and caches, handing over
what it may reuse (:class:`Reuse`) as constructor arguments. A
transposed state holds its original (whose caches it reads); the original holds it
weakly, so no reference cycle keeps factorisations alive.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import sparse
from scipy.linalg.blas import dgemm as _dgemm
from scipy.linalg.blas import dnrm2 as _dnrm2
from scipy.linalg.blas import dtrsv as _dtrsv
from scipy.linalg.blas import idamax as _idamax

from . import _blas
from ._blocks import Block, RowReader, all_finite, same_sparse_pattern
from ._cache import Handover, cached_property, peek, seed, weak_cached_property
from ._exceptions import (
    FactorizationError,
    IllConditionedWarning,
    NotPositiveDefiniteError,
    SingularMatrixError,
    warn,
)
from ._factor import Factor, SelectedInverse, factorize, has_selected_inverse
from ._factor._dense import DenseCholesky
from ._validation import Parts

__all__ = [
    "CANCELLATION_FACTOR",
    "DIAGONAL_BLOCK_ENTRIES",
    "MAX_REFINEMENT_STEPS",
    "N_SIDE_LIMIT",
    "N_SIDE_RCOND",
    "QUADRATIC_CANCELLATION",
    "RCOND_WARNING",
    "InverseReader",
    "Reuse",
    "State",
    "sandwich_diagonal",
]

#: Below this estimated reciprocal condition number of the capacitance ``O`` (``√eps``),
#: results may have lost half their digits: an ``IllConditionedWarning`` says so.
RCOND_WARNING: float = float(np.sqrt(np.finfo(np.float64).eps))

#: ``solve`` refines a column automatically when the two terms of
#: ``A b − (A U) O⁻¹ (V A b)`` exceed their difference by more than this factor: the
#: subtraction has then cancelled ``log₂ 8 = 3`` bits or more of the terms' accuracy.
#: ``W @ x`` recomputes such a column of ``A⁻¹ x + U B⁻¹ V x`` without the sum when
#: ``U`` or ``V`` is the identity.
CANCELLATION_FACTOR: float = 8.0

#: :attr:`State._fused_capacitance` forms ``Xᵀ (A X)`` in blocks of rows of ``X``
#: holding about this many entries (256 KiB of float64 per block of X and of the scratch
#: block of A X, cache-resident).
FUSED_ROWS_ENTRIES: int = 1 << 15

#: :meth:`State.inverse_quadratic` takes ``bᵀ A b − rᵀ O⁻¹ r`` (one pass over ``A U``)
#: when neither term exceeds the difference by more than this factor; otherwise it
#: solves (refining as :meth:`State.solve` does) and takes ``bᵀ (W⁻¹ b)``. The one-pass
#: form's error is about ``eps`` times its larger term, the solve-and-dot form's about
#: ``eps`` times ``Σ |bᵢ| (|A b|ᵢ + |A U O⁻¹ r|ᵢ)``, of the same size until the solve's
#: own cancellation test refines: against a long-double reference (p = 20, n = 2000,
#: 100 draws each) their worst relative errors were 2.2e-14 / 1.8e-14 at a ratio of terms
#: of 11, 4.1e-14 / 3.7e-14 at 21 (the benchmark's regression), 9.6e-14 / 6.7e-14 at 33,
#: and 1.6e-13 / 6.5e-14 at 87, where the one-pass form starts to lose.
QUADRATIC_CANCELLATION: float = 32.0

#: At most this many steps of automatic iterative refinement. Each step multiplies the
#: error by about ``eps`` times the cancellation factor (times ``cond(O)`` at worst), so a
#: cancellation of ``1e12`` needs three or four; the loop stops earlier when the residual
#: is at round-off level or stops decreasing.
MAX_REFINEMENT_STEPS: int = 6

#: ``slogdet`` may factorise the dense ``n×n`` matrix ``A W`` (when ``O`` is dense and
#: ill-conditioned and ``n ≤ p``) up to this order: 4096² doubles are 128 MB.
N_SIDE_LIMIT: int = 4096

#: ... and only when ``O``'s estimated reciprocal condition number is below this: above
#: it ``log|det O|`` loses at most about ``eps·1e4 ≈ 2e-12``, not worth a second dense
#: factorisation of up to ``O``'s cost.
N_SIDE_RCOND: float = 1e-4

#: The diagonals of ``W`` and ``W⁻¹`` solve for blocks of columns holding at most this
#: many entries (8 MiB of float64) where no selected inverse applies: memory stays
#: ``O(DIAGONAL_BLOCK_ENTRIES)`` whatever ``n`` and ``p``.
DIAGONAL_BLOCK_ENTRIES: int = 2**20


def _fused_rows(n: int, p: int) -> int:
    """Rows of ``X`` per block of :attr:`State._fused_capacitance` (at least one).

    All of them when ``X`` holds at most ``2 ·`` :data:`FUSED_ROWS_ENTRIES` entries (its
    block and ``A X``'s, 512 KiB each at most, share a 1 MiB L2 cache): one multiply and
    one ``dgemm`` call, each of which costs a first call tens of µs when cold.
    """
    if n * p <= 2 * FUSED_ROWS_ENTRIES:
        return max(1, n)
    return max(1, FUSED_ROWS_ENTRIES // max(p, 1))


_EPS = float(np.finfo(np.float64).eps)
_LOG_2PI = float(np.log(2.0 * np.pi))
_TINY = float(np.finfo(np.float64).tiny)


def _dense_operand(x):
    """Sparse right-hand sides become dense float64 arrays; anything else is left alone."""
    return x.toarray() if sparse.issparse(x) else x


class Reuse(NamedTuple):
    """What an update hands the operator it builds, from the operator it updates.

    ``AU``, ``VA`` and ``O`` (with its factorisation, when built) are the new operator's
    own values, computed from the old one's; ``capacitance_donor`` is the old operator's
    factorised capacitance, whose symbolic analysis the new capacitance's factorisation
    reuses when it has the same sparsity pattern (held until then only).
    """

    AU: Block | None = None
    VA: Block | None = None
    O: Block | None = None  # noqa: E741 (the capacitance is O throughout)
    capacitance_donor: Block | None = None


class State:
    """One Woodbury matrix: ``parts`` and the values computed from them, each built once.

    Parameters
    ----------
    parts : Parts
        The normalised blocks.
    transpose_of : State, optional
        The state this is the transpose of: ``A U``, ``V A`` and ``O`` (with their
        factorisations) are that state's, transposed.
    reuse : Reuse, optional
        What an update computed for this state from the one it updates.
    """

    #: The old capacitance an update handed over (see :class:`Reuse`); taken by ``O``.
    _capacitance_donor: Handover | None = None

    def __init__(
        self, parts: Parts, transpose_of: State | None = None, reuse: Reuse | None = None
    ) -> None:
        self.parts = parts
        self._transpose_of = transpose_of
        self.n = parts.A.shape[0]
        self.p = parts.B.shape[0]
        if reuse is not None:
            seed(self, "AU", reuse.AU)
            seed(self, "VA", reuse.VA)
            seed(self, "O", reuse.O)
            if reuse.capacitance_donor is not None:
                self._capacitance_donor = Handover(reuse.capacitance_donor)

    # -- the transpose -------------------------------------------------------------------
    @property
    def T(self) -> State:
        """The state of ``Wᵀ`` (itself when symmetric), sharing every factorisation."""
        if self.parts.symmetric:
            return self
        if self._transpose_of is not None:
            return self._transpose_of
        return self._transposed

    @weak_cached_property
    def _transposed(self) -> State:
        p = self.parts
        return State(Parts(p.A.T, p.B.T, p.V.T, p.U.T, False), transpose_of=self)

    # -- cached values -------------------------------------------------------------------
    @cached_property
    def AU(self) -> Block:
        if self._transpose_of is not None:
            return self._transpose_of.VA.T
        return self.parts.A.times(self.parts.U)

    @property
    def _fusable(self) -> bool:
        """Whether ``O`` is formed from ``X`` alone (:attr:`_fused_capacitance`)."""
        parts = self.parts
        return (
            self._transpose_of is None
            and parts.symmetric
            and parts.A.kind == "diagonal"
            and parts.U.kind == "dense"
            and parts.U.data.flags.c_contiguous
            and self.p * self.p <= _blas.SMALL_RESULT
        )

    @cached_property
    def _fused_capacitance(self) -> np.ndarray:
        """``B + Xᵀ (A X)`` for a diagonal ``A`` and a dense ``X``, in one pass over ``X``.

        Blocks of :data:`FUSED_ROWS_ENTRIES` entries (:func:`_fused_rows`): each block of
        ``A X`` is formed in one scratch buffer and its share of ``Xᵀ (A X)`` added
        (``dgemm`` with ``β = 1``) while it is in the cache; ``A X`` itself is never
        stored (a log density needs ``Xᵀ (A b)`` only, see :meth:`inverse_quadratic`):
        at ``n = 2·10⁵``, ``p = 20`` the first log density neither writes nor reads back
        the 32 MB of ``A X``. Each block is bit for bit ``d[:, None] * X``'s; the ``p×p``
        sum adds the blocks' products in order, as ``dgemm`` adds its own inner blocks,
        and then ``B`` (dense), as ``B.plus`` would: the capacitance before its checks
        (see :attr:`O`), under one floating-point guard and thread limit.
        """
        parts = self.parts
        d = parts.A.data
        x = parts.U.data
        n, p = x.shape
        rows = _fused_rows(n, p)
        scratch = np.empty((min(rows, n), p))
        acc = np.zeros((p, p), order="F")
        with _blas.one_thread(), np.errstate(over="ignore", invalid="ignore"):  # O checks
            for lo in range(0, n, rows):
                hi = min(n, lo + rows)
                block = scratch[: hi - lo]
                np.multiply(d[lo:hi, None], x[lo:hi], out=block)
                if p:  # acc += x[lo:hi]ᵀ block: both C-ordered, so their Fortran transposes
                    acc = _dgemm(
                        1.0, x[lo:hi].T, block.T, trans_b=1, beta=1.0, c=acc, overwrite_c=1
                    )
            total = parts.B.toarray()  # B + Xᵀ (A X): B.plus(Block(Xᵀ (A X)))'s sum
            total += acc
        return total

    @cached_property
    def VA(self) -> Block:
        if self._transpose_of is not None:
            return self._transpose_of.AU.T
        if self.parts.symmetric:  # V = Xᵀ, and V A = (A X)ᵀ
            return self.AU.T
        return self.parts.V.times(self.parts.A)

    @cached_property
    def O(self) -> Block:  # noqa: E743 (the capacitance is O throughout)
        """The capacitance ``O = B + V A U`` as a block (dense unless large and sparse)."""
        if self._transpose_of is not None:
            return self._transpose_of.O.T
        parts = self.parts
        if self._fusable:  # B + Xᵀ (A X) from X alone, under its own guard
            o = Block.from_matrix(self._fused_capacitance)
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                o = parts.B.plus(parts.V.times(self.AU)).densified()
        if not o.is_finite():
            raise FactorizationError(
                "O",
                "the capacitance O = B + V A U overflowed to inf or NaN; rescale `A`, `B`, "
                "`U`/`V` or `X` (for example to unit diagonal)",
            )
        exact = parts.symmetric and parts.A.symmetric and parts.B.symmetric
        if exact and parts.U.kind == "identity" and o.kind in ("dense", "sparse"):
            # O = B + A, entry by entry, of the exactly symmetric A and B (see
            # Block.symmetric): the sums at (i, j) and (j, i) add the same two numbers, so
            # O is exactly symmetric and the O(nnz) asymmetry check of symmetrized() would
            # only confirm it.
            o = Block(o.kind, o.shape, o.data, True)
        if parts.symmetric and o.kind == "dense" and not o.symmetric and o.shape[0] <= 512:
            # What symmetrized() returns, bit for bit ((M + Mᵀ)/2 is M where M is exactly
            # symmetric), without its tiled asymmetry pass: for a small O (p = 20: 3 µs
            # against 20 µs) that pass costs more than the sum, and nothing reads it here.
            m = o.data
            o = Block.from_matrix(0.5 * (m + m.T), symmetric=True, name="O")
        o = o.symmetrized() if parts.symmetric else o
        o = o if o.name == "O" else o.renamed("O")
        # refactor/with_blocks hand over the old operator's capacitance: when the
        # new O has its sparsity pattern, O's factorisation reuses its symbolic analysis.
        donor = None if self._capacitance_donor is None else self._capacitance_donor.take()
        if donor is not None and same_sparse_pattern(donor, o) and donor.symmetric == o.symmetric:
            o = o.with_factor(analysis_donor=donor.factor)
        elif parts.U.kind == "identity" and parts.V.kind == "identity":
            # O = B + A with a diagonal B has A's pattern when A stores its diagonal: when
            # A is factorised already (a log density factorises it first), O reuses its
            # symbolic analysis, the larger part of a first call on a banded or grid A.
            a_factor = peek(parts.A, "factor")
            if a_factor is not None and same_sparse_pattern(parts.A, o):
                o = o.with_factor(analysis_donor=a_factor)
        if o.kind == "sparse":  # other kinds have no bound (0.0)
            _ = o.rcond_bound  # wanted by the warning test; the singularity check reuses it
        return o

    @cached_property
    def capacitance_rcond(self) -> float:
        if self.p == 0:
            return 1.0
        factor = self.O.factor
        if factor.rcond_estimate is not None:  # made by factorize's singularity check
            return factor.rcond_estimate
        # ‖O‖₁ costs a pass over O; CHOLMOD's and the closed-form estimates ignore it.
        return factor.rcond(self.O.one_norm() if factor.rcond_needs_norm else np.nan)

    def capacitance_rcond_below(self, threshold: float) -> bool:
        """Whether ``O``'s reciprocal condition number may be below ``threshold``.

        False without solves when ``O``'s diagonal dominance proves it at least
        ``threshold`` (:attr:`Block.rcond_bound`, one ``O(nnz)`` pass over a sparse ``O``:
        the usual capacitance ``B + A`` of a GMRF plus noise); otherwise the estimate
        :attr:`capacitance_rcond` (four to six solves with ``O``) decides. The bound only
        errs low, so both answer alike wherever the bound proves anything.
        """
        o = self.O
        if self.p == 0 or (o.kind == "sparse" and o.rcond_bound >= threshold):
            return False
        return self.capacitance_rcond < threshold

    @cached_property
    def capacitance_factor(self):
        """``O``'s factorisation; warns (once per value) when ``O`` is ill-conditioned."""
        # Cached once checked: the warning is part of building the value, hence given once.
        factor = self.O.factor
        if self.capacitance_rcond_below(RCOND_WARNING):
            rcond = self.capacitance_rcond
            warn(
                f"the capacitance O = B + V A U is ill-conditioned (estimated reciprocal "
                f"condition number {rcond:.1e} < {RCOND_WARNING:.1e}): solves and "
                "log-determinants may have lost half their digits or more; "
                "solve(b, refine=k) can restore accuracy when W itself is "
                "well-conditioned",
                IllConditionedWarning,
            )
        return factor

    # -- the operations ------------------------------------------------------------------
    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(_dense_operand(x), dtype=np.float64)
        parts = self.parts
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # see _finite
            first = parts.A.factor.solve(x)
            if self.p == 0:
                return _finite(np.array(first), "W @ x")
            middle = parts.B.factor.solve(parts.V.matmul(x))  # B⁻¹ V x
            second = parts.U.matmul(middle)
            result = _finite(first + second, "W @ x")
            cancelled = _cancelled(result, first, second)
            if cancelled is None:
                return result
            # The terms cancelled: where U or V is the identity, W factors without a sum,
            # through the capacitance (formed once, its entries the differences that
            # cancel): W = B⁻¹ O A⁻¹ (U = I) or A⁻¹ O B⁻¹ (V = I).
            if parts.U.kind == "identity":
                exact = parts.B.factor.solve(self.O.matmul(first))
            elif parts.V.kind == "identity":
                exact = parts.A.factor.solve(self.O.matmul(middle))  # V = I: B⁻¹ x
            else:  # no product free of the sum: say so once half the digits may be gone
                big = np.maximum(_max_abs(first), _max_abs(second))
                loss = big / np.maximum(_max_abs(result), _TINY)
                if np.max(loss) * RCOND_WARNING > 1.0:
                    warn(
                        "W @ x: the two terms of A⁻¹ x + U B⁻¹ V x cancelled (a term exceeds "
                        f"the result {np.max(loss):.1e} times, > 1/√eps): the product "
                        "carries their rounding errors magnified as much",
                        IllConditionedWarning,
                    )
                return result
        exact = _finite(np.asarray(exact), "W @ x")
        if result.ndim == 1:
            return exact
        result[:, cancelled] = exact[:, cancelled]
        return result

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``W⁻¹ rhs``, refined where the subtraction of the general formula cancelled."""
        x, cancelled = self.solve_once(rhs)
        if cancelled is None:
            return x
        if rhs.ndim == 1:
            return self.refined(rhs)
        x[:, cancelled] = self.refined(rhs[:, cancelled])
        return x

    def solve_once(self, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray | np.bool_ | None]:
        """``W⁻¹ rhs`` by one pass of the formulas (see :meth:`solve`), unrefined.

        Returns the solution (a new array) and, for the general formula, which columns
        cancelled by more than :data:`CANCELLATION_FACTOR` (a boolean array with one entry
        per column, or a 0-d one for a vector), or ``None`` when none did.
        """
        parts = self.parts
        A, B, U, V = parts.A, parts.B, parts.U, parts.V
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # see _finite
            if self.p == 0:
                return _finite(_own(A.matmul(rhs), rhs), "W.solve"), None
            factor = self.capacitance_factor
            if U.kind == "identity":  # W = B⁻¹ (B + V A) A⁻¹ = B⁻¹ O A⁻¹
                x = A.matmul(factor.solve(B.matmul(rhs)))
                return _finite(_own(x, rhs), "W.solve"), None
            if V.kind == "identity":  # W = A⁻¹ (B + A U) B⁻¹ = A⁻¹ O B⁻¹
                x = B.matmul(factor.solve(A.matmul(rhs)))
                return _finite(_own(x, rhs), "W.solve"), None
            first = A.matmul(rhs)
            second = self.AU.matmul(factor.solve(V.matmul(first)))
            x = _finite(first - second, "W.solve")
        return x, _cancelled(x, first, second)

    def inverse_quadratic(self, dev: np.ndarray) -> float | np.ndarray:
        """``devᵢ W⁻¹ devᵢᵀ`` for one vector ``dev`` (a float) or every row of a 2-D one.

        ``dev`` is validated (float64, finite, ``n`` columns). For a symmetric ``W`` with
        ``U = X`` not the identity, ``bᵀ W⁻¹ b = bᵀ A b − rᵀ O⁻¹ r`` with ``r = Xᵀ (A b)``
        (``= (A X)ᵀ b``, ``A`` being symmetric): one product with ``A`` and one pass over
        ``X`` (the solve reads ``A X`` twice), and no ``A X`` to form or keep. Where the two terms
        cancel by more than :data:`QUADRATIC_CANCELLATION`, or the result is not finite,
        the row is computed as ``bᵀ (W⁻¹ b)`` with the refined solve instead, so the result
        is never less accurate than the solve's.
        """
        parts = self.parts
        if not parts.symmetric or self.p == 0 or parts.U.kind == "identity":
            return self._solved_quadratic(dev)
        factor = self.capacitance_factor  # factorises and checks O, warns once
        if dev.ndim == 1:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                ab = parts.A.matmul(dev)
                r = parts.V.matmul(ab)  # Xᵀ (A b) = (A X)ᵀ b: p entries
                first = float(_blas.dot(dev, ab))
                if isinstance(factor, DenseCholesky):  # ‖L⁻¹ r‖²: one triangular solve
                    half = _dnrm2(_dtrsv(factor.lower, r, lower=1))
                    second = half * half  # Python floats: inf, never OverflowError (**)
                else:
                    second = float(r @ factor.solve(r))
            # Python floats from here: no floating-point state to guard.
            quad = first - second
            if math.isfinite(quad) and max(abs(first), abs(second)) <= (
                QUADRATIC_CANCELLATION * quad
            ):
                return quad
            return self._solved_quadratic(dev)
        columns = dev.T
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ab = parts.A.matmul(columns)
            r = parts.V.matmul(ab)  # Xᵀ (A b) = (A X)ᵀ b: p entries per row
            first = np.einsum("ij,ji->i", dev, ab)
            second = np.einsum("ij,ij->j", r, factor.solve(r))
            quad = first - second
            terms = np.maximum(np.abs(first), np.abs(second))
            good = np.isfinite(quad) & (terms <= QUADRATIC_CANCELLATION * quad)
        if not np.all(good):
            bad = np.flatnonzero(~good)
            quad[bad] = self._solved_quadratic(dev[bad])
        return quad

    def _solved_quadratic(self, dev: np.ndarray) -> float | np.ndarray:
        """``devᵢ W⁻¹ devᵢᵀ`` by the (refined) solve and a dot product per row.

        A row whose form is not finite (its terms overflowed: entries beyond about
        ``1e154``) is computed again from ``dev / 2ᵏ``, scaled exactly by a power of two
        near its largest entry, and the result multiplied by ``4ᵏ``: ``+inf`` where the
        form itself lies beyond the float64 range (a log density of −inf), never NaN.
        """
        if dev.ndim == 1:
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                quad = float(_blas.dot(dev, self.solve(dev)))  # one thread: _blas.UNTHREADED
            return quad if math.isfinite(quad) else self._scaled_quadratic(dev)
        if dev.shape[0] == 0:
            return np.zeros(0)
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            quad = np.einsum("ij,ij->j", dev.T, self.solve(dev.T))
        for i in np.flatnonzero(~np.isfinite(quad)):
            quad[i] = self._scaled_quadratic(dev[i])
        return quad

    def _scaled_quadratic(self, dev: np.ndarray) -> float:
        """``dev W⁻¹ devᵀ`` for one row, from ``dev / 2ᵏ`` (see :meth:`_solved_quadratic`)."""
        exponent = math.frexp(_max_abs(dev))[1]  # 2^(k−1) ≤ max |devᵢ| < 2ᵏ
        unit = np.ldexp(dev, -exponent)  # exact, but for entries that become subnormal
        with np.errstate(over="ignore", invalid="ignore"):
            quad = float(_blas.dot(unit, self.solve(unit)))
        half = 2.0 ** (exponent - 1)  # at most 2¹⁰²³: representable
        return quad * half * half * 4.0  # exact powers of two; inf (no error) beyond range

    def refined(self, rhs: np.ndarray) -> np.ndarray:
        """``W⁻¹ rhs`` by iterative refinement in ``s = A⁻¹ x``, without factorising ``A``.

        ``x = A s`` where ``s`` solves ``M s = rhs`` with ``M = W A = I + U B⁻¹ V A`` and
        ``M⁻¹ = A⁻¹ W⁻¹ = I − U O⁻¹ V A``: the residual ``rhs − s − U B⁻¹ V (A s)`` needs
        products with ``A`` and a solve with ``B`` only (where refining ``x`` itself
        would need solves with ``A``). The relative change of ``x = A s`` estimates the
        error of each iterate. A column takes a correction only while the changes shrink,
        and stops once they are at round-off level (``≤ eps``) or stop halving. Where the
        smallest change stays above ``√eps`` (half the digits still in doubt), an
        :class:`IllConditionedWarning` says so.
        """
        parts = self.parts
        A, B, U, V = parts.A, parts.B, parts.U, parts.V
        factor = self.O.factor  # factorised (and checked) by solve_once already
        tiny = np.finfo(np.float64).tiny

        def m_inverse(r):  # M⁻¹ r = r − U O⁻¹ V A r
            return r - U.matmul(factor.solve(V.matmul(A.matmul(r))))

        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # see _finite
            s = m_inverse(rhs)
            x = A.matmul(s)
            previous = np.full(np.shape(_max_abs(rhs)), np.inf)
            active = np.ones_like(previous, dtype=bool)
            for _ in range(MAX_REFINEMENT_STEPS):
                residual = rhs - s - U.matmul(B.factor.solve(V.matmul(x)))
                candidate = s + m_inverse(residual)
                candidate_x = _finite(A.matmul(candidate), "W.solve (refinement)")
                size = _max_abs(candidate_x - x) / np.maximum(_max_abs(candidate_x), tiny)
                accept = active & (size < previous)
                s = np.where(accept, candidate, s)
                x = np.where(accept, candidate_x, x)
                active = accept & (size > _EPS) & (size < 0.5 * previous)
                previous = np.where(accept, size, previous)
                if not np.any(active):
                    break
        worst = float(np.max(previous))
        if worst > RCOND_WARNING:
            warn(
                "W.solve: the two terms of A b − A U O⁻¹ V A b cancelled, and iterative "
                f"refinement stalled with corrections of relative size {worst:.1e} "
                f"(> √eps = {RCOND_WARNING:.1e}): the solution may have lost more than half "
                "its digits (W, A or O is ill-conditioned, or A and B are scaled too far "
                "apart)",
                IllConditionedWarning,
            )
        return _finite(np.array(x), "W.solve")

    def slogdet(self) -> tuple[float, float]:
        """``(sign, log|det W|)`` by the determinant lemma (see ``WoodburyMatrix.slogdet``)."""
        parts = self.parts
        sign_a, log_a = parts.A.factor.slogdet
        try:
            _ = self.O.factor  # factorised and checked here: a singular O has no logdet
            ill = self.capacitance_rcond_below(N_SIDE_RCOND)  # the n-side route's test
        except SingularMatrixError:
            return 0.0, -np.inf
        n_side = self.n_side if ill else None
        if n_side is not None and n_side[1] > 10 * self.capacitance_rcond:
            factor_m, rcond_m = n_side
            if rcond_m < RCOND_WARNING:
                _ = self.capacitance_factor  # O is worse still: its warning applies
            sign_m, log_m = factor_m.slogdet
            sign = sign_m * sign_a
            return (0.0, -np.inf) if sign == 0 else (sign, log_m - log_a)
        sign_b, log_b = parts.B.factor.slogdet
        factor_o = self.capacitance_factor
        sign_o, log_o = factor_o.slogdet
        if (
            parts.symmetric
            and parts.A.factor.positive_definite
            and parts.B.factor.positive_definite
            and not factor_o.positive_definite
        ):
            _ = self.lu_capacitance_warned  # warns the first time only
        sign = sign_o * sign_a * sign_b
        if sign == 0:
            return 0.0, -np.inf
        return sign, log_o - log_a - log_b

    @cached_property
    def lu_capacitance_warned(self) -> bool:
        # Warning once per operator: the warning is part of building this cached value.
        warn(
            "the capacitance O = B + Xᵀ A X is positive definite in exact arithmetic "
            "(A and B are), but its Cholesky factorisation failed in floating point: O "
            "is numerically singular, and log|det O| comes from an LU factorisation",
            IllConditionedWarning,
        )
        return True

    @cached_property
    def n_side(self):
        """``(factor, rcond)`` of the ``n×n`` matrix ``A W = I + (A U)(B⁻¹ V)``, or ``None``.

        ``None`` unless ``O`` is dense and ``0 < n ≤ min(p, N_SIDE_LIMIT)``, or when the
        matrix is not finite or is singular to working precision.
        """
        parts = self.parts
        n = self.n
        if not 0 < n <= min(self.p, N_SIDE_LIMIT) or self.O.kind != "dense":
            return None
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked below
            m = np.array(self.AU.matmul(parts.B.factor.solve(parts.V.toarray())))
            m[np.diag_indices(n)] += 1.0
        if not all_finite(m):
            return None
        block = Block.from_matrix(m, name="A W")
        try:
            factor = block.factor
        except FactorizationError:
            return None
        return factor, factor.rcond(block.one_norm() if factor.rcond_needs_norm else np.nan)

    # -- symmetric states: inertia and a square root -------------------------------------
    def positive_count(self) -> int | None:
        """The number of positive eigenvalues of a symmetric ``W``, or ``None`` if unknown.

        With ``H = [[A, A X], [Xᵀ A, O]]`` the two Schur complements give
        ``In(A) + In(B) = In(O) + In(W⁻¹)`` (Haynsworth), so
        ``n₊(W) = n₊(A) + n₊(B) − n₊(O)``: ``n`` when ``A`` and ``B`` are positive
        definite, otherwise the inertia of the three factorised blocks decides (``None``
        when a factorisation does not reveal it).
        """
        parts = self.parts
        if parts.A.factor.positive_definite and parts.B.factor.positive_definite:
            return self.n
        in_a, in_b, in_o = (b.positive_count() for b in (parts.A, parts.B, self.O))
        if in_a is None or in_b is None or in_o is None:
            return None
        return in_a + in_b - in_o

    @cached_property
    def gaussian_log_normaliser(self) -> float:
        """``n log 2π + log det W`` for the density of ``N(μ, W)``; built once.

        Raises unless ``W`` is positive definite: all ``n`` of its eigenvalues positive,
        counted from the inertia of ``A``, ``B`` and ``O`` (:meth:`positive_count`);
        nothing forms or factorises ``W``. Not cached when it raises.
        """
        positive = self.positive_count()
        if positive is None:
            raise FactorizationError(
                "W",
                "cannot establish that the covariance W is positive definite: the "
                "factorisations of A, B and O do not reveal their inertia",
            )
        if positive < self.n:
            raise NotPositiveDefiniteError(
                "W",
                f"the covariance W = A⁻¹ + X B⁻¹ Xᵀ is not positive definite "
                f"({self.n - positive} of its eigenvalues are ≤ 0), so N(μ, W) has no density",
            )
        sign, logdet = self.slogdet()
        if sign <= 0:  # pragma: no cover - excluded by the inertia check up to round-off
            raise NotPositiveDefiniteError("W", "det W ≤ 0: W is not positive definite")
        return self.n * _LOG_2PI + logdet

    def colour(self, z: np.ndarray) -> np.ndarray:
        """``G z`` with ``G = [R_A⁻ᵀ, X R_B⁻ᵀ]`` (``n × (n+p)``), so ``G Gᵀ = W``.

        ``z`` has shape ``(n + p, k)``; ``A = R_A R_Aᵀ`` and ``B = R_B R_Bᵀ`` are Cholesky
        factorisations (with the fill-reducing permutation applied). Raises
        ``NotPositiveDefiniteError`` unless both are positive definite.
        """
        parts = self.parts
        n, p = self.n, self.p
        for name, block in (("A", parts.A), ("B", parts.B)):
            if not block.factor.positive_definite:
                raise NotPositiveDefiniteError(
                    name,
                    f"sampling N(μ, W) needs `{name}` positive definite (a draw with covariance "
                    f"{name}⁻¹), but its factorisation ({block.factor.method}) shows it is not",
                )
        out = np.array(parts.A.factor.solve_sqrt_t(z[:n]))
        if p:
            out += parts.U.matmul(parts.B.factor.solve_sqrt_t(z[n:]))
        return out

    # -- diagonals -------------------------------------------------------------------------
    @cached_property
    def diagonal(self) -> np.ndarray:
        """``diag W = diag(A⁻¹) + diag(U B⁻¹ V)`` (see ``WoodburyMatrix.diagonal``).

        Computed once and read-only: callers hand out copies.
        """
        if self._transpose_of is not None:  # diag Wᵀ = diag W, with the original's factors
            return self._transpose_of.diagonal
        parts = self.parts
        identity = Block.identity(self.n)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # see _finite
            out = sandwich_diagonal(identity, parts.A, identity)
            if self.p:
                out = out + sandwich_diagonal(parts.U, parts.B, parts.V)
        out = _finite(np.asarray(out, dtype=np.float64), "W.diagonal()")
        out.flags.writeable = False
        return out

    @cached_property
    def inverse_diagonal(self) -> np.ndarray:
        """``diag W⁻¹`` (see ``WoodburyInverse.diagonal``); computed once, read-only."""
        if self._transpose_of is not None:
            return self._transpose_of.inverse_diagonal
        parts = self.parts
        A, B, U, V = parts.A, parts.B, parts.U, parts.V
        if self.p == 0:
            out = A.diagonal()
            out.flags.writeable = False
            return out
        factor = self.capacitance_factor  # factorises (and checks) O; warns once if needed
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # see _finite
            if U.kind == "identity":  # W⁻¹ = A O⁻¹ B: no subtraction
                out = sandwich_diagonal(A, self.O, B, factor)
            elif V.kind == "identity":  # W⁻¹ = B O⁻¹ A
                out = sandwich_diagonal(B, self.O, A, factor)
            else:
                first = A.diagonal()
                second = sandwich_diagonal(self.AU, self.O, self.VA, factor)
                out = _finite(first - second, "W.inv().diagonal()")
                big = np.maximum(np.abs(first), np.abs(second))
                cancelled = np.flatnonzero(CANCELLATION_FACTOR * np.abs(out) < big)
                if cancelled.size:
                    out[cancelled] = self._solved_diagonal(cancelled)
        out = _finite(np.asarray(out, dtype=np.float64), "W.inv().diagonal()")
        out.flags.writeable = False
        return out

    def _solved_diagonal(self, rows: np.ndarray) -> np.ndarray:
        """``(W⁻¹)[i, i]`` for ``i`` in ``rows`` by solves with unit vectors (refined)."""
        n = self.n
        out = np.empty(rows.size)
        k = max(1, DIAGONAL_BLOCK_ENTRIES // max(n, 1))
        for lo in range(0, rows.size, k):
            chunk = rows[lo : lo + k]
            unit = np.zeros((n, chunk.size))
            unit[chunk, np.arange(chunk.size)] = 1.0
            out[lo : lo + chunk.size] = self.solve(unit)[chunk, np.arange(chunk.size)]
        return out

    # -- W⁻¹ ------------------------------------------------------------------------------
    def low_rank_inverse(self) -> tuple[np.ndarray, np.ndarray]:
        """``(L, R)`` with ``W⁻¹ = A − L R``: ``L = A U`` (``n×p``), ``R = O⁻¹ V A`` (``p×n``).

        Dense, for reading ``W⁻¹`` a few rows or its diagonal at a time (``ggm``).
        """
        if self.p == 0:
            return np.zeros((self.n, 0)), np.zeros((0, self.n))
        left = self.AU.toarray() if self.AU.kind != "dense" else self.AU.data
        return left, self.O.factor.solve(self.VA.toarray())

    def inverse_reader(self) -> InverseReader:
        """``W⁻¹ = A − L R`` read a few rows, entries or its diagonal at a time (``ggm``)."""
        return InverseReader(self.parts.A, *self.low_rank_inverse())

    def inverse_array(self) -> np.ndarray:
        """``W⁻¹`` as a dense ndarray (see ``WoodburyInverse.toarray``)."""
        parts = self.parts
        a = parts.A
        if self.p == 0:
            return a.toarray()
        factor = self.capacitance_factor
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # see _finite
            if parts.U.kind == "identity":
                out = np.asarray(a.matmul(factor.solve(parts.B.toarray())))
                return _finite(out, "W.inv().toarray()")
            if parts.V.kind == "identity":
                out = np.asarray(parts.B.matmul(factor.solve(a.toarray())))
                return _finite(out, "W.inv().toarray()")
            # One fresh n×n array, a copy of A, from which one GEMM subtracts the product
            # in place: at n in the thousands, every n×n temporary or pass costs as much
            # as the product itself.
            left = self.AU.data if self.AU.kind == "dense" else self.AU.toarray()
            right = factor.solve(self.VA.toarray())
            out = a.toarray()
            _blas.subtract_product(out, left, right)
            out = _finite(out, "W.inv().toarray()")
        cancelled = _cancelled_columns(a, out, left, right)
        if np.any(cancelled):
            out[:, cancelled] = self.refined(np.eye(self.n)[:, cancelled])
        return out


class InverseReader:
    """``W⁻¹ = A − L R`` (``L = A U``, ``R = O⁻¹ V A``, dense) read by rows and entries.

    Holds ``A`` in a row-sliceable form and the two dense factors: ``O(n p)`` memory,
    never the ``n×n`` inverse.

    Parameters
    ----------
    a : Block
        ``A``.
    left, right : ndarray
        ``L`` (``n×p``) and ``R`` (``p×n``).
    """

    def __init__(self, a: Block, left: np.ndarray, right: np.ndarray) -> None:
        self._a = a
        self.left = left
        self.right = right

    @cached_property
    def _a_rows(self) -> RowReader:  # made on the first read of rows or entries only
        return self._a.row_reader()

    def rows(self, r0: int, r1: int, c0: int = 0) -> np.ndarray:
        """Rows ``r0:r1``, columns ``c0:`` of ``W⁻¹``, as a new dense array."""
        return self._a_rows.rows(r0, r1, c0) - self.left[r0:r1] @ self.right[:, c0:]

    def diagonal(self) -> np.ndarray:
        """The diagonal of ``W⁻¹``."""
        return self._a.diagonal() - np.einsum("ij,ji->i", self.left, self.right)

    def entries(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """The entries ``(i[k], j[k])`` of ``W⁻¹`` as a 1-D array."""
        return self._a_rows.entries(i, j) - np.einsum("ij,ji->i", self.left[i], self.right[:, j])


def sandwich_diagonal(
    left: Block, middle: Block, right: Block, factor: Factor | None = None
) -> np.ndarray:
    """``diag(left · middle⁻¹ · right)`` without any ``n×n`` (or ``n×p``) array.

    ``d[i] = Σⱼₖ left[i, j] (middle⁻¹)[j, k] right[k, i]`` for ``left`` ``n×p``, the
    square ``middle`` ``p×p`` and ``right`` ``p×n``: ``diag(A⁻¹)`` is
    ``sandwich_diagonal(I, A, I)``, the second term of ``diag W`` is
    ``sandwich_diagonal(U, B, V)``. One of three routes, by the blocks' kinds:

    * ``middle`` identity or diagonal: ``rowsum(left ∘ (middle⁻¹ right)ᵀ)`` in closed
      form, ``O(nnz(left) + nnz(right))`` (``O(n p)`` when dense);
    * ``middle`` sparse with a symmetric ``L D Lᵀ`` factorisation, ``left`` and
      ``right`` not dense: the terms read ``(middle⁻¹)[j, k]`` at the pairs with
      ``left[i, j] ≠ 0 ≠ right[k, i]`` for some ``i`` (the pattern of ``|left|ᵀ |right|ᵀ``;
      the diagonal only when both are diagonal). When all lie on the pattern of the
      factor ``L + Lᵀ`` (always for the diagonal, the pattern of ``middle``, a selection),
      one Takahashi recursion on ``L`` (about the cost of the factorisation) gives them,
      located in ``L``'s storage by a sorted search, and the terms are summed row by row;
      ``O(T log nnz(L))`` for ``T`` terms, in chunks of bounded memory. Otherwise the
      pattern is enlarged first (:func:`_covering_pattern`: for an AR(1) ``A`` and
      ``B`` with ``X = I``, ``A·B`` is pentadiagonal, a factor of bandwidth 2);
    * otherwise (dense blocks, general sparse LU, a factor the recursion does not
      accept): column blocks of ``Y = middle⁻¹ right[:, J]`` (``p×k``), then
      ``d[J] = rowsum(left[J] ∘ Yᵀ)``, with ``p·k ≤`` :data:`DIAGONAL_BLOCK_ENTRIES`.
      That costs solves with ``n`` right-hand sides in all: ``O(p² n)`` for a dense
      ``middle`` (cheap for small ``p``), ``O(n · nnz(factor))`` for a sparse one.

    Parameters
    ----------
    left, middle, right : Block
        ``n×p``, ``p×p`` and ``p×n``.
    factor : Factor, optional
        ``middle``'s factorisation when the caller holds a checked one (``O``'s);
        default ``middle.factor``.
    """
    n, p = left.shape
    if p == 0:
        return np.zeros(n)
    # Built (and checked: a singular middle raises here, by name) in every route. A sparse
    # block of the general form that is exactly symmetric (A = Q₁ with U, V given, say)
    # is factorised as symmetric here, so that its selected inverse serves.
    if factor is None:
        exact = middle.kind == "sparse" and not middle.symmetric and middle.asymmetry() == 0.0
        if exact:
            factor = factorize(middle.data, "sparse", p, True, middle.name)
        else:
            factor = middle.factor
    if middle.kind in ("identity", "diagonal"):
        scale = 1.0 / middle.diagonal()
        if left.kind == "identity" and right.kind == "identity":
            return scale
        scaled = _scale_rows(right.operand, scale)
        return _product_diagonal(left.operand, scaled)
    if middle.kind == "sparse" and "dense" not in (left.kind, right.kind):
        selected = _selected_sandwich_diagonal(left, middle, right, factor)
        if selected is not None:
            return selected
    return _blocked_sandwich_diagonal(left, right, factor)


def _scale_rows(m, scale: np.ndarray):
    """``diag(scale) · m`` for a dense or sparse ``m``."""
    if sparse.issparse(m):
        return sparse.csr_array(sparse.diags_array(scale) @ m)
    return m * scale[:, None]


def _product_diagonal(left, right) -> np.ndarray:
    """``diag(left @ right) = rowsum(left ∘ rightᵀ)``, dense or sparse, in ``O(nnz)``."""
    if sparse.issparse(left):
        product = sparse.csr_array(left).multiply(right.T)
    elif sparse.issparse(right):
        product = sparse.csr_array(right.T).multiply(left)
    else:
        return np.einsum("ij,ji->i", left, right)
    return np.asarray(product.sum(axis=1), dtype=np.float64).ravel()


#: Terms ``left[i, j] (M⁻¹)[j, k] right[k, i]`` gathered at a time by the selected route.
_TERMS_PER_CHUNK: int = 1 << 22


class _Terms:
    """The terms of ``Σⱼₖ left[i, j] (M⁻¹)[j, k] right[k, i]``, enumerated by rows ``i``.

    Row ``i`` contributes one term per pair of a stored ``left[i, j]`` and a stored
    ``right[k, i]``; they are produced in chunks of rows holding at most
    :data:`_TERMS_PER_CHUNK` terms, as arrays ``(i, j, k, left[i, j]·right[k, i])``.
    """

    def __init__(self, left: Block, right: Block) -> None:
        if left.kind == "sparse" and left.symmetric:  # its CSC arrays are its CSR arrays
            m = left.data
            self.rows = sparse.csr_array((m.data, m.indices, m.indptr), shape=m.shape)
        else:
            self.rows = sparse.csr_array(left.operand)
        self.cols = sparse.csc_array(right.operand)
        self.n = self.rows.shape[0]
        self.per_row = np.diff(self.rows.indptr).astype(np.int64) * np.diff(self.cols.indptr)
        ends = np.cumsum(self.per_row)
        cuts, start = [0], 0
        while cuts[-1] < self.n:  # row ranges of at most _TERMS_PER_CHUNK terms (or one row)
            stop = int(np.searchsorted(ends, start + _TERMS_PER_CHUNK, side="right"))
            stop = max(stop, cuts[-1] + 1)
            cuts.append(min(stop, self.n))
            start = int(ends[cuts[-1] - 1])
        self.cuts = cuts

    def __iter__(self):
        rows, cols = self.rows, self.cols
        left_counts, right_counts = np.diff(rows.indptr), np.diff(cols.indptr)
        for r0, r1 in zip(self.cuts[:-1], self.cuts[1:], strict=True):
            count = self.per_row[r0:r1]
            i = np.repeat(np.arange(r0, r1, dtype=np.int64), count)
            if np.all(right_counts[r0:r1] == 1):  # right diagonal or a selection: k fixed
                jpos = np.arange(rows.indptr[r0], rows.indptr[r1], dtype=np.int64)
                kpos = cols.indptr[i]
            elif np.all(left_counts[r0:r1] == 1):  # left diagonal or a selection: j fixed
                jpos = rows.indptr[i]
                kpos = np.arange(cols.indptr[r0], cols.indptr[r1], dtype=np.int64)
            else:
                offset = np.arange(i.size, dtype=np.int64)
                offset -= np.repeat(np.cumsum(count) - count, count)
                width = right_counts[i]
                jpos = rows.indptr[i] + offset // width
                kpos = cols.indptr[i] + offset % width
            weight = rows.data[jpos] * cols.data[kpos]
            j = rows.indices[jpos].astype(np.int64)  # j·p + k overflows int32 for p > 46 340
            yield r0, r1, i, j, cols.indices[kpos].astype(np.int64), weight


def _selected_sandwich_diagonal(
    left: Block, middle: Block, right: Block, factor: Factor
) -> np.ndarray | None:
    """``diag(left M⁻¹ right)`` from selected entries of ``M⁻¹``; None if not applicable.

    Every term reads ``(M⁻¹)[j, k]`` at a pair of the pattern of ``|left|ᵀ |right|ᵀ``.
    Where all lie on the factor's pattern, one recursion on it serves; otherwise the
    pattern is enlarged (see :func:`_covering_pattern`). None when ``M`` has no
    symmetric ``L D Lᵀ`` (the caller solves in blocks).
    """
    if not has_selected_inverse(factor):  # a symmetric L D Lᵀ of the symmetric middle
        return None
    pattern = SelectedInverse(factor, definite=False)
    diagonal = ("identity", "diagonal")
    if left.kind in diagonal and right.kind in diagonal:  # the pairs (i, i): no search
        return left.diagonal() * pattern.diagonal() * right.diagonal()
    if left.kind in diagonal or right.kind in diagonal:
        # One side diagonal (X = I with a diagonal B, say): the pairs are the other
        # side's pattern; when it lies within M's own (so within L + Lᵀ), the selected
        # inverse as a matrix and SciPy's compiled elementwise product serve, with no
        # search (measured 1.9× faster than the terms below for AR(1)+noise at 10⁶).
        other = right if left.kind in diagonal else left
        if other.kind == "sparse" and _pattern_within(other.data, middle.data):
            selected = pattern.matrix()
            if right.kind in diagonal:  # right[i, i] Σⱼ left[i, j] S[j, i]
                return _product_diagonal(left.operand, selected) * right.diagonal()
            return left.diagonal() * _product_diagonal(selected, right.operand)
    terms = _Terms(left, right)
    # One chunk (the usual case) is located once; several are enumerated twice (the first
    # pass only checks that the pattern holds every pair), keeping memory bounded.
    single = len(terms.cuts) == 2
    kept = None
    for r0, r1, i, j, k, weight in terms:
        positions = pattern.locate(j, k)
        if np.any(positions < 0):
            pattern, kept = _covering_pattern(middle, factor, pattern, terms), None
            break
        if single:
            kept = (r0, r1, i, positions, weight)
    values = pattern.values
    out = np.zeros(terms.n)
    chunks = (
        [kept]
        if kept is not None
        else ((r0, r1, i, pattern.locate(j, k), w) for r0, r1, i, j, k, w in terms)
    )
    for r0, r1, i, positions, weight in chunks:
        contribution = weight * values[positions]
        out[r0:r1] = np.bincount(i - r0, weights=contribution, minlength=r1 - r0)
    return out


def _pattern_within(m: sparse.csc_array, container: sparse.csc_array) -> bool:
    """Whether every stored position of ``m`` holds a nonzero of ``container``.

    The nonzeros of a symmetric matrix lie on the pattern of its factor ``L + Lᵀ``
    (explicit zeros need not: SuperLU drops them), which is symmetric, so ``mᵀ``'s
    positions are then on it too. Compiled elementwise products, ``O(nnz)``.
    """
    if m.shape != container.shape:
        return False
    ones = _ones_pattern(m)
    nonzero = sparse.csr_array(container)
    nonzero.eliminate_zeros()
    return ones.multiply(_ones_pattern(nonzero)).nnz == ones.nnz


def _ones_pattern(m) -> sparse.csr_array:
    """The stored pattern of a sparse matrix as a CSR array of ones."""
    m = sparse.csr_array(m)
    return sparse.csr_array((np.ones(m.nnz), m.indices, m.indptr), shape=m.shape)


def _covering_pattern(
    middle: Block, factor: Factor, pattern: SelectedInverse, terms: _Terms
) -> SelectedInverse:
    """A factor pattern of ``M`` holding every pair ``terms`` reads.

    With CHOLMOD, one more (compiled) factorisation of ``M`` with explicit zeros at all
    the pairs (CHOLMOD keeps them in its analysis; its fill-reducing ordering is its own,
    so every pair is padded, not only those off the first factor); otherwise (SuperLU,
    which drops explicit zeros, or when that factorisation fails or misses a pair)
    ``pattern`` padded symbolically with the pairs off it.
    """
    p = middle.shape[0]
    needed = np.unique(np.concatenate([j * p + k for _, _, _, j, k, _ in terms]))
    rows, cols = needed // p, needed % p
    if factor.method.startswith("cholmod"):
        enlarged = _with_explicit_zeros(
            middle.data, np.concatenate((rows, cols)), np.concatenate((cols, rows))
        )
        try:
            padded = factorize(enlarged, "sparse", p, True, middle.name)
        except FactorizationError:
            padded = None
        if padded is not None and has_selected_inverse(padded):
            candidate = SelectedInverse(padded, definite=False)
            if np.all(candidate.locate(rows, cols) >= 0):
                return candidate
    missing = pattern.locate(rows, cols) < 0
    return pattern.padded(rows[missing], cols[missing])


def _with_explicit_zeros(m: sparse.csc_array, rows: np.ndarray, cols: np.ndarray):
    """``m`` with explicit zeros stored at ``(rows[k], cols[k])`` where it has no entry.

    Built through COO, whose conversion sums duplicates without dropping zeros (SciPy's
    sparse ``+`` would drop them): ``m``'s own values come out unchanged (``x + 0``).
    """
    coo = sparse.coo_array(m)
    out = sparse.csc_array(
        (
            np.concatenate((coo.data, np.zeros(rows.size))),
            (np.concatenate((coo.row, rows)), np.concatenate((coo.col, cols))),
        ),
        shape=m.shape,
    )
    out.sum_duplicates()
    out.sort_indices()
    return out


def _blocked_sandwich_diagonal(left: Block, right: Block, factor: Factor) -> np.ndarray:
    """``diag(left M⁻¹ right)`` by solves with column blocks of ``right`` (see above)."""
    n, p = left.shape
    out = np.empty(n)
    rows = left.operand
    rows = sparse.csr_array(rows) if sparse.issparse(rows) else rows
    cols = right.operand
    cols = sparse.csc_array(cols) if sparse.issparse(cols) else cols
    k = max(1, min(n, DIAGONAL_BLOCK_ENTRIES // p))
    for lo in range(0, n, k):
        hi = min(n, lo + k)
        rhs = cols[:, lo:hi]
        # A new array: blocks are read-only, and scikit-sparse 0.5 refuses read-only input.
        rhs = rhs.toarray() if sparse.issparse(rhs) else np.array(rhs)
        solved = factor.solve(rhs)
        these = rows[lo:hi]
        these = these.toarray() if sparse.issparse(these) else these
        out[lo:hi] = np.einsum("ij,ji->i", these, solved)
    return out


def _finite(result: np.ndarray, what: str) -> np.ndarray:
    """``result``, unless overflow or an invalid operation made part of it inf or NaN."""
    if not all_finite(result):
        raise FloatingPointError(
            f"{what} produced inf or NaN (overflow in an intermediate product); rescale the "
            "inputs, for example to unit diagonal"
        )
    return result


def _own(result: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``result`` as an ndarray that shares no memory with the caller's ``rhs``.

    Products with identity blocks return their operand itself; only then is a copy made.
    """
    result = np.asarray(result)
    return np.array(result) if np.may_share_memory(result, rhs) else result


def _max_abs(m: np.ndarray) -> np.ndarray | float:
    """The ∞-norm of a vector (a float), or of every column of a matrix (an array).

    A vector's is BLAS ``idamax``, with no temporary: the check runs on every solve. A
    matrix's comes from its column maxima and minima, with no ``|M|`` temporary either
    (``W.inv().toarray()`` checks an ``n×n`` one).
    """
    if m.ndim == 1:
        return abs(float(m[_idamax(m)])) if m.size else 0.0
    return np.maximum(np.max(m, axis=0, initial=0.0), -np.min(m, axis=0, initial=0.0))


def _column_max_abs(block: Block) -> np.ndarray:
    """The ∞-norm of every column of a square block."""
    if block.kind == "identity":
        return np.ones(block.shape[1])
    if block.kind == "diagonal":
        return np.abs(block.data)
    if block.kind == "dense":
        return np.asarray(_max_abs(block.data))  # an array: the data is 2-D
    return abs(block.data).max(axis=0).toarray()


def _cancelled_columns(a: Block, out: np.ndarray, left: np.ndarray, right: np.ndarray):
    """Which columns of ``out = A − L R`` (square) lost bits to cancellation.

    The test of :func:`_cancelled` without a pass over ``A``, ``L R`` or ``out``: with
    ``sⱼ = Σₖ maxᵢ|Lᵢₖ| |Rₖⱼ|`` (``≥ |L R|ᵢⱼ``) and ``|A| ≤ |out| + |L R|``, a column whose
    diagonal entry has ``7·|outⱼⱼ| ≥ sⱼ`` has both terms within
    :data:`CANCELLATION_FACTOR` times its largest entry (6 leaves room for rounding).
    The other columns, usually none (the diagonal of a covariance or precision is its
    largest entry), take the exact test.
    """
    bound = np.max(np.abs(left), axis=0, initial=0.0) @ np.abs(right)
    suspect = np.flatnonzero(6.0 * np.abs(np.diagonal(out)) < bound)
    cancelled = np.zeros(out.shape[1], dtype=bool)
    if suspect.size:
        terms = np.maximum(_column_max_abs(a)[suspect], _max_abs(left @ right[:, suspect]))
        cancelled[suspect] = CANCELLATION_FACTOR * _max_abs(out[:, suspect]) < terms
    return cancelled


def _cancelled(
    x: np.ndarray, first: np.ndarray, second: np.ndarray
) -> np.ndarray | np.bool_ | None:
    """Which columns of ``x = first − second`` lost bits to cancellation (``None``: none).

    A column cancelled when a term is more than :data:`CANCELLATION_FACTOR` times larger
    than the difference (in ∞-norm): the difference then carries the terms' rounding
    errors magnified by that factor. A zero column (zero terms) did not cancel. For a
    vector, a 0-d ``True`` or ``None``.
    """
    if x.ndim == 1:
        big = max(_max_abs(first), _max_abs(second))
        return np.bool_(True) if CANCELLATION_FACTOR * _max_abs(x) < big else None
    big = np.maximum(_max_abs(first), _max_abs(second))
    cancelled = CANCELLATION_FACTOR * _max_abs(x) < big
    return cancelled if np.any(cancelled) else None
