"""The only module that imports scikit-sparse.

scikit-sparse 0.4.x exposes ``cholmod.cholesky(A, mode=...)`` returning a ``Factor`` with
``solve_A``, ``solve_Lt``, ``apply_Pt`` and ``D()``; 0.5.x exposes ``cho_factor`` and
``ldl_factor`` returning a ``CholeskyFactor`` with ``solve(b, system=...)``, ``perm`` and a
sparse ``D``. :class:`CholmodHandle` gives both one small interface, and every scikit-sparse
exception is translated here, at the boundary.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
import threading
import warnings
import weakref

import numpy as np
from scipy import sparse

from .._cache import cached_property

try:  # pragma: no branch - which branch runs depends on the environment
    import sksparse
    from sksparse import cholmod as _cholmod
except ImportError:  # pragma: no cover - exercised by the fallback test environment
    sksparse = None
    _cholmod = None

AVAILABLE: bool = _cholmod is not None
VERSION: str | None = getattr(sksparse, "__version__", None) if AVAILABLE else None
#: True for the 0.5 API (``cho_factor`` / ``CholeskyFactor``).
API_05: bool = AVAILABLE and hasattr(_cholmod, "cho_factor")


class CholmodFailure(Exception):
    """CHOLMOD could not factorise the matrix (not positive definite, or a zero pivot)."""


def _library_paths(prefix: str, name: str) -> list[str]:
    """Paths to try for a SuiteSparse library, without repeats.

    The copies this process has mapped whose file name starts with ``prefix`` (the very
    ones scikit-sparse loaded, whatever their path), then what the dynamic linker finds
    for ``name``.
    """
    candidates = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.rstrip("\n").split(maxsplit=5)[-1]
                if os.path.basename(path).startswith(prefix):
                    candidates.append(path)
    except OSError:  # not Linux
        pass
    found = ctypes.util.find_library(name)
    if found:
        candidates.append(found)
    return list(dict.fromkeys(candidates))


def _suitesparse_config() -> ctypes.CDLL | None:
    """The SuiteSparse_config library CHOLMOD is using, or None.

    Found among the libraries this process has mapped (the very copy scikit-sparse
    loaded, whatever its path), else where the dynamic linker would look; None when it
    has no printf hook (SuiteSparse < 7) or cannot be found.
    """
    for path in _library_paths("libsuitesparseconfig", "suitesparseconfig"):
        try:
            lib = ctypes.CDLL(path)
            get, set_ = (
                lib.SuiteSparse_config_printf_func_get,
                lib.SuiteSparse_config_printf_func_set,
            )
        except (OSError, AttributeError):
            continue
        get.restype, get.argtypes = ctypes.c_void_p, []
        set_.restype, set_.argtypes = None, [ctypes.c_void_p]
        return lib
    return None


class _Quiet:
    """Silences CHOLMOD's own printing while any of this module's CHOLMOD calls runs.

    CHOLMOD reports a failed ``LLᵀ`` (not positive definite), a zero pivot and the like
    to its caller *and*, through SuiteSparse's global ``printf`` hook, on stdout
    (``CHOLMOD warning: matrix not positive definite. file: ...``): scikit-sparse 0.5
    leaves the print level of its ``cholmod_common`` at CHOLMOD's default and offers no
    way to change it. A library must not write to the terminal, and the library tries an
    ``LLᵀ`` first on every sparse symmetric block, so the hook is set to NULL (no
    printing) while a call runs and restored when the last concurrent one ends. The
    failures themselves are still reported, as exceptions, and translated here.
    scikit-sparse 0.4 (SuiteSparse 5) prints nothing; it needs no hook.
    """

    def __init__(self, lib: ctypes.CDLL | None) -> None:
        self._lib = lib
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None

    def __enter__(self) -> None:
        if self._lib is None:
            return
        with self._lock:
            if self._depth == 0:
                self._saved = self._lib.SuiteSparse_config_printf_func_get()
                self._lib.SuiteSparse_config_printf_func_set(None)
            self._depth += 1

    def __exit__(self, *exc) -> None:
        if self._lib is None:
            return
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                self._lib.SuiteSparse_config_printf_func_set(self._saved)


#: Wrap every call into CHOLMOD: ``with _QUIET: ...``.
_QUIET = _Quiet(_suitesparse_config() if API_05 else None)


@contextlib.contextmanager
def _calling_cholmod():
    """Around every call into CHOLMOD: printing silenced, warnings ignored, errors translated.

    The one place where scikit-sparse's exceptions become :class:`CholmodFailure`.
    """
    try:
        with _QUIET, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except _cholmod.CholmodError as exc:
        raise CholmodFailure(str(exc)) from None


def _as_cholmod_input(m: sparse.csc_array) -> sparse.csc_matrix | sparse.csc_array:
    """The matrix in the container each API expects, never sharing writable storage.

    scikit-sparse sorts indices in place and may cast index arrays. 0.4 does both only
    when needed (``sort_indices`` is a no-op on a matrix known to be sorted; int32 and
    int64 indices and float64 values are used as they are), and CHOLMOD only reads its
    input: a matrix with sorted indices is handed over as a ``csc_matrix`` *view* of its
    arrays, which saves copying (and re-checking) the whole matrix. Anything else, and
    every matrix for 0.5, is copied and sorted, keeping the caller's matrix untouched.
    """
    if not API_05 and m.data.dtype == np.float64 and m.has_sorted_indices:
        # Views of m's arrays (SciPy copies only to narrow int64 indices that fit int32).
        view = sparse.csc_matrix((m.data, m.indices, m.indptr), shape=m.shape, copy=False)
        view.has_sorted_indices = True  # as m's: spares scikit-sparse the O(nnz) check
        return view
    out = sparse.csc_array(m, copy=True) if API_05 else sparse.csc_matrix(m, copy=True)
    out.sort_indices()
    return out


#: Matrices whose nonzeros lie within this distance of the diagonal (AR(1) precisions,
#: 1-D random walks, their sums) are factorised in natural order and simplicial mode: a
#: band factor has no fill outside the band, so a fill-reducing ordering only costs time
#: (about 3× the whole factorisation for a tridiagonal matrix of order 10⁶).
NATURAL_ORDER_BANDWIDTH: int = 8


#: Columns per chunk in :func:`bandwidth`: temporaries of a few hundred KiB stay in cache
#: and are recycled by the allocator, where whole-matrix ones (80 MB each at n = 10⁷)
#: would be fresh pages to fault in on every call.
_BANDWIDTH_CHUNK: int = 1 << 15


#: Full bands proven by validation (see :func:`remember_full_band`): the indices' address
#: → weak references to the arrays owning the pattern's two arrays' memory, the two
#: arrays' layouts and the half-width.
_KNOWN_BANDS: dict[int, tuple[weakref.ref, weakref.ref, tuple, tuple, int]] = {}
_KNOWN_LOCK = threading.Lock()


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _owner(a: np.ndarray) -> np.ndarray:
    """The array that owns ``a``'s memory (SciPy hands out new views of shared arrays)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _layout(a: np.ndarray) -> tuple:
    return (_address(a), a.dtype.str, a.shape, a.strides)


def remember_full_band(indptr: np.ndarray, indices: np.ndarray, half_width: int) -> None:
    """Record that the read-only pattern ``(indptr, indices)`` is a full band.

    A full band of half-width ``b`` stores, in column ``j``, exactly the rows
    ``max(0, j − b) … min(n − 1, j + b)`` in order. Validation proves it while copying a
    matrix (``_validation._band_copy``) and records it here, for the arrays it owns and
    froze; :func:`known_full_band` then answers for any matrix holding read-only views
    of exactly these entries (the block, a capacitance ``O = B + A`` sharing ``A``'s
    pattern, CHOLMOD's input view, the blocks of a chain of refactorisations), sparing
    the O(n) or O(nnz) passes that rediscover it (:func:`bandwidth`: 5 ms at n = 10⁶).
    Held weakly, through the arrays that own the memory (not the views given here, which
    SciPy replaces by new views of the same arrays: a sweep's later blocks hold views of
    the first block's arrays after that block is gone): an entry is trusted only while
    the owners are alive (their memory then cannot be freed and reused).
    """
    if indptr.flags.writeable or indices.flags.writeable:
        return
    with _KNOWN_LOCK:
        for key, (ptr, ind, *_) in list(_KNOWN_BANDS.items()):
            if ptr() is None or ind() is None:
                del _KNOWN_BANDS[key]
        entry = (
            weakref.ref(_owner(indptr)),
            weakref.ref(_owner(indices)),
            _layout(indptr),
            _layout(indices),
            int(half_width),
        )
        _KNOWN_BANDS[_address(indices)] = entry


def known_full_band(m) -> int | None:
    """The half-width of ``m``'s pattern when validation proved it a full band, else None.

    ``m``'s index arrays must be read-only views with the recorded layouts (address,
    type, shape, strides) of arrays whose owners are the recorded ones, alive. See
    :func:`remember_full_band`.
    """
    indices, indptr = m.indices, m.indptr
    entry = _KNOWN_BANDS.get(_address(indices))
    if entry is None or indices.flags.writeable or indptr.flags.writeable:
        return None
    ptr, ind, ptr_layout, ind_layout, half_width = entry
    if _layout(indices) != ind_layout or _layout(indptr) != ptr_layout:
        return None
    ptr_owner, ind_owner = ptr(), ind()
    if ptr_owner is None or ind_owner is None:
        return None
    if _owner(indptr) is not ptr_owner or _owner(indices) is not ind_owner:
        return None
    return half_width


def bandwidth(m) -> int:
    """``max |i − j|`` over the stored entries of a CSC matrix with sorted indices.

    Only each column's first and last entry matter: O(n), not O(nnz); nothing at all for
    a pattern validation has proven a full band (:func:`remember_full_band`).
    """
    known = known_full_band(m)
    if known is not None:
        return known
    indptr, indices = m.indptr, m.indices
    n = indptr.size - 1
    if n <= 0 or indptr[-1] == 0:
        return 0
    widest = 0
    for lo in range(0, n, _BANDWIDTH_CHUNK):
        hi = min(lo + _BANDWIDTH_CHUNK, n)
        starts, ends = indptr[lo:hi], indptr[lo + 1 : hi + 1]
        nonempty = starts < ends
        # Differences of row and column indices fit the index type (both lie in [0, n)).
        if nonempty.all():  # the usual case: no column list needed
            columns = np.arange(lo, hi, dtype=indices.dtype)
            first, last = indices[starts], indices[ends - 1]
        elif nonempty.any():
            columns = (lo + np.flatnonzero(nonempty)).astype(indices.dtype)
            first, last = indices[starts[nonempty]], indices[ends[nonempty] - 1]
        else:
            continue
        widest = max(widest, int((columns - first).max()), int((last - columns).max()))
    return widest


#: How a positive definite, non-banded matrix is factorised (``LLᵀ``); read once, from the
#: environment variable ``WOODBURY_SPARSE_CHOLMOD_MODE``, at import:
#: ``"choose"`` (the default): simplicial or supernodal by :func:`choose_mode`;
#: ``"cholmod"``: CHOLMOD's own ``auto`` rule (supernodal when flops/nnz(L) ≥ 40);
#: ``"simplicial"``, ``"supernodal"``: that mode for every ``LLᵀ`` factorisation (banded
#: matrices included; an ``LDLᵀ`` is always simplicial: CHOLMOD has no supernodal one).
CHOLMOD_MODE: str = os.environ.get("WOODBURY_SPARSE_CHOLMOD_MODE", "").strip().lower() or "choose"
_MODES = ("choose", "cholmod", "simplicial", "supernodal")
if CHOLMOD_MODE not in _MODES:
    raise ImportError(
        "WOODBURY_SPARSE_CHOLMOD_MODE must be one of 'choose', 'cholmod', 'simplicial' or "
        f"'supernodal', got {CHOLMOD_MODE!r}"
    )

#: :func:`choose_mode` picks supernodal from this many flops per entry of ``L``
#: (``Σ cⱼ² / Σ cⱼ`` over the column counts ``cⱼ`` of ``L``) up; CHOLMOD's ``auto`` rule
#: uses 40. Measured on a 2-core machine, one BLAS thread, CPU time, factorisation
#: (analysis and numeric) simplicial / supernodal, scikit-sparse 0.4.16 (SuiteSparse 5.12)
#: then 0.5 (SuiteSparse 7): 2-D grid GMRFs (5-point) 100² (59 flops per entry) 0.53,
#: 0.49; 200² (104) 0.71, 0.72; 300² (159) 0.72, 0.95; 400² (201) 1.01, 1.06; 500² (225)
#: 0.99, 1.08; 700² (320) 2.03, 2.00; 9-point 300² (160) 0.98, 1.18; a 150×2000 grid (143)
#: 0.74, 0.67; 3-D grids 15³ (187) 0.83, 0.88 and 20³ (366) 1.25, 2.24; 30³ (901) 2.40.
#: Below about 150 simplicial wins, above about 230 supernodal, by up to 2× either way;
#: between, the two modes are within 20 % of each other and 200 splits the band.
SUPERNODAL_MIN_FLOPS_PER_ENTRY: float = 200.0

#: CHOLMOD's default ordering tries METIS too (where SuiteSparse was built with it) once
#: AMD's factor has ``flops / nnz(L) ≥ 500`` and ``nnz(L) / nnz(tril M) ≥ 5`` — 3-D meshes
#: and other heavy fill — and keeps the better of the two. Such patterns are left to it:
#: the library's own AMD ordering is then used for the mode choice only.
METIS_TRIAL_FLOPS_PER_ENTRY: float = 500.0
METIS_TRIAL_FILL: float = 5.0


def _amd_library() -> ctypes.CDLL | None:
    """The AMD library CHOLMOD orders with (the copy this process mapped), or None."""
    for path in _library_paths("libamd.", "amd"):
        try:
            lib = ctypes.CDLL(path)
            lib.amd_order.restype = ctypes.c_int
            lib.amd_l_order.restype = ctypes.c_int64
        except (OSError, AttributeError):
            continue
        return lib
    return None


_AMD = _amd_library() if AVAILABLE else None
_AMD_INFO, _AMD_STATUS, _AMD_NDENSE, _AMD_LNZ, _AMD_NDIV, _AMD_NMULTSUBS_LDL = 20, 0, 6, 9, 10, 11


def amd_ordering(m) -> tuple[np.ndarray, float, float] | None:
    """AMD's ordering of ``m`` and ``(flops, nnz(L))`` of the Cholesky factor in it, or None.

    CHOLMOD's own symbolic analysis is not exposed by scikit-sparse (0.4 or 0.5), so the
    statistic comes from AMD, the ordering CHOLMOD itself uses by default, which counts
    the column counts ``cⱼ`` of ``L`` while it orders: ``nnz(L) = Σ cⱼ`` and ``flops =
    Σ cⱼ²`` (CHOLMOD's count). Called through the AMD library CHOLMOD loaded (AMD's
    interface is the same in SuiteSparse 5 and 7). Returns ``(perm, flops, lnz)``, with
    ``m[perm][:, perm]`` the reordered matrix; None when AMD cannot be loaded or reports
    an error, or when it set dense rows aside (its counts then miss them).
    """
    if _AMD is None:
        return None
    n = m.shape[0]
    info = np.zeros(_AMD_INFO)
    narrow = m.indices.dtype == np.int32 and m.indptr.dtype == np.int32
    order = _AMD.amd_order if narrow else _AMD.amd_l_order
    index = np.int32 if narrow else np.int64
    size = ctypes.c_int(n) if narrow else ctypes.c_int64(n)
    indptr = np.ascontiguousarray(m.indptr, dtype=index)
    indices = np.ascontiguousarray(m.indices, dtype=index)
    perm = np.empty(n, dtype=index)
    status = order(
        size,
        indptr.ctypes.data_as(ctypes.c_void_p),
        indices.ctypes.data_as(ctypes.c_void_p),
        perm.ctypes.data_as(ctypes.c_void_p),
        None,
        info.ctypes.data_as(ctypes.c_void_p),
    )
    if status < 0 or info[_AMD_NDENSE] > 0:  # AMD_OK = 0, AMD_OK_BUT_JUMBLED = 1
        return None
    # AMD counts L's strictly lower entries and the LDLᵀ multiply-subtracts Σ cⱼ(cⱼ+1)/2
    # over them; CHOLMOD's flops Σ (cⱼ + 1)² = n + 2·lnz + 2·Σ cⱼ(cⱼ+1)/2 − lnz.
    lnz = info[_AMD_LNZ]
    return perm, n + lnz + 2.0 * info[_AMD_NMULTSUBS_LDL], n + lnz


def factor_statistics(m) -> tuple[float, float] | None:
    """``(flops, nnz(L))`` of the Cholesky factor of ``m`` in AMD's ordering, or None.

    See :func:`amd_ordering`.
    """
    found = amd_ordering(m)
    return None if found is None else found[1:]


def _cholmod_tries_metis(m, flops: float, lnz: float) -> bool:
    """Whether CHOLMOD's default ordering would also try METIS on ``m``.

    See :data:`METIS_TRIAL_FLOPS_PER_ENTRY`; ``nnz(tril m)`` is read from ``m``'s full
    pattern.
    """
    lower = (m.nnz + m.shape[0]) / 2
    return flops >= METIS_TRIAL_FLOPS_PER_ENTRY * lnz and lnz >= METIS_TRIAL_FILL * lower


def _mode_of(flops: float, lnz: float) -> str:
    return "supernodal" if flops >= SUPERNODAL_MIN_FLOPS_PER_ENTRY * lnz else "simplicial"


class _Reordering:
    """AMD's ordering ``q`` of one sparsity pattern, and ``M[q][:, q]`` for any ``M`` on it.

    The reordered pattern is built once, carrying each entry's position in ``M`` (its
    columns gathered, rows relabelled, each column sorted); a matrix on the same pattern
    (a refactorisation's) is then reordered by one gather of its values. Immutable, shared
    by every handle of the pattern.
    """

    def __init__(self, mat, perm: np.ndarray) -> None:
        self.perm = perm
        self.inverse = np.empty_like(perm)
        self.inverse[perm] = np.arange(perm.size, dtype=perm.dtype)
        positions = sparse.csc_array(
            (np.arange(mat.nnz, dtype=np.int64), mat.indices, mat.indptr), shape=mat.shape
        )
        cols = positions[:, perm]
        out = sparse.csc_array((cols.data, self.inverse[cols.indices], cols.indptr), mat.shape)
        out.sort_indices()
        self.take, self.indices, self.indptr = out.data, out.indices, out.indptr

    def apply(self, mat):
        """``mat[q][:, q]`` (``mat`` on this pattern, sorted), in ``mat``'s container.

        scikit-sparse 0.4 only reads the arrays, so they are shared; 0.5 gets copies (see
        :func:`_as_cholmod_input`).
        """
        indices, indptr = (
            (self.indices.copy(), self.indptr.copy())
            if API_05
            else (
                self.indices,
                self.indptr,
            )
        )
        out = type(mat)((mat.data[self.take], indices, indptr), shape=mat.shape)
        out.has_sorted_indices = True
        return out


def choose_mode(m) -> str:
    """``"simplicial"`` or ``"supernodal"`` for the ``LLᵀ`` of ``m``; ``"auto"`` when unsure.

    Supernodal when the flops per entry of ``L`` (:func:`factor_statistics`) reach
    :data:`SUPERNODAL_MIN_FLOPS_PER_ENTRY`: dense BLAS kernels on supernodes pay only for
    factors with enough work per entry; CHOLMOD's own ``auto`` threshold (40) picks
    supernodal on 2-D grids where, on this hardware, simplicial is 1.4× faster. Decided
    from the pattern only, so a pattern always gets the same mode; ``"auto"`` (CHOLMOD's
    rule) when the statistic is not available. :data:`CHOLMOD_MODE` overrides it.
    """
    if CHOLMOD_MODE == "cholmod":
        return "auto"
    if CHOLMOD_MODE in ("simplicial", "supernodal"):
        return CHOLMOD_MODE
    stats = factor_statistics(m)
    return "auto" if stats is None else _mode_of(*stats)


# -- recycling the factors of dropped handles (scikit-sparse 0.4) -----------------------
#: Spare factors kept per symbolic analysis (see :class:`_Analysis`); 0 disables recycling.
SPARES_PER_ANALYSIS: int = 2

#: How many factors were recycled (refactorised in place instead of copied) and offered to
#: a pool, since import: read by the tests, never by the library.
RECYCLE_COUNTS: dict[str, int] = {"offered": 0, "pooled": 0, "recycled": 0}


def _references(obj) -> int:
    """``sys.getrefcount(obj)``, called as :meth:`CholmodHandle.__del__` calls it."""
    return sys.getrefcount(obj)


def _calibrate() -> int:
    obj = object()  # one local reference, as ``factor`` in CholmodHandle.__del__
    return _references(obj)


#: The count :func:`_references` sees for an object held by one local variable of its
#: caller and nothing else (the interpreter's own references included, whatever they are).
_UNSHARED: int = _calibrate()


class _Analysis:
    """One CHOLMOD symbolic analysis, shared by every handle whose factor carries it.

    Made by :meth:`CholmodHandle.factorize` and inherited by :meth:`~CholmodHandle.
    refactorize` (whose factors are copies of the first, numerically refactorised: the
    same ordering, elimination tree, pattern of ``L``, mode and storage). It keeps up to
    :data:`SPARES_PER_ANALYSIS` factors of handles that were dropped
    (:meth:`CholmodHandle.__del__`), which a later :meth:`~CholmodHandle.refactorize` on
    this analysis refactorises in place (CHOLMOD's numeric phase overwrites every value of
    the factor) instead of copying a live one: at n = 10⁶ a tridiagonal refactorisation
    into an existing factor costs 32–34 ms against ~53 ms into a fresh copy (allocation,
    page faults and the copy). The spares live on this object, which only the live
    handles reference: they are freed with the last handle of the analysis, and at most
    :data:`SPARES_PER_ANALYSIS` times that handle's factor is ever kept.
    """

    __slots__ = ("__weakref__", "_lock", "_spares")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spares: list = []

    def take(self):
        """A spare factor, now owned by the caller alone, or None."""
        with self._lock:
            return self._spares.pop() if self._spares else None

    def offer(self, factor) -> None:
        """Keep ``factor`` (referenced by nothing else: the caller checked) if there is room.

        Called from a finaliser, which may run in any thread and in the middle of any
        allocation, even one made while this thread holds the lock: never waits for it
        (a busy pool just lets the factor be freed).
        """
        if not self._lock.acquire(blocking=False):
            return
        try:
            if len(self._spares) < SPARES_PER_ANALYSIS:
                self._spares.append(factor)
                RECYCLE_COUNTS["pooled"] += 1
        finally:
            self._lock.release()


class CholmodHandle:
    """One CHOLMOD factorisation ``P M Pᵀ = L D Lᵀ`` (``D = I`` for ``LLᵀ``)."""

    def __init__(
        self,
        factor,
        ldl: bool,
        simplicial: bool = False,
        reordering: _Reordering | None = None,
        analysis: _Analysis | None = None,
    ) -> None:
        self._factor = factor
        #: The symbolic analysis ``factor`` carries, whose spare factors a refactorisation
        #: may recycle; None where factors are never recycled (scikit-sparse 0.5, updates).
        self._analysis = analysis
        #: This handle's factor is a recycled one (see :class:`_Analysis`); for the tests.
        self.recycled = False
        self.ldl = ldl
        #: Factorised in simplicial mode: under scikit-sparse 0.4 an ``LDLᵀ`` factor,
        #: whose ``L`` and ``D`` a draw uses as they are (see :meth:`solve_sqrt_t`).
        self.simplicial = simplicial
        #: AMD's ordering when CHOLMOD factorised ``M[q][:, q]`` in natural order (the
        #: ordering the mode was chosen with, not computed twice), else None.
        self.reordering = reordering
        self.outer = None if reordering is None else reordering.perm
        #: CHOLMOD factorised in natural order (its ``P`` is the identity): set by
        #: :meth:`factorize` and kept by :meth:`refactorize`; ``updown`` keeps ``P`` too.
        self.natural = False

    def __del__(self) -> None:
        """Offer the factor to its analysis's spares when nothing else can reach it.

        The factor is taken out of this handle first, so that a handle resurrected after
        this (by another finaliser of the same garbage cycle) has no factor and fails
        loudly instead of reading one that is being refactorised. It is kept only when
        this local variable is its one reference: every array scikit-sparse lends out of
        a factor's memory holds the factor (``P()``'s view: its ``base``; ``D()`` and the
        solves return new arrays; ``L()``, ``L_D()`` and conversions to ``LLᵀ`` are only
        applied to copies), and everything in this library reaches the
        factor through its handle, so a count above that means that something alive
        still sees it, and the factor is left to be freed with it.
        """
        try:
            analysis = getattr(self, "_analysis", None)
            factor = getattr(self, "_factor", None)
            if analysis is None or factor is None:
                return
            del self._factor  # a resurrected handle then has no factor
            RECYCLE_COUNTS["offered"] += 1
            if factor is not None and _references(factor) <= _UNSHARED:
                analysis.offer(factor)
        except Exception:  # pragma: no cover - interpreter shutdown; a finaliser never raises
            pass

    def _into(self, b: np.ndarray) -> np.ndarray:
        """``b`` in CHOLMOD's row order: ``b[q]``."""
        return b if self.outer is None else b[self.outer]

    def _out_of(self, y: np.ndarray) -> np.ndarray:
        """``y`` (CHOLMOD's row order) back in ``M``'s: ``x`` with ``x[q] = y``."""
        if self.reordering is None:
            return y
        return y[self.reordering.inverse]

    def _perm(self, inner: np.ndarray) -> np.ndarray:
        """The whole ordering, ``M[p][:, p] = L D Lᵀ``, from CHOLMOD's ``inner`` one."""
        # A copy, not scikit-sparse 0.4's P() (a view that holds the factor, which would
        # then never be recycled: see __del__).
        inner = np.array(inner)
        return inner if self.outer is None else np.asarray(self.outer, dtype=np.int64)[inner]

    @classmethod
    def factorize(
        cls, m: sparse.csc_array, *, ldl: bool, simplicial: bool = False, mode: str | None = None
    ):
        """Factorise the symmetric ``m`` (both triangles stored).

        The mode: simplicial for ``LDLᵀ`` (CHOLMOD has no supernodal one) and, with
        ``simplicial``, for ``LLᵀ``; else ``mode`` when given (``"simplicial"``,
        ``"supernodal"`` or CHOLMOD's ``"auto"``), else simplicial in natural order for a
        band (:data:`NATURAL_ORDER_BANDWIDTH`) and :func:`choose_mode` for the rest. A
        :meth:`refactorize` keeps the mode and the ordering: they are chosen once per
        pattern.

        Raises
        ------
        CholmodFailure
            When CHOLMOD reports the matrix not positive definite (``LLᵀ``) or meets a zero
            pivot (``LDLᵀ``).
        """
        mat = _as_cholmod_input(m)
        banded = bandwidth(mat) <= NATURAL_ORDER_BANDWIDTH
        reordering = None
        if ldl or simplicial:
            mode = "simplicial"
        elif mode is None and CHOLMOD_MODE in ("simplicial", "supernodal"):
            mode = CHOLMOD_MODE
        elif mode is None and banded:
            mode = "simplicial"
        elif mode is None and CHOLMOD_MODE == "cholmod":
            mode = "auto"
        elif mode is None:
            # AMD orders once and counts L: CHOLMOD then factorises the reordered matrix
            # in natural order (its own AMD would repeat the work: 0.7 of an analysis).
            found = amd_ordering(mat)
            mode = "auto" if found is None else _mode_of(*found[1:])
            if found is not None and not _cholmod_tries_metis(mat, *found[1:]):
                reordering = _Reordering(mat, found[0])
        order = "natural" if banded or reordering is not None else "default"
        if reordering is not None:
            mat = reordering.apply(mat)
        with _calling_cholmod():
            if API_05:
                make = _cholmod.ldl_factor if ldl else _cholmod.cho_factor
                factor = make(mat, lower=True, supernodal_mode=mode, order=order)
            else:
                factor = _cholmod.cholesky(mat, mode=mode, ordering_method=order)
        analysis = None if API_05 or SPARES_PER_ANALYSIS <= 0 else _Analysis()
        handle = cls(
            factor,
            ldl,
            simplicial=mode == "simplicial",
            reordering=reordering,
            analysis=analysis,
        )
        handle.natural = order == "natural"
        return handle

    def refactorize(self, m: sparse.csc_array) -> CholmodHandle:
        """A new handle for ``m``, reusing this one's symbolic analysis (numeric only).

        ``m`` must have exactly the sparsity pattern of the matrix this handle factorised
        (the caller checks). This handle is left untouched: scikit-sparse 0.4 refactorises
        a spare factor of the same analysis in place (one a dropped handle left, see
        :class:`_Analysis`) or else a copy of this one (``Factor.cholesky``); 0.5's
        ``factorize`` is applied to ``copy()``.

        Raises
        ------
        CholmodFailure
            When the new values are not positive definite (``LLᵀ``) or meet a zero pivot.
        """
        mat = _as_cholmod_input(m)
        if self.reordering is not None:
            mat = self.reordering.apply(mat)
        # A spare factor of this analysis (a dropped handle's, see _Analysis), refactorised
        # in place, else a copy of this one's. A spare on which CHOLMOD fails is dropped.
        spare = None if self._analysis is None else self._analysis.take()
        recycled = spare is not None and not API_05
        with _calling_cholmod():
            if API_05:
                factor = self._factor.copy()
                factor.factorize(mat, ldl=self.ldl)
            elif spare is not None:
                factor, spare = spare, None
                factor.cholesky_inplace(mat)
            else:
                factor = self._factor.cholesky(mat)
        handle = type(self)(
            factor,
            self.ldl,
            simplicial=self.simplicial,
            reordering=self.reordering,
            analysis=self._analysis,
        )
        handle.natural = self.natural
        handle.recycled = recycled
        if recycled:
            RECYCLE_COUNTS["recycled"] += 1
        return handle

    def updown(self, c: sparse.csc_array, subtract: bool) -> CholmodHandle:
        """A new handle factorising ``M + C Cᵀ`` (``M − C Cᵀ`` with ``subtract``).

        Works on a copy; the result is a simplicial ``LDLᵀ``. CHOLMOD does *not* report
        a downdate that destroys positive definiteness: check :meth:`pivots`.
        """
        mat = _as_cholmod_input(c)
        if self.outer is not None:  # C's rows in CHOLMOD's order
            mat = _as_cholmod_input(sparse.csc_array(mat)[self.outer])
        with _calling_cholmod():
            factor = self._factor.copy()
            if API_05:
                (factor.downdate if subtract else factor.update)(mat)
                ldl = not factor.is_ll
            else:
                factor.update_inplace(mat, subtract=subtract)
                ldl = True
        handle = type(self)(factor, ldl, simplicial=True, reordering=self.reordering)
        handle.natural = self.natural  # an update keeps CHOLMOD's ordering
        return handle

    def pivots(self) -> np.ndarray | None:
        """The diagonal ``d`` of ``L D Lᵀ``, or None for a 0.5 ``LLᵀ`` factor.

        scikit-sparse 0.4 reads ``d`` straight from CHOLMOD's storage (``diag(L)²`` for
        ``LLᵀ``); 0.5 only exposes ``D`` for ``LDLᵀ`` factors, and an ``LLᵀ`` factor there
        is positive definite by construction (0.5 raises otherwise, in every mode).
        Read once and kept (read-only): the factor never changes after construction.
        """
        return self._pivots

    @cached_property
    def _pivots(self) -> np.ndarray | None:
        f = self._factor
        if not API_05:
            pivots = np.asarray(f.D()).view()
        elif self.ldl:
            with _QUIET:
                pivots = np.asarray(f.D.diagonal()).view()
        else:
            return None
        pivots.flags.writeable = False  # shared by every caller
        return pivots

    def pivot_ratio(self) -> float:
        """CHOLMOD's cheap estimate of ``1/cond``: ``min|dᵢ| / max|dᵢ|`` over the pivots; kept.

        Only an upper bound on ``1/cond₂`` for a positive definite matrix (every pivot
        lies in ``[λ_min, λ_max]``), and no bound at all for an indefinite one.
        """
        return self._pivot_ratio

    @cached_property
    def _pivot_ratio(self) -> float:
        pivots = self.pivots()
        if pivots is None:
            with _QUIET:
                return float(self._factor.rcond)  # a property in 0.5
        if pivots.size == 0:
            return 1.0
        low, high = self.pivot_extremes()
        if low > 0.0:  # positive pivots (the usual case): no |d| temporary
            return float(low / high)
        magnitude = np.abs(pivots)
        return float(magnitude.min() / magnitude.max())

    def pivot_extremes(self) -> tuple[float, float]:
        """``(min dᵢ, max dᵢ)`` of the pivots; kept.

        NaN when a pivot is NaN, ``(inf, -inf)`` when there are none, and
        ``(nan, nan)`` when the pivots are not exposed (a 0.5 ``LLᵀ`` factor).
        """
        return self._pivot_extremes

    @cached_property
    def _pivot_extremes(self) -> tuple[float, float]:
        pivots = self.pivots()
        if pivots is None:
            return (np.nan, np.nan)
        if pivots.size == 0:
            return (np.inf, -np.inf)
        return (float(pivots.min()), float(pivots.max()))

    def logdet_llt(self) -> float:
        """``log det M`` of a 0.5 ``LLᵀ`` factor."""
        with _QUIET:
            return float(self._factor.logdet())

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``M⁻¹ b``.

        scikit-sparse 0.5 warns (``CholmodWarning``) when CHOLMOD's ``rcond`` estimate is
        tiny; 0.4 and the other backends do not, and backend warnings must not leak.
        """
        b = np.asfortranarray(self._into(b))
        with _QUIET, warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=_cholmod.CholmodWarning)
            y = self._factor.solve(b) if API_05 else self._factor.solve_A(b)
        return self._out_of(y)

    def solve_sqrt_t(self, z: np.ndarray) -> np.ndarray:
        """``Pᵀ L⁻ᵀ z`` for an ``LLᵀ`` factor, so that ``cov = M⁻¹`` for white ``z``.

        With an outer ordering ``q`` (``M[q][:, q]`` factorised), ``M = R Rᵀ`` for
        ``R = Q̃ᵀ R̃``, so the result is CHOLMOD's, its rows put back: ``x[q] = y``.
        """
        return self._out_of(self._solve_sqrt_t(np.asfortranarray(z)))

    def _solve_sqrt_t(self, z: np.ndarray) -> np.ndarray:
        f = self._factor
        if API_05:
            with _QUIET, warnings.catch_warnings():  # see solve()
                warnings.filterwarnings("ignore", category=_cholmod.CholmodWarning)
                y = f.solve(z, system="Lt")
            out = np.empty_like(y)
            out[f.perm] = y
            return out
        if self.simplicial:
            # 0.4's simplicial factor is P M Pᵀ = L D Lᵀ: R = Pᵀ L D^½ (the same R as the
            # LLᵀ form's, which sqrt_t_matmul uses), so R⁻ᵀ z = Pᵀ L⁻ᵀ D^-½ z, from L and
            # D as they are: no copy of the factor, no conversion to LLᵀ.
            scale = self._inverse_root_pivots
            with _QUIET:
                y = f.solve_Lt(
                    z * (scale if z.ndim == 1 else scale[:, None]), use_LDLt_decomposition=True
                )
                # In natural order P = I, and apply_Pt would only copy y.
                return y if self.natural else f.apply_Pt(y)
        f = self._llt_copy
        return f.apply_Pt(f.solve_Lt(z, use_LDLt_decomposition=False))

    @cached_property
    def _inverse_root_pivots(self) -> np.ndarray:
        """``1/√dᵢ`` of a 0.4 simplicial factor's pivots (read-only); built once."""
        d = self.pivots()
        assert d is not None  # 0.4 reads D for every factor
        scale = np.sqrt(d)
        np.divide(1.0, scale, out=scale)  # in place: one n-sized array, not two
        scale.flags.writeable = False
        return scale

    @cached_property
    def _llt_copy(self):
        """A scikit-sparse 0.4 copy of the factor held in ``LLᵀ`` form; built once.

        0.4's ``solve_Lt(..., use_LDLt_decomposition=False)`` converts a simplicial
        ``LDLᵀ`` factor to ``LLᵀ`` in place, which would change the shared factor (and
        its later solves, by an ulp): the conversion is done here, on a private copy.
        """
        f = self._factor.copy()
        f.solve_Lt(np.zeros((self._factor.P().size, 1)), use_LDLt_decomposition=False)
        return f

    @cached_property
    def _llt_parts(self) -> tuple[sparse.csc_array, np.ndarray]:
        """``(L, perm)`` of an ``LLᵀ`` factor: ``M[perm][:, perm] = L Lᵀ``; built once.

        scikit-sparse 0.4's ``Factor.L()`` converts the factor in place (to simplicial
        ``LLᵀ``), so it is called on a copy: the shared factor is never modified.
        """
        f = self._factor
        if API_05:
            with _QUIET:
                return sparse.csc_array(f.L), self._perm(f.perm)
        return sparse.csc_array(f.copy().L()), self._perm(f.P())

    def sqrt_t_matmul(self, x: np.ndarray) -> np.ndarray:
        """``Rᵀ x = Lᵀ P x`` for an ``LLᵀ`` factor, where ``M = R Rᵀ`` with ``R = Pᵀ L``.

        ``P = I[perm]``, so ``P x = x[perm]``; the inverse of :meth:`solve_sqrt_t`.
        """
        lower, perm = self._llt_parts
        return lower.T @ np.asarray(x)[perm]

    def ldl_parts(self) -> tuple[sparse.csc_array, np.ndarray | None, np.ndarray]:
        """``(L, d, perm)`` with ``M[perm][:, perm] = L diag(d) Lᵀ``, for the selected inverse.

        ``d`` is None for an ``LLᵀ`` factor (``L`` then has the Cholesky diagonal); for
        ``LDLᵀ`` ``L`` is unit lower triangular. Built afresh on each call (not kept:
        ``L`` is as large as the factor). scikit-sparse 0.4's ``L()`` and ``L_D()``
        convert the factor in place (supernodal to simplicial), so they run on a copy.
        """
        f = self._factor
        if API_05:
            with _QUIET:
                d = np.asarray(f.D.diagonal()) if self.ldl else None
                return sparse.csc_array(f.L), d, self._perm(f.perm)
        # 0.4 factorises simplicially as LDLᵀ whatever was asked: indefinite pivots mean
        # an LDLᵀ factor, which L() would try (and fail) to convert to LLᵀ.
        pivots = self.pivots()  # never None here: 0.4 reads D for every factor
        if self.ldl or pivots is None or not np.all(pivots > 0):
            lower, diag = f.copy().L_D()
            return sparse.csc_array(lower), np.asarray(diag.diagonal()), self._perm(f.P())
        return sparse.csc_array(f.copy().L()), None, self._perm(f.P())
