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

The loop runs in a small C extension (``_takahashi.c``, built by setuptools at install),
which takes the columns of a supernode a group at a time (one pass over the part of ``Z``
they share while it is in cache) and also lays the result out as a symmetric CSC matrix in
``M``'s ordering; when it is missing (no C compiler at install time) a NumPy
implementation, one column at a time, and SciPy's sparse routines give the same numbers,
much more slowly (see :data:`KERNEL`). :class:`SelectedInverse` is the one reader of the
recursion's output: diagonal, entries at given positions, or the whole matrix. The factors come from
the factor layer: CHOLMOD's ``L`` (and ``D``) through scikit-sparse 0.4 or 0.5, simplicial
or supernodal (converted to simplicial on a copy), SuperLU's symmetric ``L D Lᵀ`` on the
SciPy backend, LAPACK's Cholesky for dense blocks (whose pattern is full: the selected
inverse is the inverse, by ``potri``), and closed forms for diagonal blocks.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
from scipy import linalg, sparse

from .._cache import cached_property
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
    "SelectedInverse",
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
    indptr, indices : ndarray
        ``lower``'s pattern, row indices sorted within each column (diagonal first):
        ``indptr`` as int64, ``indices`` as ``lower`` stores them (int32 or int64).
    values : ndarray of float64
        ``Z[i, j]`` for every stored ``(i, j)`` of that pattern.

    Raises
    ------
    ValueError
        When the pattern is not a Cholesky factor's (a diagonal entry missing, an entry
        above the diagonal, or a pattern not closed under the recursion).
    """
    if not isinstance(lower, sparse.csc_array):  # (a new array would check sorting again)
        lower = sparse.csc_array(lower)
    if not lower.has_sorted_indices:
        lower = lower.sorted_indices()
    n = lower.shape[0]
    indptr = np.ascontiguousarray(lower.indptr, dtype=np.int64)
    indices = lower.indices  # int32 or int64, both read in place by the C kernel
    if indices.dtype not in (np.int32, np.int64) or not indices.flags.c_contiguous:
        indices = np.ascontiguousarray(indices, dtype=np.int64)
    counts = np.diff(indptr)
    if lower.shape != (n, n) or (n and (counts.min() < 1)):
        raise ValueError("the factor must be square with every diagonal entry stored")
    first = indptr[:-1]
    if not np.array_equal(indices[first], np.arange(n)):
        raise ValueError("the factor must be lower triangular with every diagonal entry stored")
    data = np.ascontiguousarray(lower.data, dtype=np.float64)
    z = np.empty(indices.size)
    if (kernel or KERNEL) == "c":
        if _c_kernel is None:  # pragma: no cover - only when asked for explicitly
            raise RuntimeError("the compiled Takahashi kernel is not installed")
        # L Lᵀ is scaled to L D Lᵀ inside the kernel (no scaled copy of L).
        dinv = None if d is None else np.ascontiguousarray(1.0 / np.asarray(d, dtype=np.float64))
        _c_kernel.takahashi(indptr, indices, data, dinv, z)
        return indptr, indices, z
    if d is None:
        scale = 1.0 / data[first]
        values = data * np.repeat(scale, counts)
        dinv = scale * scale
    else:
        values, dinv = data, 1.0 / np.asarray(d, dtype=np.float64)
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


def _symmetric_csc(indptr, indices, lower_values, perm, kernel: str | None = None):
    """``Pᵀ (Z + Zᵀ − diag Z) P`` as a CSC array with sorted indices, ``Z`` lower.

    The entry ``(i, j)`` of the factor's ordering lands at ``(perm[i], perm[j])``.
    ``indptr``/``indices`` as :func:`takahashi` returns them (sorted, diagonal first).
    The C kernel writes the result in one counting pass and two scatters (row ``r`` of
    the result is its column ``r``: walking the rows in order leaves every column
    sorted); without it, SciPy's compiled routines: the sum of the halves, a column
    gather, a relabelling of rows, and a CSC→CSR counting sort.
    """
    n = indptr.size - 1
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    natural = perm is None
    perm = np.arange(n, dtype=np.int64) if natural else np.asarray(perm, dtype=np.int64)
    if (kernel or KERNEL) == "c":
        if _c_kernel is None:  # pragma: no cover - only when asked for explicitly
            raise RuntimeError("the compiled Takahashi kernel is not installed")
        size = 2 * indices.size - n
        # SciPy's index dtype: int32 whenever every index and count fits (no copy later).
        wide = max(size, n) > np.iinfo(np.int32).max
        index = np.int64 if wide else np.int32
        out_indptr = np.empty(n + 1, dtype=index)
        out_indices = np.empty(size, dtype=index)
        out_data = np.empty(size)
        _c_kernel.symmetric(
            indptr,
            indices,
            np.ascontiguousarray(lower_values),
            np.ascontiguousarray(perm),
            out_indptr,
            out_indices,
            out_data,
        )
        out = sparse.csc_array((out_data, out_indices, out_indptr), shape=(n, n))
        out.has_sorted_indices = True
        return out
    half = lower_values.copy()
    half[indptr[:-1]] *= 0.5
    lower = sparse.csc_array((half, indices, indptr), shape=(n, n))
    full = lower + lower.T.tocsc()
    if natural or np.array_equal(perm, np.arange(n)):  # natural order (band matrices)
        return sparse.csc_array(full)
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


class SelectedInverse:
    """``M⁻¹`` on the pattern of its factor's ``L + Lᵀ``: the one reader of the recursion.

    Made once per factorisation, for every use of the selected inverse: its diagonal
    (``W.diagonal()``, marginal variances), entries at given positions (gradients' traces,
    posterior covariances, ``diag(left M⁻¹ right)``), and the symmetric sparse matrix
    (:func:`woodbury_sparse.selected_inverse`). For a sparse ``M[perm][:, perm] = L D Lᵀ``
    it holds ``L``'s pattern and the recursion's values on it (computed on first use, in
    the factor's ordering: nothing is assembled unless asked); for an identity, diagonal or
    dense ``M`` the inverse in closed form or by LAPACK, every entry of which is "found".

    Parameters
    ----------
    factor : Factor
        CHOLMOD (any scikit-sparse), SuperLU with symmetric pivoting, LAPACK's banded
        Cholesky, dense Cholesky, diagonal or identity.
    name : str
        Name of the matrix in error messages.
    definite : bool, keyword-only
        ``True`` (default): refuse a factorisation that does not prove ``M`` positive
        definite. ``False`` also accepts a symmetric indefinite ``L D Lᵀ`` with ``1×1``
        pivots (:func:`has_selected_inverse`), on which the recursion holds unchanged;
        its rounding errors grow with the element growth ``‖|L||D||Lᵀ|‖ / ‖M‖``, which
        the factor layer bounds before it accepts such a factorisation.

    Raises
    ------
    NotPositiveDefiniteError
        When the factorisation does not prove ``M`` positive definite (and ``definite``
        is true, or the factorisation is not an ``L D Lᵀ`` the recursion accepts).
    """

    _diagonal: np.ndarray | None = None
    _dense: np.ndarray | None = None

    def __init__(self, factor: Factor, name: str = "M", *, definite: bool = True) -> None:
        self.n = n = factor.n
        if not factor.positive_definite and (definite or not has_selected_inverse(factor)):
            raise NotPositiveDefiniteError(
                name,
                f"`{name}` is not positive definite (its factorisation is {factor.method}); "
                "the selected inverse needs a symmetric positive definite matrix",
            )
        if isinstance(factor, IdentityFactor):
            self._diagonal = np.ones(n)
        elif isinstance(factor, DiagonalFactor):
            self._diagonal = 1.0 / factor.d
        elif isinstance(factor, DenseCholesky):
            self._dense = _dense_inverse(factor.lower)
        else:
            self._set_parts(*_ldl_parts(factor))

    @classmethod
    def from_parts(
        cls, lower: sparse.csc_array, d: np.ndarray | None, perm: np.ndarray | None
    ) -> SelectedInverse:
        """The selected inverse of ``M`` with ``M[perm][:, perm] = L diag(d) Lᵀ`` (as given)."""
        self = cls.__new__(cls)
        self.n = lower.shape[0]
        self._set_parts(lower, d, perm)
        return self

    def _set_parts(self, lower, d, perm) -> None:
        lower = sparse.csc_array(lower)
        if not lower.has_sorted_indices:
            lower = lower.sorted_indices()
        self._lower, self._d = lower, d
        n = self.n
        self._perm = self._perm_inverse = None  # None: the natural ordering (band matrices)
        if perm is not None and not np.array_equal(perm, np.arange(n)):
            self._perm = np.asarray(perm, dtype=np.int64)
            self._perm_inverse = np.empty(n, dtype=np.int64)
            self._perm_inverse[self._perm] = np.arange(n, dtype=np.int64)

    @property
    def is_sparse(self) -> bool:
        """Whether the entries come from a sparse factor (see :meth:`positions`)."""
        return self._diagonal is None and self._dense is None

    @cached_property
    def values(self) -> np.ndarray:
        """``M⁻¹`` at every stored position of ``L`` (read-only; see :meth:`positions`).

        :func:`takahashi` on ``L``, run once; nothing else of it is kept (the pattern is
        ``L``'s).
        """
        z = takahashi(self._lower, self._d)[2]
        z.flags.writeable = False
        return z

    def diagonal(self) -> np.ndarray:
        """``diag(M⁻¹)`` in ``M``'s ordering (a new array)."""
        if self._diagonal is not None:
            return self._diagonal.copy()
        if self._dense is not None:
            return np.diagonal(self._dense).copy()
        diagonal = self.values[self._lower.indptr[:-1]]  # the diagonal leads each column
        return diagonal if self._perm_inverse is None else diagonal[self._perm_inverse]

    def matrix(self) -> sparse.csc_array:
        """The selected inverse as a symmetric CSC array in ``M``'s ordering, indices sorted.

        For a dense ``M`` every entry; for a diagonal one the diagonal.
        """
        if self._diagonal is not None:
            return sparse.diags_array(self._diagonal, format="csc")
        if self._dense is not None:
            return sparse.csc_array(self._dense)
        lower = self._lower
        return _symmetric_csc(lower.indptr, lower.indices, self.values, self._perm)

    def entries(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(values, found)``: ``(M⁻¹)[rows[k], cols[k]]`` where ``found[k]``.

        Every entry of a diagonal or dense ``M`` is found (a diagonal's inverse is zero off
        the diagonal); of a sparse one, those on the pattern of ``L + Lᵀ`` (the others are
        NaN, for the caller to compute otherwise). The pairs must be distinct.
        """
        if self._diagonal is not None:
            rows = np.asarray(rows, dtype=np.int64)
            cols = np.asarray(cols, dtype=np.int64)
            values = np.where(rows == cols, self._diagonal[rows], 0.0)
            return values, np.ones(rows.size, dtype=bool)
        if self._dense is not None:
            return self._dense[rows, cols], np.ones(np.size(rows), dtype=bool)
        return self.gather(self.positions(rows, cols))

    def gather(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(values, found)`` at :meth:`positions` (NaN where off the pattern)."""
        found = positions >= 0
        return np.where(found, self.values[positions], np.nan), found

    def same_pattern(self, other: SelectedInverse) -> bool:
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
        if self._perm is None or other._perm is None:
            return self._perm is other._perm
        return np.array_equal(self._perm, other._perm)

    def _lower_coordinates(self, rows, cols) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cols)`` of ``M`` as (row, column) in the factor's lower triangle."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        if self._perm_inverse is not None:
            rows, cols = self._perm_inverse[rows], self._perm_inverse[cols]
        return np.maximum(rows, cols), np.minimum(rows, cols)

    @cached_property
    def _keys(self) -> np.ndarray:
        """``column·n + row`` of the lower triangle's entries: increasing (CSC, sorted)."""
        lower = self._lower
        cols = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(lower.indptr))
        return cols * self.n + lower.indices

    def locate(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Where ``(rows[k], cols[k])`` of ``M`` lie in :attr:`values`; −1 where off it.

        Any pairs (repeats allowed), each found by one sorted search; a sparse ``M`` only.
        """
        lo_rows, lo_cols = self._lower_coordinates(rows, cols)
        want = lo_cols * self.n + lo_rows
        keys = self._keys
        if want.size == 0 or keys.size == 0:
            return np.full(want.size, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(keys, want), keys.size - 1)
        pos[keys[pos] != want] = -1
        return pos

    def positions(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """As :meth:`locate`, for *distinct* pairs (a sparse matrix's stored entries).

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
                out[part] = self.locate(np.asarray(rows)[part], np.asarray(cols)[part])
        return out

    @cached_property
    def _positions(self) -> sparse.csc_array:
        """The lower triangle's pattern holding ``1, 2, …, nnz`` (exact in float64)."""
        lower = self._lower
        index = np.arange(1.0, lower.nnz + 1.0)
        return sparse.csc_array((index, lower.indices, lower.indptr), shape=lower.shape)

    def padded(self, rows: np.ndarray, cols: np.ndarray) -> SelectedInverse:
        """The same ``L`` with explicit zeros at ``(rows[k], cols[k])`` and their fill.

        The symbolic Cholesky factorisation of the padded pattern in the factor's own
        ordering, column by column up the elimination tree, closes it under the
        recursion; the zeros are exact entries of the same factor (``M`` with explicit
        zeros there has this very ``L``), so no numeric factorisation is needed. A
        Python loop over the ``n`` columns (about 10 µs each): for backends that drop
        explicit zeros from a new factorisation (SuperLU's).
        """
        if not self.is_sparse:
            raise TypeError("only a sparse factor's pattern can be padded")
        n, lower = self.n, self._lower
        i, j = self._lower_coordinates(rows, cols)
        extra = sparse.csc_array((np.ones(i.size), (i, j)), shape=(n, n))
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
        values[np.searchsorted(keys, self._keys)] = lower.data  # L's values; zeros elsewhere
        padded = sparse.csc_array((values, indices, indptr), shape=(n, n))
        padded.has_sorted_indices = True
        return SelectedInverse.from_parts(padded, self._d, self._perm)


def padded_selected_inverse(factor: Factor, rows: np.ndarray, cols: np.ndarray):
    """The selected inverse on ``L``'s pattern padded to hold ``(rows[k], cols[k])``.

    See :meth:`SelectedInverse.padded`; ``factor`` satisfies :func:`has_selected_inverse`.
    """
    return SelectedInverse(factor, definite=False).padded(rows, cols).matrix()


def factor_selected_inverse(
    factor: Factor, name: str = "M", *, definite: bool = True
) -> sparse.csc_array:
    """The selected inverse of the symmetric matrix ``factor`` factorises, as a matrix.

    :meth:`SelectedInverse.matrix` of ``SelectedInverse(factor, name, definite=definite)``
    (see there): ``M⁻¹`` on the pattern of ``Pᵀ (L + Lᵀ) P`` in ``M``'s own ordering,
    indices sorted (for a dense block the pattern is full).
    """
    return SelectedInverse(factor, name, definite=definite).matrix()


def _dense_inverse(lower: np.ndarray) -> np.ndarray:
    """``M⁻¹`` from ``M = L Lᵀ`` by LAPACK ``potri``, both triangles filled."""
    potri = linalg.get_lapack_funcs("potri", (lower,))
    inv, info = potri(lower, lower=True)
    if info != 0:  # pragma: no cover - potrf succeeded, so L is nonsingular
        raise np.linalg.LinAlgError(f"potri failed (info={info})")
    return np.tril(inv) + np.tril(inv, -1).T
