"""Selected inverse: the entries of ``M⁻¹`` on the pattern of ``M``'s Cholesky factor.

For a symmetric positive definite ``M`` factorised as ``M[perm][:, perm] = L D Lᵀ``
(``L`` unit lower triangular), ``Z = (M[perm][:, perm])⁻¹`` satisfies
``Z = D⁻¹ L⁻¹ + (I − Lᵀ) Z``; read below and on the diagonal this is the Takahashi
recursion, column by column from the last:

    Z[i, j] = −Σ_{k ∈ S_j} Z[i, k] L[k, j]                 (i ∈ S_j)
    Z[j, j] = 1/d_j − Σ_{k ∈ S_j} L[k, j] Z[k, j]

where ``S_j`` holds the rows of column ``j`` of ``L`` below the diagonal. Every ``Z[i, k]``
it reads (``i, k ∈ S_j``) lies on the pattern of ``L`` again (``S_j ∖ {k} ⊆ S_k``: the
filled graph's cliques), so the recursion computes ``Z`` exactly — up to round-off, no
estimation — on the pattern of ``L + Lᵀ``, which holds the whole diagonal and the pattern
of ``M``. It costs about what the numeric factorisation costs (the same dense
column-against-column products, one more time).

The loop runs in a small C extension (``_takahashi.c``, built by setuptools at install);
when it is missing (no C compiler at install time) a NumPy implementation, one column at a
time, gives the same numbers, much more slowly (see :data:`KERNEL`). The factors come from
the factor layer: CHOLMOD's ``L`` (and ``D``) through scikit-sparse 0.4 or 0.5, simplicial
or supernodal (converted to simplicial on a copy), SuperLU's symmetric ``L D Lᵀ`` on the
SciPy backend, LAPACK's Cholesky for dense blocks (whose pattern is full: the selected
inverse is the inverse, by ``potri``), and closed forms for diagonal blocks.
"""

from __future__ import annotations

from functools import cached_property
from types import ModuleType

import numpy as np
from scipy import linalg, sparse

from .._exceptions import NotPositiveDefiniteError
from ._base import Factor
from ._closed_form import DiagonalFactor, IdentityFactor
from ._dense import DenseCholesky

_c_kernel: ModuleType | None
try:  # pragma: no branch - which branch runs depends on the installation
    from . import _takahashi as _c_kernel
except ImportError:  # pragma: no cover - no C compiler when the package was installed
    _c_kernel = None

#: ``"c"`` when the compiled Takahashi kernel is installed, ``"numpy"`` otherwise.
KERNEL: str = "c" if _c_kernel is not None else "numpy"

__all__ = [
    "KERNEL",
    "FactorPattern",
    "InverseEntries",
    "factor_selected_inverse",
    "has_selected_inverse",
    "padded_selected_inverse",
    "takahashi",
]


def takahashi(lower: sparse.csc_array, d: np.ndarray | None, kernel: str | None = None):
    """The lower triangle of ``(L diag(d) Lᵀ)⁻¹`` on the pattern of ``L``.

    Parameters
    ----------
    lower : scipy.sparse.csc_array
        Lower triangular ``n×n`` factor with every diagonal entry stored. With ``d`` it is
        taken as unit lower triangular (its diagonal values are ignored); without, as the
        Cholesky factor of ``M = L Lᵀ``.
    d : ndarray of shape (n,) or None
        The pivots of ``M = L diag(d) Lᵀ``, all nonzero; None for ``M = L Lᵀ``.
    kernel : {"c", "numpy"}, optional
        Force one implementation (for tests and benchmarks); default :data:`KERNEL`.

    Returns
    -------
    indptr, indices : ndarray of int64
        ``lower``'s pattern, row indices sorted within each column (diagonal first).
    values : ndarray of float64
        ``Z[i, j]`` for every stored ``(i, j)`` of that pattern.

    Raises
    ------
    ValueError
        When the pattern is not a Cholesky factor's (a diagonal entry missing, an entry
        above the diagonal, or a pattern not closed under the recursion).
    """
    lower = sparse.csc_array(lower)
    if not lower.has_sorted_indices:
        lower = lower.sorted_indices()
    n = lower.shape[0]
    indptr = np.ascontiguousarray(lower.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(lower.indices, dtype=np.int64)
    counts = np.diff(indptr)
    if lower.shape != (n, n) or (n and (counts.min() < 1)):
        raise ValueError("the factor must be square with every diagonal entry stored")
    first = indptr[:-1]
    if not np.array_equal(indices[first], np.arange(n)):
        raise ValueError("the factor must be lower triangular with every diagonal entry stored")
    data = np.asarray(lower.data, dtype=np.float64)
    if d is None:
        diag = data[first]
        scale = 1.0 / diag
        values = data * np.repeat(scale, counts)
        dinv = scale * scale
    else:
        values = np.ascontiguousarray(data)
        dinv = 1.0 / np.asarray(d, dtype=np.float64)
    z = np.empty(indices.size)
    if (kernel or KERNEL) == "c":
        if _c_kernel is None:  # pragma: no cover - only when asked for explicitly
            raise RuntimeError("the compiled Takahashi kernel is not installed")
        _c_kernel.takahashi(indptr, indices, values, np.ascontiguousarray(dinv), z)
    else:
        _takahashi_numpy(indptr, indices, values, dinv, z)
    return indptr, indices, z


def _takahashi_numpy(indptr, indices, values, dinv, z) -> None:
    """The recursion of :func:`takahashi` in NumPy, one column at a time.

    ``Z[S_j, S_j]`` is gathered by one ``searchsorted`` of the keys ``k·n + i`` (sorted,
    since CSC stores columns in order and rows sorted within them), then column ``j`` is a
    matrix-vector product: O(n) Python steps, fine for thousands of columns, slow (seconds)
    for hundreds of thousands — the C kernel is the one meant for those.
    """
    n = indptr.size - 1
    cols = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    keys = cols * n + indices
    for j in range(n - 1, -1, -1):
        p0, p1 = indptr[j], indptr[j + 1]
        rows = indices[p0 + 1 : p1]
        lj = values[p0 + 1 : p1]
        if rows.size == 0:
            z[p0] = dinv[j]
            continue
        # Z[S, S] from the lower triangle: Z[i, k] is stored in column min(i, k).
        lo = np.minimum.outer(rows, rows)
        hi = np.maximum.outer(rows, rows)
        want = (lo * n + hi).ravel()
        pos = np.searchsorted(keys, want)
        pos_ok = np.minimum(pos, keys.size - 1)
        if not np.array_equal(keys[pos_ok], want):
            raise ValueError("the pattern of the factor is not closed (not a Cholesky factor's)")
        block = z[pos].reshape(rows.size, rows.size)
        col = -(block @ lj)
        z[p0 + 1 : p1] = col
        z[p0] = dinv[j] - lj @ col


def _symmetric_csc(indptr, indices, lower_values, perm) -> sparse.csc_array:
    """``Pᵀ (Z + Zᵀ − diag Z) P`` as a CSC array with sorted indices, ``Z`` lower.

    The entry ``(i, j)`` of the factor's ordering lands at ``(perm[i], perm[j])``. All in
    SciPy's compiled O(nnz) routines: the sum of the halves (the diagonal halved, so it
    adds back exactly), a column gather, a relabelling of rows, and one CSC→CSR
    conversion, a counting sort that leaves every row sorted; the result is symmetric, so
    its CSR arrays are its CSC arrays.
    """
    n = indptr.size - 1
    half = lower_values.copy()
    half[indptr[:-1]] *= 0.5
    lower = sparse.csc_array((half, indices, indptr), shape=(n, n))
    full = lower + lower.T.tocsc()
    if perm is None or np.array_equal(perm, np.arange(n)):  # natural order (band matrices)
        return sparse.csc_array(full)
    perm = np.asarray(perm)
    gathered = full[:, np.argsort(perm)]  # column b of the result is column perm⁻¹[b]
    gathered.indices = perm[gathered.indices].astype(gathered.indices.dtype, copy=False)
    gathered.has_sorted_indices = False
    rows = gathered.tocsr()
    out = sparse.csc_array((rows.data, rows.indices, rows.indptr), shape=(n, n))
    out.has_sorted_indices = True
    return out


def has_selected_inverse(factor: Factor) -> bool:
    """Whether ``factor`` is a sparse symmetric ``L D Lᵀ`` the recursion can run on.

    True for CHOLMOD factors (``LLᵀ``, or ``LDLᵀ`` with nonzero ``1×1`` pivots, definite
    or not) and SuperLU factors with symmetric pivoting; False for closed forms, dense
    factors and general (unsymmetrically pivoted) LU, which callers treat otherwise.
    """
    if getattr(factor, "ldl_parts", None) is None:
        return False
    return factor.method in (
        "cholmod-llt",
        "cholmod-ldlt",
        "superlu-ldlt",
        "lapack-banded-cholesky",
    )


def _ldl_parts(factor: Factor) -> tuple[sparse.csc_array, np.ndarray | None, np.ndarray]:
    """``(L, d, perm)`` of a sparse ``L D Lᵀ`` factor (one :func:`has_selected_inverse` accepts)."""
    parts = getattr(factor, "ldl_parts", None)
    if parts is None:  # pragma: no cover - callers rule the other factors out first
        raise TypeError(f"no selected inverse for {factor.method} factorisations")
    return parts()


class FactorPattern:
    """The pattern of a factor's ``L`` (``M[perm][:, perm] = L D Lᵀ``), read by position.

    Made once per factor (from :func:`has_selected_inverse` factors only): ``L``, ``d``
    and the permutation from ``factor.ldl_parts()``, and the sorted keys
    ``column·n + row`` of ``L``'s lower triangle, so that positions of ``M`` (in its own
    ordering, either triangle) are located in ``L`` by one sorted search each.

    Parameters
    ----------
    lower : scipy.sparse.csc_array
        ``L``, every diagonal entry stored.
    d : ndarray or None
        The pivots (None for ``LLᵀ``).
    perm : ndarray
        The fill-reducing ordering.
    """

    def __init__(self, lower: sparse.csc_array, d: np.ndarray | None, perm: np.ndarray) -> None:
        lower = sparse.csc_array(lower)
        if not lower.has_sorted_indices:
            lower = lower.sorted_indices()
        self.lower, self.d = lower, d
        self.n = n = lower.shape[0]
        self.inverse = np.empty(n, dtype=np.int64)
        self.inverse[np.asarray(perm, dtype=np.int64)] = np.arange(n, dtype=np.int64)
        self.perm = np.asarray(perm, dtype=np.int64)
        #: Natural ordering (banded matrices): positions need no relabelling.
        self.natural = bool(np.array_equal(self.perm, np.arange(n, dtype=np.int64)))
        counts = np.diff(lower.indptr)
        self.keys = np.repeat(np.arange(n, dtype=np.int64), counts) * n + lower.indices

    @classmethod
    def of(cls, factor: Factor) -> FactorPattern:
        """The pattern of ``factor`` (one copy of its ``L``)."""
        return cls(*_ldl_parts(factor))

    def locate(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Where ``(rows[k], cols[k])`` of ``M`` lie in ``L``'s storage; −1 where off it."""
        i = np.asarray(rows, dtype=np.int64)
        j = np.asarray(cols, dtype=np.int64)
        if not self.natural:
            i, j = self.inverse[i], self.inverse[j]
        want = np.minimum(i, j)
        want *= self.n
        want += np.maximum(i, j)  # column min, row max
        if want.size == 0 or self.keys.size == 0:
            return np.full(want.size, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.keys, want), self.keys.size - 1)
        pos[self.keys[pos] != want] = -1
        return pos

    def padded(self, rows: np.ndarray, cols: np.ndarray) -> FactorPattern:
        """The same ``L`` with explicit zeros at ``(rows[k], cols[k])`` and their fill.

        The symbolic Cholesky factorisation of the padded pattern in the factor's own
        ordering, column by column up the elimination tree, closes it under the
        recursion; the zeros are exact entries of the same factor (``M`` with explicit
        zeros there has this very ``L``), so no numeric factorisation is needed. A
        Python loop over the ``n`` columns (about 10 µs each): for backends that drop
        explicit zeros from a new factorisation (SuperLU's).
        """
        n, lower = self.n, self.lower
        i = self.inverse[np.asarray(rows, dtype=np.int64)]
        j = self.inverse[np.asarray(cols, dtype=np.int64)]
        extra = sparse.csc_array(
            (np.ones(i.size), (np.maximum(i, j), np.minimum(i, j))), shape=(n, n)
        )
        extra.sum_duplicates()
        columns: list[np.ndarray] = []
        pending: list[list[np.ndarray]] = [[] for _ in range(n)]
        for col in range(n):
            parts = [
                lower.indices[lower.indptr[col] : lower.indptr[col + 1]],
                extra.indices[extra.indptr[col] : extra.indptr[col + 1]],
                *pending[col],
            ]
            pending[col] = []
            pattern = np.unique(np.concatenate(parts).astype(np.int64, copy=False))
            pattern = pattern[pattern >= col]
            columns.append(pattern)
            if pattern.size > 1:
                pending[int(pattern[1])].append(pattern[1:])
        counts = np.array([c.size for c in columns], dtype=np.int64)
        indptr = np.concatenate(([0], np.cumsum(counts)))
        indices = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
        keys = np.repeat(np.arange(n, dtype=np.int64), counts) * n + indices
        values = np.zeros(indices.size)
        values[np.searchsorted(keys, self.keys)] = lower.data  # L's values; zeros elsewhere
        padded = sparse.csc_array((values, indices, indptr), shape=(n, n))
        padded.has_sorted_indices = True
        return FactorPattern(padded, self.d, self.perm)

    def inverse_diagonal(self, values: np.ndarray) -> np.ndarray:
        """``diag(M⁻¹)`` in ``M``'s ordering from :meth:`inverse_values`' output."""
        out = np.empty(self.n)
        out[self.perm] = values[self.lower.indptr[:-1]]  # the diagonal leads each column
        return out

    def inverse_values(self) -> np.ndarray:
        """``(M⁻¹)`` at every stored position of ``L`` (the Takahashi recursion)."""
        return takahashi(self.lower, self.d)[2]

    def selected_inverse(self) -> sparse.csc_array:
        """As :func:`factor_selected_inverse`, on this pattern."""
        indptr, indices, z = takahashi(self.lower, self.d)
        return _symmetric_csc(indptr, indices, z, self.perm)


def padded_selected_inverse(factor: Factor, rows: np.ndarray, cols: np.ndarray):
    """The selected inverse on ``L``'s pattern padded to hold ``(rows[k], cols[k])``.

    See :meth:`FactorPattern.padded`; ``factor`` satisfies :func:`has_selected_inverse`.
    """
    return FactorPattern.of(factor).padded(rows, cols).selected_inverse()


def factor_selected_inverse(
    factor: Factor, name: str = "M", *, definite: bool = True
) -> sparse.csc_array:
    """The selected inverse of the symmetric positive definite matrix ``factor`` factorises.

    Parameters
    ----------
    factor : Factor
        A positive definite factorisation: CHOLMOD (any scikit-sparse), SuperLU with
        symmetric pivoting, dense Cholesky, diagonal or identity.
    name : str
        Name of the matrix in error messages.
    definite : bool, keyword-only
        ``True`` (default): refuse a factorisation that does not prove ``M`` positive
        definite. ``False`` also accepts a symmetric indefinite ``L D Lᵀ`` with ``1×1``
        pivots (:func:`has_selected_inverse`), on which the recursion holds unchanged;
        its rounding errors grow with the element growth ``‖|L||D||Lᵀ|‖ / ‖M‖``, which
        the factor layer bounds before it accepts such a factorisation.

    Returns
    -------
    scipy.sparse.csc_array
        ``M⁻¹`` on the pattern of ``Pᵀ (L + Lᵀ) P`` in ``M``'s own ordering, indices
        sorted (for a dense block the pattern is full).

    Raises
    ------
    NotPositiveDefiniteError
        When the factorisation does not prove ``M`` positive definite (and ``definite``
        is true, or the factorisation is not an ``L D Lᵀ`` the recursion accepts).
    """
    n = factor.n
    if not definite and not factor.positive_definite and has_selected_inverse(factor):
        lower, d, perm = _ldl_parts(factor)
        indptr, indices, z = takahashi(lower, d)
        return _symmetric_csc(indptr, indices, z, perm)
    if not factor.positive_definite:
        raise NotPositiveDefiniteError(
            name,
            f"`{name}` is not positive definite (its factorisation is {factor.method}); "
            "the selected inverse needs a symmetric positive definite matrix",
        )
    if isinstance(factor, IdentityFactor):
        return sparse.eye_array(n, format="csc")
    if isinstance(factor, DiagonalFactor):
        return sparse.diags_array(1.0 / factor.d, format="csc")
    if isinstance(factor, DenseCholesky):
        return sparse.csc_array(_dense_inverse(factor.lower))
    lower, d, perm = _ldl_parts(factor)
    indptr, indices, z = takahashi(lower, d)
    return _symmetric_csc(indptr, indices, z, perm)


def _dense_inverse(lower: np.ndarray) -> np.ndarray:
    """``M⁻¹`` from ``M = L Lᵀ`` by LAPACK ``potri``, both triangles filled."""
    potri = linalg.get_lapack_funcs("potri", (lower,))
    inv, info = potri(lower, lower=True)
    if info != 0:  # pragma: no cover - potrf succeeded, so L is nonsingular
        raise np.linalg.LinAlgError(f"potri failed (info={info})")
    return np.tril(inv) + np.tril(inv, -1).T


def _require_positive_definite(factor: Factor, name: str) -> None:
    if not factor.positive_definite:
        raise NotPositiveDefiniteError(
            name,
            f"`{name}` is not positive definite (its factorisation is {factor.method}); "
            "the selected inverse needs a symmetric positive definite matrix",
        )


class InverseEntries:
    """Entries of ``M⁻¹`` read from the selected inverse, in the factor's own ordering.

    For the traces of gradients, which need ``M⁻¹`` only on a derivative's pattern: the
    recursion's lower triangle is kept as it is (no symmetric matrix in ``M``'s ordering
    is assembled, which would cost more than the recursion), and each batch of entries
    is found by one search of its sorted keys.

    Parameters
    ----------
    factor : Factor
        A positive definite factorisation (as for :func:`factor_selected_inverse`).
    name : str
        Name of the matrix in error messages.

    Raises
    ------
    NotPositiveDefiniteError
        When the factorisation does not prove ``M`` positive definite.
    """

    def __init__(self, factor: Factor, name: str = "M") -> None:
        _require_positive_definite(factor, name)
        self.n = n = factor.n
        self._diagonal = self._dense = self._perm_inverse = None
        if isinstance(factor, IdentityFactor):
            self._diagonal = np.ones(n)
        elif isinstance(factor, DiagonalFactor):
            self._diagonal = 1.0 / factor.d
        elif isinstance(factor, DenseCholesky):
            self._dense = _dense_inverse(factor.lower)
        else:
            lower, d, perm = _ldl_parts(factor)
            indptr, indices, self._z = takahashi(lower, d)
            self._lower = sparse.csc_array((self._z, indices, indptr), shape=(n, n))
            self._lower.has_sorted_indices = True
            if perm is not None:
                self._perm_inverse = np.empty(n, dtype=np.int64)
                self._perm_inverse[np.asarray(perm)] = np.arange(n)

    @cached_property
    def _keys(self) -> np.ndarray:
        """``column·n + row`` of the lower triangle's entries: increasing (CSC, sorted)."""
        lower = self._lower
        cols = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(lower.indptr))
        return cols * self.n + lower.indices

    def _lower_coordinates(self, rows, cols) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cols)`` of ``M`` as (row, column) in the factor's lower triangle."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        if self._perm_inverse is not None:
            rows, cols = self._perm_inverse[rows], self._perm_inverse[cols]
        return np.maximum(rows, cols), np.minimum(rows, cols)

    def diagonal(self) -> np.ndarray:
        """``diag(M⁻¹)`` in ``M``'s ordering."""
        if self._diagonal is not None:
            return self._diagonal
        if self._dense is not None:
            return np.diagonal(self._dense).copy()
        diagonal = self._z[self._lower.indptr[:-1]]  # first in each column
        return diagonal if self._perm_inverse is None else diagonal[self._perm_inverse]

    def entries(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(values, found)``: ``(M⁻¹)[rows[k], cols[k]]`` where ``found[k]``.

        Every entry of a diagonal or dense ``M`` is found (a diagonal's inverse is zero off
        the diagonal); of a sparse one, those on the pattern of ``L + Lᵀ`` (the others are
        NaN, for the caller to compute otherwise).
        """
        if self._diagonal is not None:
            rows = np.asarray(rows, dtype=np.int64)
            cols = np.asarray(cols, dtype=np.int64)
            values = np.where(rows == cols, self._diagonal[rows], 0.0)
            return values, np.ones(rows.size, dtype=bool)
        if self._dense is not None:
            return self._dense[rows, cols], np.ones(np.size(rows), dtype=bool)
        return self.gather(self.positions(rows, cols))

    @property
    def is_sparse(self) -> bool:
        """Whether the entries come from a sparse factor (see :meth:`positions`)."""
        return self._diagonal is None and self._dense is None

    def same_pattern(self, other: InverseEntries) -> bool:
        """Whether ``other`` holds its selected inverse on the same pattern and ordering.

        Then :meth:`positions` of one serve the other (``O = B + A`` with a diagonal
        ``B`` has ``A``'s pattern, and CHOLMOD orders both alike).
        """
        if not (self.is_sparse and other.is_sparse) or self.n != other.n:
            return False
        mine, theirs = self._lower, other._lower
        if not (
            np.array_equal(mine.indptr, theirs.indptr)
            and np.array_equal(mine.indices, theirs.indices)
        ):
            return False
        if self._perm_inverse is None or other._perm_inverse is None:
            return self._perm_inverse is other._perm_inverse
        return np.array_equal(self._perm_inverse, other._perm_inverse)

    def gather(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(values, found)`` at :meth:`positions` (NaN where off the pattern)."""
        found = positions >= 0
        return np.where(found, self._z[positions], np.nan), found

    def positions(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Where ``(M⁻¹)[rows[k], cols[k]]`` is stored in a sparse factor's selected inverse.

        ``-1`` for the entries off the pattern of ``L + Lᵀ``. The positions depend on the
        pattern and the ordering only: a caller reads several matrices of one pattern
        with one search (:meth:`gather`).
        """
        lo_rows, lo_cols = self._lower_coordinates(rows, cols)
        out = np.full(lo_rows.size, -1, dtype=np.int64)
        # A symmetric pair of entries lands on one place of the lower triangle: the entries
        # from below and from above M's diagonal (in the factor's ordering) are looked up
        # separately, each by one merge of sorted patterns (SciPy's elementwise product
        # with the selected inverse's positions), without a search.
        order = self._perm_inverse
        if order is None:
            below = np.asarray(rows) >= np.asarray(cols)
        else:
            below = order[np.asarray(rows)] >= order[np.asarray(cols)]
        for part in (np.flatnonzero(below), np.flatnonzero(~below)):
            if part.size == 0:
                continue
            query = sparse.csc_array(
                (part + 1.0, (lo_rows[part], lo_cols[part])), shape=(self.n, self.n)
            )
            query.sum_duplicates()  # none (distinct entries of M), but sorts the indices
            ones = sparse.csc_array((np.ones(query.nnz), query.indices, query.indptr), query.shape)
            where = ones.multiply(self._positions)
            if where.nnz == query.nnz:  # every entry on the pattern: the same order
                out[query.data.astype(np.int64) - 1] = where.data.astype(np.int64) - 1
            else:
                self._search(lo_rows, lo_cols, part, out)
        return out

    @cached_property
    def _positions(self) -> sparse.csc_array:
        """The lower triangle's pattern holding ``1, 2, …, nnz`` (exact in float64)."""
        lower = self._lower
        index = np.arange(1.0, lower.nnz + 1.0)
        return sparse.csc_array((index, lower.indices, lower.indptr), shape=lower.shape)

    def _search(self, lo_rows, lo_cols, part, out) -> None:
        """Look ``part`` of the entries up one by one (some are off the pattern)."""
        want = lo_cols[part] * self.n + lo_rows[part]
        pos = np.minimum(np.searchsorted(self._keys, want), self._keys.size - 1)
        hit = self._keys[pos] == want
        out[part[hit]] = pos[hit]
