"""Turn user input into normalised :class:`~woodbury_sparse._blocks.Block` objects.

Everything the public API accepts passes through here: NumPy arrays (and anything
``numpy.asarray`` understands), every SciPy sparse matrix or array format, and lists of
blocks. Input is copied, converted to float64, checked, and never modified.
"""

from __future__ import annotations

import operator
import reprlib
from dataclasses import dataclass

import numpy as np
from scipy import linalg, sparse
from scipy.sparse.linalg import LinearOperator

from ._blocks import Block, all_finite, arrays_equal, freeze, freeze_sparse
from ._cache import seed
from ._exceptions import AsymmetryWarning, warn
from ._factor import _sksparse

#: A block counts as symmetric when ``‖M − Mᵀ‖_F ≤ SYMMETRY_RTOL · ‖M‖_F``. Round-off in
#: a computed precision matrix (``numpy.linalg.inv(Sigma)``: ~1e-14 relative) passes;
#: a matrix that is not symmetric by construction does not. Above
#: :func:`symmetry_roundoff` a block is symmetrised with a warning.
SYMMETRY_RTOL: float = float(np.sqrt(np.finfo(np.float64).eps))

_EPS: float = float(np.finfo(np.float64).eps)


def symmetry_roundoff(n: int) -> float:
    """The relative asymmetry rounding alone leaves in a computed symmetric ``n×n`` matrix.

    ``4·√n·eps``. An entry computed as a sum of at most ``n`` products (a matrix product,
    an inverse) carries a rounding error that stays below ``λ·√n·u`` (``u = eps/2``)
    relative to the sum of its terms' magnitudes with probability at least
    ``1 − 2·exp(−λ²/2)`` (Higham and Mary's probabilistic bound; the worst case ``n·u`` is
    not met in practice). ``M[i, j]`` and ``M[j, i]``, computed separately, then differ by
    twice that at most, so ``‖M − Mᵀ‖_F ≤ λ·√n·eps·‖M‖_F`` when the sums do not cancel;
    ``λ = 4`` makes a larger error per entry a 1-in-1500 event, and their root mean square
    over the whole matrix far rarer. Measured: products ``X D Xᵀ`` and inverses of
    well-conditioned SPD matrices of order 10 to 1000 show 0.2–3 eps. An inverse of a
    matrix of condition ``κ`` shows about ``κ·eps`` instead: not round-off of the block,
    but of the data it came from, and worth the warning.
    """
    return 4.0 * float(np.sqrt(max(int(n), 1))) * _EPS


def _describe(value) -> str:
    return type(value).__module__.split(".")[0] + "." + type(value).__name__


def check_dtype(dtype: np.dtype, name: str) -> None:
    if dtype.kind == "c":
        raise TypeError(
            f"`{name}` is complex ({dtype}); woodbury_sparse supports real matrices only"
        )
    require_real(dtype, name)


def require_real(dtype: np.dtype, name: str) -> None:
    """Raise ``TypeError`` unless ``dtype`` holds real numbers (booleans and integers too)."""
    if dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must hold real numbers, got dtype {dtype}")


def short_repr(value) -> str:
    """``value``'s repr, abbreviated for an error message (``reprlib``)."""
    return reprlib.repr(value)


def as_count(value) -> int | None:
    """``value`` as a Python int when it is an integer (not a bool), else ``None``."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def require_integer(value, name: str, what: str = "a non-negative", minimum: int = 0) -> int:
    """``value`` as a Python int ``≥ minimum``, else an error naming ``name``.

    A non-integer is a ``TypeError`` (a float is not truncated, a string not parsed, a
    bool not counted; NumPy integers are integers), an integer below ``minimum`` a
    ``ValueError``: "`name` must be <what> integer, got …".
    """
    count = as_count(value)
    if count is None:
        raise TypeError(f"`{name}` must be {what} integer, got {short_repr(value)}")
    if count < minimum:
        raise ValueError(f"`{name}` must be {what} integer, got {count}")
    return count


def check_finite(values: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` unless every entry of ``values`` is finite."""
    if not all_finite(values):
        raise ValueError(f"`{name}` contains NaN or infinite values")


def as_block(value, name: str, *, square: bool = False, copy: bool = True) -> Block:
    """Validate, copy and normalise one matrix argument.

    Parameters
    ----------
    value : array_like or scipy.sparse matrix/array
        The user's matrix (2-D, real).
    name : str
        The argument's name, quoted in error messages.
    square : bool
        Require a square matrix.
    copy : bool
        ``False``: a C-contiguous float64 ndarray is wrapped as a read-only view, not
        copied, for a block that is used and dropped within one call (nothing keeps it),
        and its finiteness is left to :func:`require_symmetric`, whose pass over it
        finds NaN and infinities too.
    """
    if isinstance(value, LinearOperator):
        raise TypeError(f"`{name}` must be an explicit matrix, got a LinearOperator")
    checked = False  # whether every entry of the block's matrix m has been checked finite
    if not isinstance(value, np.ndarray) and sparse.issparse(value):
        check_dtype(value.dtype, name)
        if value.ndim != 2:
            raise ValueError(f"`{name}` must be 2-D, got a {value.ndim}-D sparse array")
        stored = _stored_diagonal_values(value)
        if stored is not None:  # the identity (B = I, say): no copy of the whole matrix
            if stored.size == value.shape[0] and _all_ones(stored):  # finite: no check
                return Block.identity(value.shape[0], name)
            d = _diagonal_copy(stored, value.shape[0])
            check_finite(d, name)
            return Block("diagonal", value.shape, freeze(d), True, name)
        m, symmetric = _band_copy(value) or _transposed_copy(value)
        if m is None:
            m = sparse.csc_array(value, dtype=np.float64, copy=True)
        m.sum_duplicates()
        check_finite(m.data, name)
        checked = True
        if symmetric and not _is_diagonal(m):
            block = Block("sparse", m.shape, freeze_sparse(m), False, name)
            seed(block, "_asymmetry", 0.0)  # proved exactly symmetric: no second check
            return block
    else:
        try:
            arr = value if type(value) is np.ndarray else np.asarray(value)  # np.matrix: no
        except Exception as exc:  # e.g. ragged nested lists
            raise TypeError(f"`{name}` must be a matrix, got {_describe(value)}") from exc
        if arr.dtype.kind not in "biuf":
            check_dtype(arr.dtype, name)
        if arr.ndim != 2:
            raise ValueError(f"`{name}` must be 2-D, got an array of shape {arr.shape}")
        if not copy and arr.dtype == np.float64 and arr.flags.c_contiguous:
            m = arr.view()  # read-only below; the caller's array keeps its flags
        else:
            m = np.empty(arr.shape)  # filled by assignment: half the time of np.array(arr)
            m[...] = arr  # real (checked above), so the unsafe cast is a plain conversion
            check_finite(m, name)
            checked = True
    shape = m.shape
    if square and shape[0] != shape[1]:
        raise ValueError(f"`{name}` must be square, got shape {shape}")
    if shape[0] == shape[1] and _is_diagonal(m):
        d = np.array(m.diagonal(), dtype=np.float64)
        if not checked:  # an uncopied array's entries are not checked yet
            check_finite(d, name)
        if _all_true(d == 1.0):
            return Block.identity(shape[0], name)
        d.flags.writeable = False
        return Block("diagonal", shape, d, True, name)
    if isinstance(m, np.ndarray):
        m.flags.writeable = False
        return Block("dense", shape, m, False, name)
    return Block("sparse", shape, freeze_sparse(m), False, name)


#: Half-bandwidths up to which :func:`_band_copy` recognises a full symmetric band.
BAND_COPY_MAX_HALF_WIDTH: int = 16


def _band_copy(value) -> tuple[sparse.csc_array, bool] | None:
    """``(copy, True)`` for a square float64 CSC or CSR *full band* that is symmetric.

    A full band of half-width ``b`` stores, in column ``j``, exactly the rows
    ``max(0, j − b) … min(n − 1, j + b)`` in order (AR(1) and random-walk precisions,
    and banded GMRFs). Its pattern is a closed formula, checked in O(nnz) comparisons
    with no transposition; its interior columns are the rows of an ``(n − 2b) × (2b+1)``
    view of the values, where entry ``(j + d, j)`` sits at ``[j, b + d]`` and its mirror
    ``(j, j + d)`` at ``[j + d, b − d]``: strided comparisons settle exact symmetry. Pairs
    with an entry in one of the first or last ``b`` columns lie in the leading and
    trailing ``2b × 2b`` blocks, compared with their transposes densely. The copy (three
    plain array copies, made first and then checked) is canonical by construction. For
    CSR input the arrays describe ``Mᵀ``, equal to ``M`` here. None for anything else (then
    :func:`_transposed_copy` decides); at n = 10⁶ (tridiagonal) this path takes about
    half the time of the transposition.
    """
    if value.format not in ("csc", "csr") or value.dtype != np.float64:
        return None
    n = value.shape[0]
    if value.shape[1] != n or n == 0 or value.nnz == 0:
        return None
    indptr, indices, data = value.indptr, value.indices, value.data
    if indptr[0] != 0:
        return None
    b = int(indptr[1]) - 1
    width = 2 * b + 1
    if not 0 <= b <= BAND_COPY_MAX_HALF_WIDTH or n < 2 * width:
        return None
    nnz = n * width - b * (b + 1)
    if value.nnz != nnz or indices.size < nnz or data.size < nnz:
        return None
    # Copied first and the copy checked: what is checked is what is kept (whatever
    # another thread does to the input meanwhile), and the copies are the first large
    # allocations of the call (the check's small temporaries come after them).
    indptr, indices, data = np.array(indptr), np.array(indices[:nnz]), np.array(data[:nnz])
    if not _full_band_indptr(indptr, n, b):
        return None
    start, stop = int(indptr[b]), int(indptr[n - b])
    m = n - 2 * b  # interior columns b … n − b − 1: rows j − b … j + b
    if not _sliding_rows(indices[start:stop], m, width):
        return None
    values = data[start:stop].reshape(m, width)
    step = max(1, _CHUNK // width)
    for lo in range(0, m, step):
        hi = min(lo + step, m)
        for d in range(1, b + 1):  # (j + d, j) against (j, j + d), both columns interior
            top = min(hi, m - d)
            if lo < top and not np.array_equal(
                values[lo:top, b + d], values[lo + d : top + d, b - d]
            ):
                return None
    for j in (*range(b), *range(n - b, n)):  # the edge columns' rows
        expected = np.arange(max(0, j - b), min(n, j + b + 1))
        if not np.array_equal(indices[indptr[j] : indptr[j + 1]], expected):
            return None
    for first in (0, n - 2 * b):  # pairs touching an edge column
        block = _dense_diagonal_block(indptr, indices, data, first, 2 * b)
        if not np.array_equal(block, block.T):
            return None
    copy = sparse.csc_array((data, indices, indptr), shape=value.shape)
    copy.has_canonical_format = True  # sorted rows, one entry per position
    freeze_sparse(copy)  # the block's storage: read-only, as as_block would make it
    _sksparse.remember_full_band(copy.indptr, copy.indices, b)
    return copy, True


def _full_band_indptr(indptr: np.ndarray, n: int, b: int) -> bool:
    """Whether ``indptr`` is the column pointer of a full band of half-width ``b``.

    Column ``j`` holds ``min(n − 1, j + b) − max(0, j − b) + 1`` rows, so ``indptr[j] =
    j·(2b+1) − b(b+1)/2`` from ``j = b`` to ``n − b`` (compared chunk by chunk, in the
    index dtype), the first and last ``b`` columns holding ``b + 1 + j`` and
    ``b + n − j`` rows.
    """
    width = 2 * b + 1
    nnz = n * width - b * (b + 1)
    head = [j * (b + 1) + j * (j - 1) // 2 for j in range(b + 1)]
    tail = [nnz - (r * (b + 1) + r * (r - 1) // 2) for r in range(b, -1, -1)]
    if not (np.array_equal(indptr[: b + 1], head) and np.array_equal(indptr[n - b :], tail)):
        return False
    shift = b * (b + 1) // 2
    # The index dtype (no casts), unless the last chunk's end would overflow it.
    fits = (n + 1) * width < np.iinfo(indptr.dtype).max
    dtype = indptr.dtype if fits else np.int64
    step = _chunk(dtype)
    for lo in range(b, n - b + 1, step):
        hi = min(lo + step, n - b + 1)
        expected = np.arange(lo * width - shift, hi * width - shift, width, dtype=dtype)
        if not np.array_equal(indptr[lo:hi], expected):
            return False
    return True


def _sliding_rows(rows: np.ndarray, m: int, width: int) -> bool:
    """Whether ``rows`` is ``r, r+1, …, r+width−1`` for each ``r = 0 … m−1`` in turn.

    The interior columns of a full band. Chunk by chunk, in the index dtype (no casts,
    temporaries in cache).
    """
    dtype = rows.dtype
    step = max(1, _chunk(dtype) // width)
    pattern = (np.arange(step, dtype=dtype)[:, None] + np.arange(width, dtype=dtype)).ravel()
    for lo in range(0, m, step):
        hi = min(lo + step, m)
        segment = rows[lo * width : hi * width]
        if not np.array_equal(segment, pattern[: segment.size] + dtype.type(lo)):
            return False
    return True


def _dense_diagonal_block(indptr, indices, data, first: int, size: int) -> np.ndarray:
    """``M[first:first+size, first:first+size]`` as a dense array (sorted, no duplicates)."""
    block = np.zeros((size, size))
    for j in range(first, first + size):
        rows = indices[indptr[j] : indptr[j + 1]]
        keep = (rows >= first) & (rows < first + size)
        block[rows[keep] - first, j - first] = data[indptr[j] : indptr[j + 1]][keep]
    return block


def _transposed_copy(value) -> tuple[sparse.csc_array | None, bool]:
    """The copy of a square float64 CSC or CSR matrix, found symmetric on the way, or None.

    The transpose's CSC arrays (one counting sort, row indices sorted) are new arrays; a
    square matrix whose own arrays equal them exactly is symmetric, and then the
    transpose *is* the matrix: it serves as the copy, and the symmetry check, which
    would build the same transpose again, is settled (``(copy, True)``). For a CSR input
    the arrays compared are its own CSR ones (the CSC arrays of ``Mᵀ``) against its
    conversion to CSC, which the copy needs anyway (``(copy, False)`` when they differ).
    Otherwise ``(None, False)``: a CSC copy is made as before. A matrix with NaN entries
    never compares equal, so its error comes from the usual checks.
    """
    if value.format not in ("csc", "csr") or value.dtype != np.float64:
        return None, False
    if value.shape[0] != value.shape[1] or value.nnz == 0:
        return None, False
    t = sparse.csc_array(value.T.tocsc() if value.format == "csc" else value.tocsc())
    same = (
        arrays_equal(value.indptr, t.indptr)
        and arrays_equal(value.indices, t.indices)
        and arrays_equal(value.data, t.data)
    )
    if value.format == "csr":
        return t, same
    return (t, True) if same else (None, False)


_all_true = np.logical_and.reduce
_any_true = np.logical_or.reduce


def _is_diagonal(m) -> bool:
    if not isinstance(m, np.ndarray):
        return _is_diagonal_csc(m)
    if _any_true(m.diagonal(1)):  # settles most non-diagonal matrices in O(n)
        return False
    return bool(np.count_nonzero(m) == np.count_nonzero(m.diagonal()))


def _stored_diagonal(value) -> np.ndarray | None:
    """The diagonal (a new float64 array) of a matrix stored as diagonal; else None.

    "Stored as diagonal": square DIA holding the main diagonal only, or square CSC or CSR
    with exactly one entry per column (row), on the diagonal. Such storage has no
    duplicates and no off-diagonal entry, so the matrix is diagonal whatever its
    canonical-format flags say: two O(n) comparisons settle it without the copy,
    duplicate summation and diagonal test of the general path.
    """
    stored = _stored_diagonal_values(value)
    return None if stored is None else _diagonal_copy(stored, value.shape[0])


#: Entries per chunk in the O(n) and O(nnz) comparisons of this module: index-sized
#: temporaries of at most 64 KiB stay in cache and below malloc's mmap threshold (128 KiB
#: by default), so they are recycled; larger ones are fresh pages each time (1200 page
#: faults per construction at n = 10⁵ with 512 KiB chunks, 3.4 against 1.9 ms).
_CHUNK: int = 1 << 14


def _chunk(dtype) -> int:
    """Entries of ``dtype`` per chunk: 64 KiB (see :data:`_CHUNK`)."""
    return _CHUNK * 4 // np.dtype(dtype).itemsize


def _stored_diagonal_values(value) -> np.ndarray | None:
    """The stored diagonal values of a matrix stored as diagonal, else None.

    A view, of any real dtype (see :func:`_stored_diagonal`). A DIA array's view may be
    shorter than ``n``: the missing entries are zeros.
    """
    n = value.shape[0]
    if value.format == "dia" and value.shape[1] == n:
        # scipy.sparse.eye_array and diags_array([d]) store one diagonal: offset 0, its
        # entry for column j at data[0, j] (DIA → CSR → CSC and the checks cost 10× more).
        if value.offsets.shape != (1,) or value.offsets[0] != 0:
            return None
        return value.data[0, : min(n, value.data.shape[1])]
    if value.format not in ("csc", "csr") or value.shape[1] != n or value.nnz != n:
        return None
    indptr, indices = value.indptr, value.indices
    if indptr[0] != 0:
        return None
    # indptr[k + 1] = k + 1 and indices[k] = k for every k, chunk by chunk (a whole-size
    # arange and boolean temporary would be fresh pages to fault in: 4.6 ms at n = 10⁶).
    step = _chunk(max(indptr.dtype, indices.dtype))
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        if not np.array_equal(
            indptr[lo + 1 : hi + 1], np.arange(lo + 1, hi + 1, dtype=indptr.dtype)
        ):
            return None
        if not np.array_equal(indices[lo:hi], np.arange(lo, hi, dtype=indices.dtype)):
            return None
    return value.data[:n]


def _diagonal_copy(stored: np.ndarray, n: int) -> np.ndarray:
    """A new float64 array of length ``n``: ``stored`` followed by zeros."""
    d = np.zeros(n) if stored.size < n else np.empty(n)
    d[: stored.size] = stored
    return d


def _all_ones(values: np.ndarray) -> bool:
    """Whether every entry of ``values`` equals 1 (False for NaN), chunk by chunk."""
    for lo in range(0, values.size, _CHUNK):
        if not _all_true(values[lo : lo + _CHUNK] == 1):
            return False
    return True


def _is_diagonal_csc(m: sparse.csc_array) -> bool:
    """Whether a canonical CSC array stores entries (explicit zeros too) on its diagonal only.

    Without duplicates, more stored entries than columns put two in one column, so most
    matrices are settled in O(1); otherwise each non-empty column's single row index is
    compared with the column's: O(n), and no COO copy of the matrix.
    """
    if m.nnz > m.shape[1]:
        return False
    if m.nnz == m.shape[1]:  # then diagonal exactly when the storage is the identity's
        return _stored_diagonal(m) is not None
    counts = np.diff(m.indptr)
    if counts.size and counts.max() > 1:
        return False
    return bool(np.array_equal(m.indices, np.flatnonzero(counts)))


def as_vectors(x, n: int, name: str, *, axis: int = 0) -> np.ndarray:
    """Validate the operand of a product or solve: ``n`` entries along ``axis``.

    Parameters
    ----------
    x : array_like or sparse matrix, 1-D or 2-D
        The user's vector(s): real or complex numbers, any NumPy or SciPy container.
    n : int
        Required length of ``axis`` (the order of the operator).
    name : str
        The argument's name, quoted in error messages.
    axis : int
        ``0``: the rows of ``x`` are ``n`` (``W @ x``); ``-1``: its columns are (``x @ W``).

    Returns
    -------
    ndarray
        A float64 array, or complex128 for complex input; copied only when converted.

    Raises
    ------
    ValueError
        For a ragged nested sequence, a shape that is not 1-D or 2-D, the wrong length
        along ``axis``, or NaN or infinite values.
    TypeError
        For values that are not numbers.
    """
    if sparse.issparse(x):
        arr = x.toarray() if x.ndim == 2 else x.toarray().ravel()
    else:
        try:
            arr = np.asarray(x)
        except ValueError as exc:  # NumPy's "inhomogeneous shape": rows of different lengths
            if not isinstance(x, (list, tuple)):
                raise
            raise ValueError(
                f"`{name}` is a ragged nested sequence (rows of different lengths); expected "
                f"an array of shape ({n},) or ({n}, k)"
            ) from exc
    kind = arr.dtype.kind
    if kind not in "biufc":
        raise TypeError(f"`{name}` must hold real or complex numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.complex128 if kind == "c" else np.float64, copy=False)
    if arr.ndim not in (1, 2):
        raise ValueError(f"`{name}` must be 1-D or 2-D, got an array of shape {arr.shape}")
    if arr.shape[axis] != n:
        what = "length" if arr.ndim == 1 else ("rows" if axis == 0 else "columns")
        got = f"length {arr.shape[0]}" if arr.ndim == 1 else f"{arr.shape[axis]} {what}"
        wanted = f"length {n}" if arr.ndim == 1 else f"{n} {what}"
        raise ValueError(f"`{name}` has {got} but the matrix is {n}×{n}; expected {wanted}")
    check_finite(arr, name)
    return arr


def as_rhs(b, n: int, name: str = "b") -> np.ndarray:
    """Validate a right-hand side of ``n`` rows (see :func:`as_vectors`)."""
    return as_vectors(b, n, name)


@dataclass(frozen=True, eq=False)
class Parts:
    """The normalised pieces of ``W = A⁻¹ + U B⁻¹ V`` (``V = Uᵀ`` when symmetric)."""

    A: Block
    B: Block
    U: Block
    V: Block
    symmetric: bool


def _as_list(value, name: str) -> list | None:
    """The terms of a block argument: ``None``, a list of matrices, or one matrix.

    A list (or tuple) holds one matrix per term when its items are matrices (2-D arrays,
    nested lists of rows, sparse matrices); a list of rows of numbers is one matrix given
    as nested lists (``B=[[4.0]]``, the 1×1 matrix), as NumPy would read it.
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            raise ValueError(f"`{name}` is an empty list; give at least one matrix")
        matrices = [_is_matrix_like(item) for item in value]
        if not any(matrices):
            return [value]
        if not all(matrices):
            raise ValueError(
                f"`{name}` mixes matrices and rows of numbers: give one matrix (a 2-D array "
                "or a nested list of rows) or a list of 2-D matrices, one per term"
            )
        return list(value)
    return [value]


def _is_matrix_like(item) -> bool:
    """Whether an item of a block list is a matrix (rather than a row of numbers)."""
    if sparse.issparse(item) or isinstance(item, LinearOperator):
        return True
    if isinstance(item, np.ndarray):
        return item.ndim >= 2
    if isinstance(item, (list, tuple)):  # a row is a sequence of numbers; a matrix is not
        return any(isinstance(entry, (list, tuple, np.ndarray)) for entry in item)
    return np.ndim(item) >= 2 if hasattr(item, "__array__") else False


def term_names(name: str, count: int) -> list[str]:
    return [name] if count == 1 else [f"{name}[{i}]" for i in range(count)]


def symmetric_flag(symmetric) -> bool | None:
    """``symmetric`` as ``None``, ``True`` or ``False``; ``TypeError`` for anything else.

    A NumPy bool counts as the Python bool it equals. Other truthy values (``1``,
    ``1.0``, a 0-d array) are refused rather than interpreted: ``1 == True`` would pass a
    membership test, and then fail the ``is True`` tests that choose the form.
    """
    if symmetric is None or isinstance(symmetric, bool):
        return symmetric
    if isinstance(symmetric, np.bool_):
        return bool(symmetric)
    raise TypeError(
        "`symmetric` must be None, True or False (a Python or NumPy bool), "
        f"got {symmetric!r} ({type(symmetric).__name__})"
    )


def normalise(A, B, U=None, V=None, X=None, symmetric=None, shift=0.0) -> Parts:
    """Validate the arguments of :class:`~woodbury_sparse.WoodburyMatrix`.

    Implements the R package's rules (see the class docstring), with clear errors where
    R silently ignores an argument.
    """
    symmetric = symmetric_flag(symmetric)
    general_given = U is not None or V is not None
    if X is not None and general_given:
        raise ValueError(
            "`X` cannot be combined with `U` or `V`: give `X` for the symmetric form "
            "A⁻¹ + X B⁻¹ Xᵀ, or `U` and `V` for the general form A⁻¹ + U B⁻¹ V"
        )
    if symmetric is True and general_given:
        raise ValueError(
            "`symmetric=True` cannot be combined with `U` or `V`; give `X` instead "
            "for W = A⁻¹ + X B⁻¹ Xᵀ"
        )
    if symmetric is False and X is not None:
        raise ValueError(
            "`symmetric=False` cannot be combined with `X`; give `U` and `V` for the "
            "general form (or `symmetric=None`)"
        )

    # A block: validated by the caller under its own name (``ggm``'s `theta`).
    a = A if isinstance(A, Block) else as_block(A, "A", square=True)
    if isinstance(shift, bool) or not isinstance(shift, (int, float, np.integer, np.floating)):
        raise TypeError(f"`shift` must be a real number, got {shift!r}")
    if not np.isfinite(shift):
        raise ValueError(f"`shift` must be finite, got {shift!r}")
    if shift != 0:
        beta = Block("diagonal", a.shape, freeze(np.full(a.shape[0], float(shift))), True)
        a = a.plus(beta).renamed("A")
    b_blocks, u_blocks, v_blocks = term_blocks(a, B, U, V, X)

    square_blocks = [a, *b_blocks]
    if symmetric is None:
        is_symmetric = X is not None or (
            not general_given and all(blk.asymmetry() <= SYMMETRY_RTOL for blk in square_blocks)
        )
    else:
        is_symmetric = symmetric
    if is_symmetric:
        require_symmetric(
            square_blocks, "the symmetric form A⁻¹ + X B⁻¹ Xᵀ needs symmetric `A` and `B`"
        )
        a = a.symmetrized()
        b_blocks = [blk.symmetrized() for blk in b_blocks]

    b_all = block_diag(b_blocks, "B")
    u_all = _hstack(u_blocks, "X" if X is not None else "U")
    if is_symmetric:
        return Parts(a, b_all, u_all, u_all.T, True)
    v_all = _hstack([blk.T for blk in v_blocks], "V").T
    return Parts(a, b_all, u_all, v_all, False)


def term_blocks(a: Block, B, U, V, X) -> tuple[list[Block], list[Block], list[Block]]:
    """The ``B``, ``U`` and ``V`` blocks of each term, validated against ``A`` (block ``a``).

    The one validation of terms, for the constructor and for ``add_terms``: lists give
    one matrix per term, a single matrix serves every term, a missing ``U``/``V`` is the
    identity, and ``X`` gives ``V = Xᵀ``. The caller checks the combination of arguments
    and stacks the blocks.
    """
    n = a.shape[0]
    seq = (list, tuple)
    if B is not None and not (
        isinstance(B, seq) or isinstance(U, seq) or isinstance(V, seq) or isinstance(X, seq)
    ):
        # One term, each argument one matrix (or None): the loop below, without its lists.
        b = as_block(B, "B", square=True)
        p = b.shape[0]
        side = "X" if X is not None else "U"
        one = {"U": None if U is None else [U], "V": None if V is None else [V], "X": [X]}
        plain = {"U": ["U"], "V": ["V"], "X": ["X"]}
        u = _side_block(one, side, 0, plain, n, p, b, a)
        v = u.T if side == "X" else _side_block(one, "V", 0, plain, n, p, b, a, rows=False)
        return [b], [u], [v]
    lists = {key: _as_list(val, key) for key, val in (("B", B), ("U", U), ("V", V), ("X", X))}
    if lists["B"] is None:
        raise TypeError("`B` is required")
    count = max(len(v) for v in lists.values() if v is not None)
    names = {key: term_names(key, count) for key in lists}
    side = "X" if lists["X"] is not None else "U"
    b_blocks, u_blocks, v_blocks = [], [], []
    for i in range(count):
        b = as_block(lists["B"][i % len(lists["B"])], names["B"][i], square=True)
        p = b.shape[0]
        u = _side_block(lists, side, i, names, n, p, b, a)
        v = u.T if side == "X" else _side_block(lists, "V", i, names, n, p, b, a, rows=False)
        b_blocks.append(b)
        u_blocks.append(u)
        v_blocks.append(v)
    return b_blocks, u_blocks, v_blocks


def require_symmetric(blocks: list[Block], why: str) -> None:
    """Check blocks that are about to be symmetrised, ``(M + Mᵀ)/2``.

    Raises ``ValueError`` for the first block whose relative asymmetry exceeds ``√eps``
    (:data:`SYMMETRY_RTOL`): it is not symmetric. Warns (a
    :class:`~woodbury_sparse.AsymmetryWarning` naming the block and its asymmetry) for
    each block above :func:`symmetry_roundoff`: symmetrising it changes it by more than
    rounding, silently otherwise.
    """
    for blk in blocks:
        asym = blk.asymmetry()
        if np.isnan(asym) and not blk.is_finite():  # a block that as_block did not check
            raise ValueError(f"`{blk.name}` contains NaN or infinite values")
        if asym > SYMMETRY_RTOL:
            raise ValueError(
                f"`{blk.name}` is not symmetric (‖M − Mᵀ‖/‖M‖ = {asym:.2e} > "
                f"{SYMMETRY_RTOL:.1e}), but {why}"
            )
    for blk in blocks:
        asym = blk.asymmetry()
        if asym == 0.0:  # the usual case: no rounding to weigh it against
            continue
        roundoff = symmetry_roundoff(blk.shape[0])
        if asym > roundoff:
            warn(
                f"`{blk.name}` is symmetric only to ‖M − Mᵀ‖/‖M‖ = {asym:.1e}, more than "
                f"rounding leaves (4·√n·eps = {roundoff:.1e}): it is used as (M + Mᵀ)/2; "
                "symmetrise it yourself to silence this warning",
                AsymmetryWarning,
            )


def _side_block(lists, key, i, names, n, p, b, a, rows=True) -> Block:
    """Term ``i`` of ``U``/``X`` (``n×p``, ``rows=True``) or ``V`` (``p×n``)."""
    values = lists[key]
    expected = (n, p) if rows else (p, n)
    if values is None:
        if n != p:
            raise ValueError(
                f"`{key}` defaults to the identity, which needs `{b.name}` to be {n}×{n} like "
                f"`A`; got `{b.name}` of shape {b.shape} (give `{key}` explicitly)"
            )
        return Block.identity(n, key)
    blk = as_block(values[i % len(values)], names[key][i])
    if blk.shape != expected:
        raise ValueError(
            f"`{blk.name}` has shape {blk.shape}, which does not fit `A` of shape {a.shape} "
            f"and `{b.name}` of shape {b.shape}: expected {expected}"
        )
    return blk


def block_diag(blocks: list[Block], name: str) -> Block:
    if len(blocks) == 1:
        return blocks[0] if blocks[0].name == name else blocks[0].renamed(name)
    p = sum(blk.shape[0] for blk in blocks)
    symmetric = all(blk.symmetric for blk in blocks)
    if all(blk.kind in ("identity", "diagonal") for blk in blocks):
        d = np.concatenate([blk.diagonal() for blk in blocks])
        if np.all(d == 1.0):
            return Block.identity(p, name)
        return Block("diagonal", (p, p), freeze(d), True, name)
    if all(blk.kind == "dense" for blk in blocks):
        m = linalg.block_diag(*(blk.data for blk in blocks))
    else:
        m = sparse.block_diag([blk.operand for blk in blocks], format="csc")
    return Block.from_matrix(m, symmetric, name)


def _hstack(blocks: list[Block], name: str) -> Block:
    if len(blocks) == 1:
        return blocks[0] if blocks[0].name == name else blocks[0].renamed(name)
    if all(blk.kind == "dense" for blk in blocks):
        return Block.from_matrix(np.hstack([blk.data for blk in blocks]), name=name)
    m = sparse.hstack([blk.operand for blk in blocks], format="csc")
    return Block.from_matrix(m, name=name)
