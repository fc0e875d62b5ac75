"""The updates' algorithms: from an operator's parts and caches to new parts and reuse.

Functions of the old operator (read only: its parts and the caches it has built) that
return the new operator's parts and a :class:`Reuse` of what it receives; the operator
classes (and :mod:`woodbury_sparse.updates`) build the new operator from them. The
module notes of :mod:`woodbury_sparse.updates` describe the algorithms.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from ._blocks import (
    Block,
    all_finite,
    arrays_equal,
    diagonal_positions,
    freeze_sparse,
    same_sparse_pattern,
)
from ._cache import cached_property, peek
from ._core import Reuse
from ._exceptions import FactorizationError
from ._factor import Factor, checked, factorize, reuse_analysis
from ._factor._bordered import extend_factor
from ._factor._closed_form import IdentityFactor
from ._factor._sksparse import known_full_band
from ._validation import (
    Parts,
    as_block,
    block_diag,
    require_symmetric,
    term_blocks,
    term_names,
)

if TYPE_CHECKING:  # pragma: no cover
    from ._operators import WoodburyMatrix

__all__ = ["add_terms", "replace", "same_pattern", "update_a"]


# -- block helpers --------------------------------------------------------------------
def _dense(block: Block) -> np.ndarray:
    return block.data if block.kind == "dense" else block.toarray()


def _stack(blocks: list[Block], axis: int, name: str = "") -> Block:
    """Stack blocks side by side (``axis=1``) or on top of each other (``axis=0``)."""
    blocks = [b for b in blocks if b.shape[axis] > 0] or blocks[:1]
    if len(blocks) == 1:
        return blocks[0].renamed(name)
    if any(b.kind == "dense" for b in blocks):
        parts = [_dense(b) for b in blocks]
        return Block.from_matrix(np.concatenate(parts, axis=axis), name=name)
    stack = sparse.hstack if axis == 1 else sparse.vstack
    return Block.from_matrix(stack([b.operand for b in blocks], format="csc"), name=name)


def _validate_terms(W: WoodburyMatrix, B, U, V, X):
    """The new terms as ``(B, U, V, symmetric)`` blocks, validated like the constructor."""
    if X is not None and (U is not None or V is not None):
        raise ValueError(
            "`X` cannot be combined with `U` or `V`: give `X` for symmetric terms "
            "X B⁻¹ Xᵀ, or `U` and `V` for general terms U B⁻¹ V"
        )
    b_blocks, u_blocks, v_blocks = term_blocks(W._state.parts.A, B, U, V, X)
    symmetric = W._state.parts.symmetric and X is not None
    if symmetric:
        require_symmetric(
            b_blocks,
            "the symmetric terms X B⁻¹ Xᵀ need a symmetric `B` (give `U` and `V` for a "
            "general term)",
        )
        b_blocks = [blk.symmetrized() for blk in b_blocks]
    b_new = block_diag(b_blocks, "B")
    u_new = _stack(u_blocks, 1, "U")
    v_new = u_new.T if symmetric else _stack(v_blocks, 0, "V")
    return b_new, u_new, v_new, symmetric


class _FactorPair(Factor):
    """``blockdiag(M₁, M₂)`` solved through the factorisations of ``M₁`` and ``M₂``."""

    def __init__(self, first: Factor, second: Factor) -> None:
        self.first = first
        self.second = second
        self.n = first.n + second.n
        self.symmetric = first.symmetric and second.symmetric
        self.positive_definite = first.positive_definite and second.positive_definite
        self.method = f"block-diagonal({first.method}; {second.method})"

    def _split(self, method: str, b: np.ndarray, **kwargs) -> np.ndarray:
        p = self.first.n
        top = getattr(self.first, method)(b[:p], **kwargs)
        bottom = getattr(self.second, method)(b[p:], **kwargs)
        return np.concatenate([top, bottom], axis=0)

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        return self._split("solve", b, transpose=transpose)

    def _slogdet(self) -> tuple[float, float]:
        s1, l1 = self.first.slogdet
        s2, l2 = self.second.slogdet
        return s1 * s2, l1 + l2

    def solve_sqrt_t(self, z: np.ndarray) -> np.ndarray:
        return self._split("solve_sqrt_t", z)

    def sqrt_t_matmul(self, x: np.ndarray) -> np.ndarray:
        return self._split("sqrt_t_matmul", x)


class _BlockDiagonalFactor(Factor):
    """Factorisation of ``blockdiag(B₁, B₂)`` from the (lazily built) factors of each.

    Built on first use, and held to the standard of a fresh factorisation of the
    combined matrix: when a part cannot be factorised, or the pair's reciprocal condition
    estimate is below ``p·eps`` (the parts' own tests use their own, smaller orders), the
    combined matrix is factorised afresh instead — which raises exactly the error a
    freshly built operator raises, or succeeds where its own test passes.
    """

    def __init__(self, first: Block, second: Block, combined: Block) -> None:
        self.first = first
        self.second = second
        # The combined block holds this factor: keep its matrix, not the block (no cycle).
        self._matrix = combined.data
        self._kind = combined.kind
        self.n = combined.shape[0]
        self.symmetric = combined.symmetric
        self.method = "block-diagonal"

    @cached_property
    def _resolved(self) -> Factor:
        try:
            pair = _FactorPair(self.first.factor, self.second.factor)
        except FactorizationError:
            pair = None
        if pair is not None and checked(pair, self._matrix, self._kind, self.n, "B") is not None:
            return pair
        return factorize(self._matrix, self._kind, self.n, self.symmetric, "B")

    @property
    def positive_definite(self) -> bool:  # type: ignore[override]
        return self._resolved.positive_definite

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        return self._resolved.solve(b, transpose=transpose)

    def _slogdet(self) -> tuple[float, float]:
        return self._resolved.slogdet

    def rcond(self, anorm: float) -> float:
        return self._resolved.rcond(anorm)

    def screening_rcond(self, anorm: float) -> float:
        return self._resolved.screening_rcond(anorm)

    def solve_sqrt_t(self, z: np.ndarray) -> np.ndarray:
        return self._resolved.solve_sqrt_t(z)

    def sqrt_t_matmul(self, x: np.ndarray) -> np.ndarray:
        return self._resolved.sqrt_t_matmul(x)


def _combined_b(old: Block, new: Block) -> Block:
    """``blockdiag(old, new)`` sharing the factorisation of ``old`` (and of ``new``)."""
    if old.shape[0] == 0:
        return new.renamed("B")
    out = block_diag([old, new], "B")
    if out.kind in ("dense", "sparse"):
        out = out.with_factor(_BlockDiagonalFactor(old, new, out))
    return out


# -- public functions -------------------------------------------------------------------
def add_terms(W: WoodburyMatrix, B, X=None, U=None, V=None) -> tuple[Parts, Reuse | None]:
    """The parts of ``W + U₂ B₂⁻¹ V₂`` and what they reuse (see :func:`updates.add_terms`)."""
    b_new, u_new, v_new, term_symmetric = _validate_terms(W, B, U, V, X)
    old = W._state.parts
    symmetric = old.symmetric and term_symmetric
    b_all = _combined_b(old.B, b_new)
    u_all = _stack([old.U, u_new], 1, "X" if symmetric else "U")
    v_all = u_all.T if symmetric else _stack([old.V, v_new], 0, "V")
    parts = Parts(old.A, b_all, u_all, v_all, symmetric)

    if W.p > 0 and peek(W._state, "O") is None:
        # No capacitance built yet: nothing to extend, the new operator is lazy.
        return parts, None
    au_new = old.A.times(u_new)
    au_all = _stack([W._state.AU, au_new], 1)
    if symmetric:
        va_new = au_new.T
        va_all = None
    else:
        va_new = v_new.times(old.A)
        va_all = _stack([W._state.VA, va_new], 0)
    o_old = W._state.O
    c12 = _dense(old.V.times(au_new))  # V A U₂   (p×k)
    c21 = c12.T if symmetric else _dense(va_new.times(old.U))  # V₂ A U   (k×p)
    d22 = _dense(b_new.plus(v_new.times(au_new)))  # B₂ + V₂ A U₂
    if symmetric:
        d22 = 0.5 * (d22 + d22.T)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        if o_old.kind == "sparse":
            o_data = sparse.bmat([[o_old.data, c12], [c21, d22]], format="csc")
        else:
            o_data = np.block([[_dense(o_old), c12], [c21, d22]])
    # Kind and checks as the constructor's capacitance (see State.O in _core): an
    # overflowed O' is left for the lazy path to report, a bordered factor is kept only
    # when it passes a fresh factorisation's singularity test on O' — else O' is
    # factorised the ordinary way, with the ordinary outcome (a cancelled term, Σ − u uᵀ
    # singular, raises SingularMatrixError as a freshly built operator does).
    o_block = Block.from_matrix(o_data, symmetric=symmetric, name="O").densified()
    if not o_block.is_finite():
        return parts, Reuse(AU=au_all, VA=va_all)
    f11 = IdentityFactor(0) if W.p == 0 else peek(o_old, "factor")
    if f11 is not None:
        factor = extend_factor(f11, c12, c21, d22, symmetric)
        if factor is not None:
            factor = checked(factor, o_block.data, o_block.kind, o_block.shape[0], "O")
        o_block = o_block.with_factor(factor)
    return parts, Reuse(AU=au_all, VA=va_all, O=o_block)


def same_pattern(old, new) -> bool:
    """Whether two matrices (or blocks) have the same kind, shape and sparsity pattern.

    Dense matrices of equal shape count as the same pattern, as do diagonal ones (the
    identity included); sparse ones must store exactly the same positions.

    Examples
    --------
    >>> from woodbury_sparse.testing import ar1_precision
    >>> from woodbury_sparse.updates import same_pattern
    >>> same_pattern(ar1_precision(5, 0.5), ar1_precision(5, 0.9))
    True
    >>> same_pattern(ar1_precision(5, 0.5), ar1_precision(6, 0.5))
    False
    """
    old = old if isinstance(old, Block) else as_block(old, "old")
    new = new if isinstance(new, Block) else as_block(new, "new")
    diagonal = ("identity", "diagonal")
    if old.kind in diagonal and new.kind in diagonal:
        return old.shape == new.shape
    if old.kind != new.kind or old.shape != new.shape:
        return False
    if old.kind != "sparse":
        return True
    # arrays_equal: O(1) on shared index arrays (a chain of refactorisations), else chunked.
    return arrays_equal(old.data.indptr, new.data.indptr) and arrays_equal(
        old.data.indices, new.data.indices
    )


def _describe_pattern(block: Block) -> str:
    shape = "×".join(map(str, block.shape))
    extra = f", nnz={block.data.nnz}" if block.kind == "sparse" else ""
    return f"{shape} {block.kind}{extra}"


def _new_square(W: WoodburyMatrix, value, old: Block, name: str) -> Block:
    """Validate a replacement for ``A`` or ``B`` the way the constructor would."""
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            raise ValueError(f"`{name}` is an empty list; give at least one matrix")
        names = term_names(name, len(value))
        blk = block_diag(
            [as_block(v, nm, square=True) for v, nm in zip(value, names, strict=True)], name
        )
    else:
        blk = as_block(value, name, square=True)
    if blk.shape != old.shape:
        raise ValueError(f"`{name}` has shape {blk.shape}, but the operator's is {old.shape}")
    if W._state.parts.symmetric:
        require_symmetric([blk], "the operator is symmetric")
        blk = blk.symmetrized().renamed(name)
    return blk


def _reuse_analysis(old: Block, new: Block) -> Block:
    """``new`` with a numeric refactorisation of ``old``'s cached factor, when possible.

    Only a refactorisation that passes the checks of a fresh factorisation is kept;
    otherwise ``new`` is factorised afresh when first needed, and fails (or not) exactly
    as in a freshly built operator.
    """
    factor = reuse_analysis(peek(old, "factor"), new.data, new.kind, new.shape[0], new.name)
    return new.with_factor(factor)


# -- a sweep's fast path: new values on a shared sparsity pattern ---------------------------
class _Pattern:
    """What a refactorisation needs to know of one sparse symmetric pattern, built once.

    Held per pattern (see :func:`_pattern`) while its index arrays live: every block of
    a chain of refactorisations shares them, so a sweep over 20 values of a parameter
    pays for these once, not per value. Holds no reference to the pattern itself (it
    must not keep it alive): each method is given a matrix on it.
    """

    _unset = object()

    def __init__(self) -> None:
        self._mirrors = self._diagonal = self._unset

    def mirrors(self, m: sparse.csc_array) -> tuple[np.ndarray, np.ndarray] | None:
        """``(upper, mirror)``: where each entry above the diagonal and its mirror lie.

        ``data[upper[k]]`` is an entry ``(i, j)`` with ``i < j`` and ``data[mirror[k]]``
        the entry ``(j, i)``; a matrix on this pattern is exactly symmetric when the two
        gathers are equal. None when the pattern itself is not symmetric. Built once per
        pattern by one counting sort of the entries' positions, and kept as ``intp``
        (NumPy gathers with ``intp`` indices about twice as fast as with ``int32`` ones,
        which it converts on every use): 8 bytes per stored off-diagonal entry.
        """
        if self._mirrors is self._unset:
            positions = sparse.csc_array(
                (np.arange(m.indices.size, dtype=np.intp), m.indices, m.indptr), shape=m.shape
            )
            t = positions.T.tocsc()  # the CSR view is the transpose; to CSC by counting sort
            t.sort_indices()
            same = arrays_equal(t.indptr, m.indptr) and arrays_equal(t.indices, m.indices)
            if same:
                columns = np.repeat(np.arange(m.shape[1], dtype=np.intp), np.diff(m.indptr))
                upper = np.flatnonzero(m.indices < columns)
                self._mirrors = upper, np.asarray(t.data, dtype=np.intp)[upper]
            else:
                self._mirrors = None
        return self._mirrors  # type: ignore[return-value]

    def diagonal(self, m: sparse.csc_array) -> np.ndarray | None:
        """Where the pattern stores its diagonal (every column), or None."""
        if self._diagonal is self._unset:
            self._diagonal = diagonal_positions(m)
        return self._diagonal  # type: ignore[return-value]


_PATTERNS: dict[tuple, tuple[weakref.ref, _Pattern]] = {}
_PATTERNS_LOCK = threading.Lock()


def _owner(a: np.ndarray) -> np.ndarray:
    """The array that owns ``a``'s memory (SciPy hands out new views of shared arrays)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _address(a: np.ndarray) -> tuple:
    return (a.__array_interface__["data"][0], a.dtype.str, a.shape, a.strides)


def _pattern(m: sparse.csc_array) -> _Pattern:
    """The :class:`_Pattern` of the read-only index arrays of ``m`` (made on first use).

    Keyed on where the index arrays lie (blocks on one pattern share them, read-only,
    through views SciPy makes anew): forgotten when the array owning ``indices`` is freed.
    """
    owner = _owner(m.indices)
    key = (id(owner), _address(m.indices), _address(m.indptr))
    with _PATTERNS_LOCK:
        found = _PATTERNS.get(key)
        if found is not None and found[0]() is owner:
            return found[1]
        info = _Pattern()
        _PATTERNS[key] = (weakref.ref(owner), info)
    weakref.finalize(owner, _forget_pattern, key, info)
    return info


def _forget_pattern(key: tuple, info: _Pattern) -> None:
    with _PATTERNS_LOCK:
        found = _PATTERNS.get(key)
        if found is not None and found[1] is info:
            del _PATTERNS[key]


#: Entries per chunk when comparing mirrored entries (small temporaries).
_CHUNK: int = 1 << 16


def _symmetric_on(data: np.ndarray, upper: np.ndarray, mirror: np.ndarray) -> bool:
    """Whether ``data[upper] == data[mirror]`` exactly (a NaN never compares equal)."""
    for lo in range(0, upper.size, _CHUNK):
        hi = lo + _CHUNK
        if not np.array_equal(data[upper[lo:hi]], data[mirror[lo:hi]]):
            return False
    return True


def _band_symmetric(data: np.ndarray, m: sparse.csc_array, b: int) -> bool | None:
    """Whether values on ``m``'s pattern, a validated full band, are exactly symmetric.

    ``b`` is the band's half-width; None when the band is too short for the strided
    layout (the caller then uses the pattern's mirror map). As validation's check of a
    band (``_validation._band_copy``): the interior columns are the rows of an
    ``(n − 2b) × (2b+1)`` view of the values, where entry ``(j + d, j)`` sits at
    ``[j, b + d]`` and its mirror at ``[j + d, b − d]``, compared by strided slices (no
    gathers); the pairs touching one of the first or last ``b`` columns lie in the
    leading and trailing ``2b × 2b`` blocks, compared with their transposes densely.
    """
    n, width = m.shape[0], 2 * b + 1
    if n < 2 * width:
        return None
    indptr = m.indptr
    start, stop = int(indptr[b]), int(indptr[n - b])
    rows = n - 2 * b
    values = data[start:stop].reshape(rows, width)
    step = max(1, _CHUNK // width)
    for lo in range(0, rows, step):
        hi = min(lo + step, rows)
        for d in range(1, b + 1):
            top = min(hi, rows - d)
            if lo < top and not np.array_equal(
                values[lo:top, b + d], values[lo + d : top + d, b - d]
            ):
                return False
    for first in (0, n - 2 * b):
        block = np.zeros((2 * b, 2 * b))
        for j in range(first, first + 2 * b):
            rows_j = m.indices[indptr[j] : indptr[j + 1]]
            keep = (rows_j >= first) & (rows_j < first + 2 * b)
            block[rows_j[keep] - first, j - first] = data[indptr[j] : indptr[j + 1]][keep]
        if not np.array_equal(block, block.T):
            return False
    return True


def _on_old_pattern(old: Block, value, name: str) -> Block | None:
    """A new value of a symmetric sparse block as a block sharing ``old``'s index arrays.

    For a CSC or CSR float64 ``value`` that stores exactly ``old``'s positions and is
    exactly symmetric: the block :func:`_new_square` would build (the same values, marked
    symmetric), without its transposition and comparisons, which the shared pattern
    settles once (:class:`_Pattern`). Sharing the index arrays makes every later
    pattern test (``same_pattern``, the capacitance's) a test of identity. ``None`` for
    anything else, which then takes the general path (and its errors and warnings).
    """
    if old.kind != "sparse" or not old.symmetric or not sparse.issparse(value):
        return None
    if value.format not in ("csc", "csr") or value.dtype != np.float64:
        return None
    m = old.data
    if value.shape != m.shape or not m.has_canonical_format:
        return None
    # A CSR matrix's arrays are the CSC arrays of its transpose: on a symmetric pattern
    # with symmetric values, the same matrix.
    if not (arrays_equal(value.indptr, m.indptr) and arrays_equal(value.indices, m.indices)):
        return None
    half_width = known_full_band(m)
    mirrors = None if half_width is not None else _pattern(m).mirrors(m)
    if half_width is None and mirrors is None:
        return None
    data = np.array(value.data, dtype=np.float64)
    if not all_finite(data):
        return None
    symmetric = None if half_width is None else _band_symmetric(data, m, half_width)
    if symmetric is None:
        mirrors = _pattern(m).mirrors(m)
        symmetric = mirrors is not None and _symmetric_on(data, *mirrors)
    if not symmetric:
        return None
    out = sparse.csc_array((data, m.indices, m.indptr), shape=m.shape)
    out.has_canonical_format = True  # m's pattern: sorted, no duplicates
    return Block("sparse", m.shape, freeze_sparse(out), True, name)


def _add_band_diagonal(
    values: np.ndarray, indptr: np.ndarray, n: int, b: int, diagonal: np.ndarray
) -> None:
    """``values[diagonal positions] += diagonal`` on a validated full band of half-width ``b``.

    Column ``j`` stores rows ``max(0, j − b) …``, so its diagonal lies at ``indptr[j] +
    min(j, b)``: for the interior columns ``b … n − b − 1`` every ``2b+1``-th value from
    ``indptr[b] + b``, a strided slice (no gather and scatter through a position array);
    the first ``b`` columns one by one. The same additions, bit for bit.
    """
    width = 2 * b + 1
    for j in range(b):
        values[indptr[j] + j] += diagonal[j]
    start = int(indptr[b]) + b
    values[start : start + width * (n - 2 * b) : width] += diagonal[b : n - b]
    for j in range(n - b, n):
        values[indptr[j] + b] += diagonal[j]


def _capacitance_on_pattern(W: WoodburyMatrix, parts: Parts) -> Block | None:
    """The new ``O = B + A`` (``X = I``, diagonal ``B``) on the old ``O``'s shared pattern.

    The block :attr:`State.O` would build, with the old ``O``'s factorisation as the donor
    of its symbolic analysis, formed from the pattern's known diagonal positions (one copy
    of ``A``'s values and ``n`` additions). ``None`` unless the new ``A`` shares the index
    arrays of the old ``O`` (see :func:`_on_old_pattern`) and the old ``O`` was factorised
    by CHOLMOD; also for an ``O`` that overflowed, left to the lazy path to report.
    """
    o_old = peek(W._state, "O")
    if o_old is None or o_old.kind != "sparse" or not o_old.symmetric:
        return None
    donor = peek(o_old, "factor")
    A, B = parts.A, parts.B
    if (
        not hasattr(donor, "refactor")
        or not parts.symmetric
        or parts.U.kind != "identity"
        or A.kind != "sparse"
        or not A.symmetric
        or B.kind not in ("identity", "diagonal")
    ):
        return None
    m = A.data
    if not same_sparse_pattern(A, o_old):  # O(1) on shared index arrays
        return None
    n = m.shape[0]
    half_width = known_full_band(m)
    positions = None
    if half_width is None or n < 2 * half_width + 1:
        positions = _pattern(m).diagonal(m)
        if positions is None:
            return None
    # As Block.plus: A's values, the diagonal added in place (bit for bit its sum).
    values = np.array(m.data)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below, as State.O
        if positions is not None:
            values[positions] += B.diagonal()
        else:
            assert half_width is not None  # no positions: a known band
            _add_band_diagonal(values, m.indptr, n, half_width, B.diagonal())
    if not all_finite(values):
        return None
    total = sparse.csc_array((values, m.indices, m.indptr), shape=m.shape)
    total.has_canonical_format = True
    # Exactly symmetric: entry (i, j) and (j, i) add the same two numbers (see State.O).
    o = Block("sparse", m.shape, freeze_sparse(total), True, "O")
    o = o.with_factor(analysis_donor=donor)
    _ = o.rcond_bound  # as State.O: the singularity check and the warning test reuse it
    return o


def replace(W: WoodburyMatrix, A, B, strict: bool) -> tuple[Parts, Reuse]:
    """The parts of ``W`` with new ``A``/``B`` and what they reuse (see ``updates``)."""
    if A is None and B is None:
        raise TypeError("give a new `A`, a new `B`, or both")
    old = W._state.parts
    new_blocks = {}
    for name, value, old_block in (("A", A, old.A), ("B", B, old.B)):
        if value is None:
            new_blocks[name] = old_block
            continue
        blk = _on_old_pattern(old_block, value, name) if old.symmetric else None
        if blk is None:
            blk = _new_square(W, value, old_block, name)
        if same_pattern(old_block, blk):
            blk = _reuse_analysis(old_block, blk)
        elif strict:
            raise ValueError(
                f"the new `{name}` ({_describe_pattern(blk)}) does not have the sparsity "
                f"pattern of the old one ({_describe_pattern(old_block)}); refactor() "
                "needs the same pattern — use with_blocks() or construct a new operator"
            )
        new_blocks[name] = blk
    parts = Parts(new_blocks["A"], new_blocks["B"], old.U, old.V, old.symmetric)
    o_old = peek(W._state, "O")
    donor = None
    if o_old is not None and hasattr(peek(o_old, "factor"), "refactor"):
        # U and V are W's: when the new capacitance B + V A U keeps the old one's sparsity
        # pattern (checked when it is built), its factorisation reuses the old analysis.
        donor = o_old
    au = va = None
    if A is None and peek(W._state, "AU") is not None:
        au = W._state.AU
        va = None if old.symmetric else W._state.VA
    o_new = None if donor is None else _capacitance_on_pattern(W, parts)
    if o_new is not None:
        donor = None  # the new O holds the old one's factorisation as its donor
    return parts, Reuse(AU=au, VA=va, O=o_new, capacitance_donor=donor)


def update_a(W: WoodburyMatrix, C, downdate: bool) -> Parts:
    """The parts of ``W`` with ``A ± C Cᵀ`` (see :func:`updates.update_a`)."""
    old = W._state.parts
    c = as_block(C, "C")
    if c.shape[0] != W.n:
        raise ValueError(f"`C` has shape {c.shape}, but `A` is {W.n}×{W.n}: expected {W.n} rows")
    c_op = c.operand if c.kind != "dense" else sparse.csc_array(c.data)
    cct = c_op @ c_op.T
    new_a = old.A.operand - cct if downdate else old.A.operand + cct
    if sparse.issparse(new_a) and old.A.kind == "dense":
        new_a = new_a.toarray()
    # Normalised as the constructor normalises `A` (kind detection included: a diagonal
    # result is a diagonal block), so that every later test is a fresh operator's.
    a_block = as_block(new_a, "A", square=True)
    if old.symmetric:
        a_block = a_block.symmetrized().renamed("A")
    cached = peek(old.A, "factor")
    updatable = cached is not None and cached.positive_definite and hasattr(cached, "updown")
    if updatable and a_block.kind == "sparse":
        # CHOLMOD: update/downdate a copy; kept only if positive definite and regular.
        factor = cached.updown(sparse.csc_array(c_op), subtract=downdate)
        if factor is not None:
            factor = checked(factor, a_block.data, "sparse", W.n, "A")
        a_block = a_block.with_factor(factor)
    return Parts(a_block, old.B, old.U, old.V, old.symmetric)
