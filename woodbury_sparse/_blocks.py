"""Normalised, immutable matrix blocks and the little algebra the operators need.

A :class:`Block` is one of four kinds: ``identity``, ``diagonal`` (stored as its
diagonal), ``dense`` (a read-only C-contiguous float64 ndarray) or ``sparse`` (a CSC
array with sorted indices and read-only storage). Square blocks own a lazily built,
cached factorisation; the transpose of a block shares it.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg, sparse
from scipy.sparse import linalg as splinalg

from . import _blas
from ._cache import LOCK_KEY, Handover, cached_property, seed, weak_cached_property
from ._factor import Factor, _sksparse, factorize, refactorize, sparse_one_norm
from ._factor._base import dominance_rcond_bound

KINDS = ("identity", "diagonal", "dense", "sparse")


def freeze(array: np.ndarray) -> np.ndarray:
    """Mark ``array`` read-only and return it."""
    array.flags.writeable = False
    return array


def freeze_sparse(m: sparse.csc_array) -> sparse.csc_array:
    """Sort ``m``'s indices and mark its storage read-only."""
    m.sort_indices()  # a no-op (no O(nnz) check) when SciPy already knows them sorted
    for part in (m.data, m.indices, m.indptr):
        part.flags.writeable = False
    return m


#: Entries per chunk in :func:`arrays_equal` (see there).
_EQUAL_CHUNK: int = 1 << 16


def arrays_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """``numpy.array_equal`` for 1-D arrays, chunk by chunk.

    The boolean temporaries stay small (in cache, recycled by the allocator), where the
    whole-array comparison makes an entry-sized one to fault in (30 MB for the indices of
    a tridiagonal matrix of order 10⁷); the first differing chunk ends the comparison.
    """
    if a.shape != b.shape:
        return False
    if a.dtype == b.dtype and _same_memory(a, b):  # one array seen twice (a shared pattern)
        return True
    for lo in range(0, a.size, _EQUAL_CHUNK):
        if not np.array_equal(a[lo : lo + _EQUAL_CHUNK], b[lo : lo + _EQUAL_CHUNK]):
            return False
    return True


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays of one shape and dtype are views of the same entries."""
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
    )


def same_sparse_pattern(first: Block, second: Block) -> bool:
    """Whether two blocks are sparse, of one shape, and store exactly the same positions."""
    if first.kind != "sparse" or second.kind != "sparse" or first.shape != second.shape:
        return False
    a, b = first.data, second.data
    return arrays_equal(a.indptr, b.indptr) and arrays_equal(a.indices, b.indices)


def diagonal_positions(m: sparse.csc_array) -> np.ndarray | None:
    """Where a canonical square CSC array stores its diagonal, or None if not everywhere.

    ``m.data[positions]`` is the diagonal, one position per column, when every column
    stores its diagonal entry (as the GMRF precisions here do); otherwise None.
    """
    n = m.shape[0]
    half_width = _sksparse.known_full_band(m) if m.shape[1] == n else None
    if half_width is not None:  # column j holds rows max(0, j − b) … : its diagonal is at
        # offset min(j, b) (O(n) arithmetic, no pass over the entries)
        offsets = np.minimum(np.arange(n, dtype=np.intp), half_width)
        offsets += m.indptr[:-1]
        return offsets
    if m.shape[1] != n or not m.has_canonical_format or m.nnz < n:
        return None
    columns = np.repeat(np.arange(n, dtype=m.indices.dtype), np.diff(m.indptr))
    positions = np.flatnonzero(m.indices == columns)
    return positions if positions.size == n else None


#: :func:`all_finite` tests arrays of up to this many entries with ``isfinite`` (a boolean
#: temporary of at most 64 KiB, recycled by the allocator), larger ones by a sum.
FINITE_CHUNK: int = 1 << 16

_isfinite = np.isfinite
_all_true = np.logical_and.reduce


def all_finite(values: np.ndarray) -> bool:
    """Whether every entry of ``values`` (a float ndarray) is finite.

    Up to :data:`FINITE_CHUNK` entries, ``isfinite`` and a logical ``and``: compiled
    loops that raise no floating-point exception, so no ``errstate`` (which cost more than
    the test itself on a ``20×20`` block: 1.9 µs against 1 µs). Larger arrays are summed,
    without an entry-sized temporary: a finite sum proves every entry finite (NaN and
    ±inf propagate through it); only a sum that overflowed needs the entry-wise look. The
    sum reads 4·10⁶ entries in 1.2 ms, where ``isfinite`` in cache-sized chunks took
    longer, fused into the copy of ``X`` or not (measured at ``n = 2·10⁵``, ``p = 20``).
    """
    if values.size <= FINITE_CHUNK:
        return bool(_all_true(_isfinite(values), axis=None))
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(values, axis=None)):
            return True
    return bool(np.all(np.isfinite(values)))


def _sparse_diagonal_matrix(d: np.ndarray) -> sparse.csc_array:
    """``diag(d)`` as a CSC array without its zero entries, built directly.

    The same matrix as ``scipy.sparse.diags_array(d, format="csc")`` (which drops the
    zeros too), without the detour through the DIA format, which costs several times
    more at ``n`` in the millions.
    """
    n = d.size
    rows = np.flatnonzero(d) if not np.all(d) else np.arange(n)
    index = np.int32 if n < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(n + 1, dtype=index)
    indptr[rows + 1] = 1
    np.cumsum(indptr, out=indptr)
    out = sparse.csc_array(
        (np.array(d[rows], dtype=np.float64), rows.astype(index), indptr), shape=(n, n)
    )
    out.has_canonical_format = True  # one entry per column at most: sorted, no duplicates
    return out


def sparse_asymmetry(m: sparse.csc_array) -> float:
    """``‖M − Mᵀ‖_F / ‖M‖_F`` of a square CSC array with sorted indices.

    The CSC arrays of ``Mᵀ`` come from one O(nnz) transposition (a counting sort). The
    usual case, a symmetric matrix, is then settled by comparing them with ``M``'s:
    equal arrays mean ``M = Mᵀ`` exactly. When only the values differ on a common
    pattern (round-off in a computed precision matrix), the difference is taken entry by
    entry; only a matrix whose pattern is not symmetric goes through SciPy's sparse
    subtraction, which builds ``M − Mᵀ`` as a new matrix. Entries are scaled by the
    largest one first: norms of entries ~1e200 (or ~1e-200) would overflow (underflow)
    and make the ratio NaN (0).
    """
    data = m.data
    if data.size == 0:
        return 0.0
    peak = max(float(data.max()), -float(data.min()))  # no |M| temporary
    if peak == 0.0:
        return 0.0
    t = m.T.tocsc()  # the CSR view of M is Mᵀ; to CSC by counting sort, rows sorted
    same_pattern = arrays_equal(m.indptr, t.indptr) and arrays_equal(m.indices, t.indices)
    if same_pattern and arrays_equal(data, t.data):
        return 0.0
    if same_pattern and m.has_canonical_format:  # no duplicates: entries pair up 1:1
        scaled = data / peak
        scale = float(np.linalg.norm(scaled))
        if scale == 0.0:  # pragma: no cover - peak > 0 makes one entry 1
            return 0.0
        return float(np.linalg.norm(scaled - t.data / peak)) / scale
    # Divided entry by entry: SciPy's ``m / peak`` multiplies by 1/peak, which is inf
    # for a subnormal peak (and made the ratio NaN).
    scaled = sparse.csc_array((data / peak, m.indices, m.indptr), shape=m.shape)
    scale = splinalg.norm(scaled)
    return float(splinalg.norm(scaled - scaled.T) / scale) if scale > 0 else 0.0


#: Rows and columns of the tiles in which a dense matrix is compared with its transpose.
_TILE_ROWS, _TILE_COLUMNS = 128, 256


def dense_asymmetry(m: np.ndarray) -> float:
    """``‖M − Mᵀ‖_F / ‖M‖_F`` of a square C-contiguous ndarray, in one pass, by tiles.

    Each tile right of the diagonal is compared with the transposed tile below it: the
    temporaries are tile-sized and the transposed reads stay within a few hundred pages
    (the whole-matrix ``M − M.T`` walks ``M.T`` with a stride of a full row, missing the
    cache and the TLB, and costs several times more at ``n`` in the thousands). The sums
    of squares are ``ddot`` calls on one BLAS thread (:func:`_blas.one_thread`): many
    small calls woke the pools, and on a busy machine waited for them, for most of a dense
    update's time. Only when a sum of squares overflows or underflows (entries beyond
    about ``1e±100``) are the entries scaled by the largest one first (a second pass); a
    NaN or an infinity makes the result NaN.
    """
    if m.size == 0:
        return 0.0
    with _blas.one_thread(), np.errstate(over="ignore", invalid="ignore"):  # checked below
        diff2, total2 = _asymmetry_sums(m, 1.0)
        if not (_SAFE_SQUARES < total2 < 1.0 / _SAFE_SQUARES):
            if not all_finite(m):
                return float("nan")
            peak = max(float(m.max()), -float(m.min()))  # no |M| temporary
            if peak == 0.0:
                return 0.0
            diff2, total2 = _asymmetry_sums(m, peak)
    return float(np.sqrt(diff2 / total2))


#: Sums of squares between this and its reciprocal neither overflowed nor lost the
#: differences to underflow (differences below ``eps²·total`` do not matter).
_SAFE_SQUARES = 1e-200


def _asymmetry_sums(m: np.ndarray, scale: float) -> tuple[float, float]:
    """``(‖M − Mᵀ‖²_F, ‖M‖²_F)`` of ``M / scale``, tile by tile (see dense_asymmetry)."""
    n = m.shape[0]
    diff2 = total2 = 0.0
    rows_, columns = _TILE_ROWS, _TILE_COLUMNS
    for i in range(0, n, rows_):
        rows = m[i : i + rows_] if scale == 1.0 else m[i : i + rows_] / scale
        total2 += _blas.squared_norm(rows)
        # The first tile holds the square on the diagonal, both entries of its pairs;
        # the others hold one entry of each pair.
        j = i
        while j < n:
            width = max(columns, rows_) if j == i else columns  # the first holds the square
            below = m[j : j + width, i : i + rows_]
            d = rows[:, j : j + width] - (below.T if scale == 1.0 else below.T / scale)
            if j == i:
                diff2 += _blas.squared_norm(d[:, :rows_])
                diff2 += 2.0 * _blas.squared_norm(d[:, rows_:])
            else:
                diff2 += 2.0 * _blas.squared_norm(d)
            j += width
    return diff2, total2


class Block:
    """An immutable matrix of one of the kinds in :data:`KINDS`.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    shape : tuple of int
        Shape of the matrix.
    data : None, ndarray or csc_array
        ``None`` for the identity, the diagonal for ``diagonal``, the matrix otherwise.
        Taken over as it is: callers pass frozen storage nobody else holds.
    symmetric : bool
        Whether the block is exactly symmetric (square blocks only).
    name : str
        Name in error messages.
    transpose_of : Block, optional
        The block this is the transpose of (its factorisation is that block's).
    factor : Factor, optional
        The block's factorisation, when the caller already has it (an update that
        reused an old factorisation's work); built on first use otherwise.
    analysis_donor : Factor, optional
        A factorisation of another matrix with this block's sparsity pattern, whose
        symbolic analysis this block's own factorisation reuses (held until then only).
    """

    #: A factorisation whose symbolic analysis ``factor`` may reuse (see ``__init__``).
    _analysis_donor: Handover | None = None

    def __init__(
        self,
        kind,
        shape,
        data,
        symmetric=False,
        name="",
        transpose_of=None,
        *,
        factor: Factor | None = None,
        analysis_donor: Factor | None = None,
    ):
        self.kind = kind
        self.shape = (int(shape[0]), int(shape[1]))
        self.data = data
        self.symmetric = bool(symmetric)
        self.name = name
        self._transpose_of = transpose_of
        if analysis_donor is not None:
            self._analysis_donor = Handover(analysis_donor)
        if factor is not None:
            seed(self, "factor", factor)

    # -- construction helpers -------------------------------------------------------
    @classmethod
    def identity(cls, n: int, name: str = "") -> Block:
        return cls("identity", (n, n), None, True, name)

    @classmethod
    def from_matrix(cls, m, symmetric=False, name="") -> Block:
        """Wrap a float64 ndarray or sparse matrix produced by our own arithmetic."""
        if not isinstance(m, np.ndarray) and sparse.issparse(m):
            return cls("sparse", m.shape, freeze_sparse(sparse.csc_array(m)), symmetric, name)
        m = np.ascontiguousarray(m, dtype=np.float64)
        m.flags.writeable = False
        return cls("dense", m.shape, m, symmetric, name)

    def renamed(self, name: str) -> Block:
        """The same block (sharing storage and factorisation) under another name."""
        return Block(
            self.kind,
            self.shape,
            self.data,
            self.symmetric,
            name,
            self._transpose_of,
            factor=self.__dict__.get("factor"),  # peek(self, "factor")
        )

    def with_factor(self, factor: Factor | None = None, analysis_donor: Factor | None = None):
        """The same block (sharing storage) with a factorisation, or a donor of analysis.

        ``factor``: the block's factorisation, already built (by an update); ``None``
        leaves it to be built on first use, reusing ``analysis_donor``'s symbolic analysis
        when given (a factorisation of a matrix with this block's sparsity pattern).
        """
        if factor is None and analysis_donor is None:
            return self
        return Block(
            self.kind,
            self.shape,
            self.data,
            self.symmetric,
            self.name,
            self._transpose_of,
            factor=factor,
            analysis_donor=analysis_donor,
        )

    # -- views ------------------------------------------------------------------------
    @property
    def is_square(self) -> bool:
        return self.shape[0] == self.shape[1]

    @property
    def T(self) -> Block:
        """The transpose, sharing storage and factorisation.

        A symmetric block is its own transpose (not cached: a block holding itself would
        be a reference cycle); a transposed block holds its original, which holds its
        transpose weakly only.
        """
        if self.symmetric or self.kind in ("identity", "diagonal"):
            return self
        if self._transpose_of is not None:
            return self._transpose_of
        return self._transposed

    @weak_cached_property
    def _transposed(self) -> Block:
        data = self.data.T
        if self.kind == "sparse":
            data = freeze_sparse(sparse.csc_array(data))
        return Block(self.kind, self.shape[::-1], data, False, self.name, transpose_of=self)

    def toarray(self) -> np.ndarray:
        """A new dense ndarray holding the block."""
        if self.kind == "identity":
            return np.eye(self.shape[0])
        if self.kind == "diagonal":
            out = np.zeros(self.shape)
            out.reshape(-1)[:: self.shape[0] + 1] = self.data  # np.diag, without its wrapper
            return out
        if self.kind == "sparse":
            return self.data.toarray()
        out = np.empty(self.shape)  # filled by copyto: half the time of np.array(data)
        np.copyto(out, self.data)
        return out

    def tosparse(self) -> sparse.csc_array:
        """The block as a (new) CSC array."""
        if self.kind == "identity":
            return _sparse_diagonal_matrix(np.ones(self.shape[0]))
        if self.kind == "diagonal":
            return _sparse_diagonal_matrix(self.data)
        return sparse.csc_array(self.data, copy=True)

    @property
    def operand(self):
        """The block in a form that ``@`` and ``+`` understand (sparse for diagonals)."""
        if self.kind in ("dense", "sparse"):
            return self.data
        return self.tosparse()

    @property
    def nbytes(self) -> int:
        """Bytes of storage held by the block."""
        if self.kind == "identity":
            return 0
        if self.kind == "sparse":
            return self.data.data.nbytes + self.data.indices.nbytes + self.data.indptr.nbytes
        return self.data.nbytes

    # -- algebra ----------------------------------------------------------------------
    def matmul(self, x: np.ndarray) -> np.ndarray:
        """``self @ x`` for a dense 1-D or 2-D ``x``; never modifies ``x``.

        For the identity ``x`` itself is returned: callers must not write into results.
        """
        if self.kind == "identity":
            return x
        if self.kind == "diagonal":
            return self.data * x if x.ndim == 1 else self.data[:, None] * x
        if self.kind == "dense":
            return _blas.matmul(self.data, x)
        return self.data @ x

    def times(self, other: Block) -> Block:
        """The product ``self @ other`` as a block (dense unless both are sparse-like)."""
        if self.kind == "identity":
            return other
        if other.kind == "identity":
            return self
        if self.kind == "diagonal" and other.kind == "diagonal":
            return Block("diagonal", self.shape, freeze(self.data * other.data))
        if other.kind == "dense":
            return Block.from_matrix(self.matmul(other.data))
        if self.kind == "dense":  # dense @ sparse, computed as (sparseᵀ @ denseᵀ)ᵀ
            return Block.from_matrix((other.operand.T @ self.data.T).T)
        return Block.from_matrix(self.operand @ other.operand)

    def plus(self, other: Block) -> Block:
        """The sum ``self + other`` as a block."""
        if self.kind in ("identity", "diagonal") and other.kind in ("identity", "diagonal"):
            total = self.diagonal() + other.diagonal()
            return Block("diagonal", self.shape, freeze(total))
        if self.kind == "dense" or other.kind == "dense":
            total = self.toarray() if self.kind != "dense" else np.array(self.data)
            if other.kind == "dense":
                total += other.data
            elif other.kind == "sparse":
                total += other.data.toarray()
            else:
                total[np.diag_indices_from(total)] += other.diagonal()
            return Block.from_matrix(total)
        diagonal_kinds = ("identity", "diagonal")
        if self.kind in diagonal_kinds or other.kind in diagonal_kinds:
            matrix, diagonal = (other, self) if self.kind in diagonal_kinds else (self, other)
            positions = diagonal_positions(matrix.data)
            if positions is not None:
                # Every diagonal entry is stored: the sum has the sparse block's pattern.
                # Its index arrays are shared (read-only, as the block's are), so that an
                # O = B + A sees A's pattern at once (same_sparse_pattern), and only the
                # values are new: one copy, no sparse addition and conversions.
                m = matrix.data
                values = np.array(m.data)
                values[positions] += diagonal.diagonal()
                total = sparse.csc_array((values, m.indices, m.indptr), shape=m.shape)
                total.has_canonical_format = True
                return Block("sparse", self.shape, freeze_sparse(total))
        left, right = self.operand, other.operand
        total = left + right
        same_format = left.format == right.format == total.format
        if same_format and left.has_canonical_format and right.has_canonical_format:
            # SciPy adds canonical operands entry by entry in index order: the sum is
            # canonical too, and saying so spares freeze_sparse an O(nnz) sortedness check.
            total.has_canonical_format = True
        return Block.from_matrix(total)

    def diagonal(self) -> np.ndarray:
        """The main diagonal as a new 1-D array."""
        if self.kind == "identity":
            return np.ones(self.shape[0])
        if self.kind == "diagonal":
            return np.array(self.data)
        return np.array(self.data.diagonal())

    def symmetrized(self) -> Block:
        """``(M + Mᵀ) / 2`` marked symmetric (diagonal kinds are returned as they are)."""
        if self.kind in ("identity", "diagonal") or self.symmetric:
            return self
        if self.asymmetry() == 0.0:  # exactly symmetric already: share the storage
            return Block(self.kind, self.shape, self.data, True, self.name)
        m = 0.5 * (self.data + self.data.T)
        return Block.from_matrix(m, symmetric=True, name=self.name)

    def asymmetry(self) -> float:
        """``‖M − Mᵀ‖_F / ‖M‖_F`` (0 for a zero matrix); computed once."""
        if self.symmetric or self.kind in ("identity", "diagonal"):  # exactly symmetric
            return 0.0
        return self._asymmetry

    @cached_property
    def _asymmetry(self) -> float:
        if self.kind in ("identity", "diagonal") or self.symmetric:  # exactly symmetric
            return 0.0
        if self.kind == "dense":
            return dense_asymmetry(self.data)
        return sparse_asymmetry(self.data)

    def positive_count(self) -> int | None:
        """Number of positive eigenvalues of a symmetric block, or None when unknown cheaply.

        Read off the diagonal, a positive definite factorisation, the eigenvalues of a
        dense block, or the factorisation's own inertia (see ``Factor.positive_count``).
        """
        if self.kind in ("identity", "diagonal"):
            return int(np.count_nonzero(self.diagonal() > 0))
        factor = self.factor
        if factor.positive_definite:
            return self.shape[0]
        if self.kind == "dense":
            return int(np.count_nonzero(linalg.eigvalsh(self.data) > 0))
        return factor.positive_count()

    def is_finite(self) -> bool:
        """Whether every stored entry is finite."""
        if self.kind == "identity":
            return True
        values = self.data.data if self.kind == "sparse" else self.data
        return all_finite(values)

    def one_norm(self) -> float:
        """``‖M‖₁``, the largest absolute column sum."""
        if self.kind == "identity":
            return 1.0 if self.shape[0] else 0.0
        if self.kind == "diagonal":
            return float(np.abs(self.data).max(initial=0.0))
        if self.kind == "sparse":
            return sparse_one_norm(self.data)
        column_sums = abs(self.data).sum(axis=0)
        return float(np.max(column_sums, initial=0.0))

    @cached_property
    def rcond_bound(self) -> float:
        """A proven lower bound on ``1 / (‖M‖₁ ‖M⁻¹‖₁)``, or 0.0 (nothing proven).

        For a sparse block, Varah's bound for a strictly diagonally dominant matrix
        (:func:`~woodbury_sparse._factor._base.dominance_rcond_bound`, one ``O(nnz)``
        pass); dense factors' LAPACK estimates cost little beside their factorisation,
        and diagonal blocks have no condition test, so they are not bounded here.
        """
        if self.kind != "sparse":
            return 0.0
        return dominance_rcond_bound(self.data)

    def densified(self, max_order: int = 256, max_density: float = 0.1) -> Block:
        """A dense copy of a sparse block that is small or not really sparse."""
        if self.kind != "sparse":
            return self
        n = max(self.shape)
        density = self.data.nnz / max(1, self.shape[0] * self.shape[1])
        if n <= max_order or density > max_density:
            return Block.from_matrix(self.data.toarray(), self.symmetric, self.name)
        return self

    # -- factorisation ------------------------------------------------------------
    @cached_property
    def factor(self) -> Factor:
        """The block's factorisation, built on first use and cached."""
        if self._transpose_of is not None:
            return self._transpose_of.factor.T
        # A donor's matrix has this block's pattern: numeric phase only. Taken once, so
        # that the donor's factor is not kept alive by this block.
        donor = None if self._analysis_donor is None else self._analysis_donor.take()
        # The singularity check reuses the dominance bound when it was wanted first (O's).
        args = (self.data, self.kind, self.shape[0], self.symmetric, self.name)
        bound = self.__dict__.get("rcond_bound")  # peek(self, "rcond_bound")
        if donor is not None:
            return refactorize(donor, *args, rcond_bound=bound)
        return factorize(*args, rcond_bound=bound)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("factor", None)
        state.pop("_analysis_donor", None)  # a CHOLMOD factor: not picklable; only a hint
        state.pop("_transposed", None)  # a weak reference
        state.pop(LOCK_KEY, None)  # the caches' lock: made afresh, lazily, where restored
        if self._transpose_of is not None:  # rebuilt from the original: pickled once
            state["data"] = None
        return state

    def __setstate__(self, state):
        for name, value in state.items():
            setattr(self, name, value)
        if self.data is None and self._transpose_of is not None:
            data = self._transpose_of.data.T
            self.data = freeze_sparse(sparse.csc_array(data)) if self.kind == "sparse" else data
        for part in self._storage():
            part.flags.writeable = False

    def _storage(self):
        if self.kind == "sparse":
            return (self.data.data, self.data.indices, self.data.indptr)
        if self.kind in ("dense", "diagonal"):
            return (self.data,)
        return ()

    def row_reader(self) -> RowReader:
        """The block in a form that reads rows and entries cheaply (see :class:`RowReader`)."""
        return RowReader(self)


class RowReader:
    """Rows and entries of a square block, read a slice at a time.

    Made once for many reads: a sparse block is converted to CSR (rows slice in time
    proportional to their entries), a dense one is read in place, a diagonal one (the
    identity included) is kept as its diagonal.

    Parameters
    ----------
    block : Block
        The square block to read.
    """

    def __init__(self, block: Block) -> None:
        self.n = block.shape[0]
        if block.kind == "sparse":
            self._rows = sparse.csr_array(block.data)
        elif block.kind == "dense":
            self._rows = block.data
        else:
            self._rows = block.diagonal()

    def rows(self, r0: int, r1: int, c0: int = 0) -> np.ndarray:
        """Rows ``r0:r1``, columns ``c0:``, as a new dense array."""
        a = self._rows
        if sparse.issparse(a):
            return a[r0:r1, c0:].toarray()
        if a.ndim == 2:
            return np.array(a[r0:r1, c0:])
        out = np.zeros((r1 - r0, self.n - c0))
        rows = np.arange(r0, r1)
        keep = rows >= c0
        out[np.flatnonzero(keep), rows[keep] - c0] = a[r0:r1][keep]
        return out

    def entries(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """The entries ``(i[k], j[k])`` as a 1-D array."""
        a = self._rows
        if sparse.issparse(a):
            return np.asarray(a[i, j]).ravel()
        if a.ndim == 2:
            return a[i, j]
        return np.where(i == j, a[i], 0.0)
