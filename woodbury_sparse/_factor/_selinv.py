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

import numpy as np
from scipy import linalg, sparse

from .._exceptions import NotPositiveDefiniteError
from ._base import Factor
from ._closed_form import DiagonalFactor, IdentityFactor
from ._dense import DenseCholesky

try:  # pragma: no branch - which branch runs depends on the installation
    from . import _takahashi as _c_kernel
except ImportError:  # pragma: no cover - no C compiler when the package was installed
    _c_kernel = None

#: ``"c"`` when the compiled Takahashi kernel is installed, ``"numpy"`` otherwise.
KERNEL: str = "c" if _c_kernel is not None else "numpy"

__all__ = [
    "KERNEL",
    "factor_selected_inverse",
    "has_selected_inverse",
    "padded_selected_inverse",
    "pattern_covered",
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
    if perm is None:
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
    return factor.method in ("cholmod-llt", "cholmod-ldlt", "superlu-ldlt")


def pattern_covered(factor: Factor, rows: np.ndarray, cols: np.ndarray) -> bool:
    """Whether every ``(rows[k], cols[k])`` lies on the pattern of ``Pᵀ (L + Lᵀ) P``.

    ``factor`` satisfies :func:`has_selected_inverse`; the positions are in the
    matrix's own ordering. Those are the entries :func:`factor_selected_inverse`
    computes. Costs a copy of ``L`` and a sorted search: ``O(nnz(L) + m log nnz(L))``.
    """
    lower, _, perm = factor.ldl_parts()
    lower = sparse.csc_array(lower)
    if not lower.has_sorted_indices:
        lower = lower.sorted_indices()
    n = lower.shape[0]
    inverse = np.empty(n, dtype=np.int64)
    inverse[np.asarray(perm, dtype=np.int64)] = np.arange(n, dtype=np.int64)
    i = inverse[np.asarray(rows, dtype=np.int64)]
    j = inverse[np.asarray(cols, dtype=np.int64)]
    lo, hi = np.minimum(i, j), np.maximum(i, j)  # the lower triangle: column lo, row hi
    counts = np.diff(lower.indptr)
    keys = np.repeat(np.arange(n, dtype=np.int64), counts) * n + lower.indices
    want = lo * n + hi
    if want.size == 0:
        return True
    if keys.size == 0:
        return False
    pos = np.minimum(np.searchsorted(keys, want), keys.size - 1)
    return bool(np.array_equal(keys[pos], want))


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
        lower, d, perm = factor.ldl_parts()
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
    parts = getattr(factor, "ldl_parts", None)
    if parts is None:  # pragma: no cover - every positive definite factor is covered above
        raise TypeError(f"no selected inverse for {factor.method} factorisations")
    lower, d, perm = parts()
    indptr, indices, z = takahashi(lower, d)
    return _symmetric_csc(indptr, indices, z, perm)


def padded_selected_inverse(
    factor: Factor, rows: np.ndarray, cols: np.ndarray, name: str = "M"
) -> sparse.csc_array:
    """The selected inverse on ``L``'s pattern enlarged to hold ``(rows[k], cols[k])``.

    ``L`` (of a factor accepted by :func:`has_selected_inverse`) is padded with explicit
    zeros at the positions, then at the fill they cause — the symbolic Cholesky
    factorisation of the padded pattern in the factor's own ordering, column by column
    up the elimination tree — so that the pattern is closed under the recursion. Those
    zeros are exact entries of the same ``L`` (the matrix with explicit zeros has this
    very factor), so the recursion returns ``M⁻¹`` on the larger pattern, with no new
    numeric factorisation. The closure is a Python loop over the ``n`` columns (about
    10 µs each): for factors whose backend drops explicit zeros from a refactorisation
    (SuperLU's), where a new factorisation of the padded matrix would not help.

    Parameters
    ----------
    factor : Factor
        As for :func:`pattern_covered`.
    rows, cols : ndarray of int
        Positions in the matrix's own ordering (either triangle).
    name : str
        Name of the matrix in error messages.

    Returns
    -------
    scipy.sparse.csc_array
        As :func:`factor_selected_inverse`, on the enlarged pattern.
    """
    lower, d, perm = factor.ldl_parts()
    lower = sparse.csc_array(lower)
    if not lower.has_sorted_indices:
        lower = lower.sorted_indices()
    n = lower.shape[0]
    inverse = np.empty(n, dtype=np.int64)
    inverse[np.asarray(perm, dtype=np.int64)] = np.arange(n, dtype=np.int64)
    i = inverse[np.asarray(rows, dtype=np.int64)]
    j = inverse[np.asarray(cols, dtype=np.int64)]
    extra = sparse.csc_array((np.ones(i.size), (np.maximum(i, j), np.minimum(i, j))), shape=(n, n))
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
    # L's values onto the closed pattern (a superset): zeros elsewhere.
    col_of = np.repeat(np.arange(n, dtype=np.int64), counts)
    keys = col_of * n + indices
    old_counts = np.diff(lower.indptr)
    old_keys = np.repeat(np.arange(n, dtype=np.int64), old_counts) * n + lower.indices
    values = np.zeros(indices.size)
    values[np.searchsorted(keys, old_keys)] = lower.data
    padded = sparse.csc_array((values, indices, indptr), shape=(n, n))
    padded.has_sorted_indices = True
    if d is None and not factor.positive_definite:  # pragma: no cover - LLᵀ is definite
        raise NotPositiveDefiniteError(name, f"`{name}` has no selected inverse")
    z_indptr, z_indices, z = takahashi(padded, d)
    return _symmetric_csc(z_indptr, z_indices, z, perm)


def _dense_inverse(lower: np.ndarray) -> np.ndarray:
    """``M⁻¹`` from ``M = L Lᵀ`` by LAPACK ``potri``, both triangles filled."""
    potri = linalg.get_lapack_funcs("potri", (lower,))
    inv, info = potri(lower, lower=True)
    if info != 0:  # pragma: no cover - potrf succeeded, so L is nonsingular
        raise np.linalg.LinAlgError(f"potri failed (info={info})")
    return np.tril(inv) + np.tril(inv, -1).T
