"""Factorisation layer: picks and builds a :class:`Factor` from a matrix's kind.

=====================  ==========================================================
kind of matrix         factorisation
=====================  ==========================================================
identity, diagonal     closed form
dense, symmetric       LAPACK Cholesky; LU when not positive definite
dense, general         LAPACK LU
sparse, symmetric      CHOLMOD ``LLᵀ``, then ``LDLᵀ``, then SuperLU
                       (without scikit-sparse: LAPACK's banded Cholesky for
                       bandwidth ≤ 16, else SuperLU with symmetric pivoting, then
                       general)
sparse, general        SuperLU
=====================  ==========================================================

The backend is CHOLMOD through scikit-sparse (0.4 or 0.5) when it imports, SciPy
otherwise; setting the environment variable ``WOODBURY_SPARSE_BACKEND=scipy`` before the
first import selects the SciPy fallback even where scikit-sparse is installed.

CHOLMOD factorises a positive definite sparse block in simplicial mode (column by
column) or supernodal mode (dense BLAS kernels on blocks of columns). The mode is chosen
once per sparsity pattern, from the flops per entry of the factor ``L`` that AMD counts
while it orders (supernodal from :data:`_sksparse.SUPERNODAL_MIN_FLOPS_PER_ENTRY` = 200;
CHOLMOD's own ``auto`` rule switches at 40, which on 2-D grids of up to about 400×400
picks the slower mode), and kept by every refactorisation on that pattern. The
environment variable ``WOODBURY_SPARSE_CHOLMOD_MODE`` (``choose``, the default;
``cholmod`` for CHOLMOD's rule; ``simplicial``; ``supernodal``), read at the first import,
overrides it.

When scikit-sparse is *not* installed (the fallback was not asked for), the first sparse
symmetric factorisation of order at least :data:`FALLBACK_NOTE_ORDER` logs one message
(level WARNING, logger ``woodbury_sparse._factor``) saying so, once per process: never
on import, never again. Logging rather than a warning: nothing in the calling code can
avoid it (installing CHOLMOD does), it is information rather than a fault, and it must
not turn into an error where warnings are errors (test suites); it still reaches stderr
by default, and ``logging.getLogger("woodbury_sparse").setLevel(logging.ERROR)`` (or any
logging configuration) silences it.
"""

from __future__ import annotations

import logging
import os
import threading

import numpy as np

from .._exceptions import SingularMatrixError
from . import _sksparse
from ._banded import BANDED_MAX_BANDWIDTH, BandedCholesky
from ._base import Factor, dominance_rcond_bound
from ._closed_form import DiagonalFactor, IdentityFactor
from ._dense import DenseCholesky, DenseLU
from ._selinv import SelectedInverse, factor_selected_inverse, has_selected_inverse
from ._sparse import CholmodFactor, SuperLUFactor

__all__ = [
    "BACKEND",
    "EPS",
    "DenseCholesky",
    "Factor",
    "SelectedInverse",
    "backend_info",
    "checked",
    "factor_selected_inverse",
    "factorize",
    "has_selected_inverse",
    "refactorize",
    "reuse_analysis",
    "sparse_one_norm",
]

EPS: float = float(np.finfo(np.float64).eps)
_TINY: float = float(np.finfo(np.float64).tiny)

_requested = os.environ.get("WOODBURY_SPARSE_BACKEND", "").strip().lower()
if _requested not in ("", "cholmod", "scipy"):
    raise ImportError(f"WOODBURY_SPARSE_BACKEND must be 'cholmod' or 'scipy', got {_requested!r}")
if _requested == "cholmod" and not _sksparse.AVAILABLE:
    raise ImportError("WOODBURY_SPARSE_BACKEND=cholmod but scikit-sparse is not installed")

#: ``"cholmod"`` or ``"scipy"``: the backend of sparse symmetric factorisations.
BACKEND: str = "cholmod" if (_sksparse.AVAILABLE and _requested != "scipy") else "scipy"

#: Order from which a sparse symmetric factorisation without CHOLMOD is worth a note
#: (SuperLU's fill and time then grow well past CHOLMOD's on GMRF-like patterns).
FALLBACK_NOTE_ORDER: int = 10_000

_LOG = logging.getLogger(__name__)
_fallback_noted = threading.Event()  # set once the note is logged: once per process
_note_lock = threading.Lock()


def _note_fallback(n: int, name: str) -> None:
    """Log, once per process, that a large sparse factorisation runs without CHOLMOD."""
    if _fallback_noted.is_set() or _sksparse.AVAILABLE or n < FALLBACK_NOTE_ORDER:
        return
    with _note_lock:
        if _fallback_noted.is_set():
            return
        _fallback_noted.set()
    _LOG.warning(
        "woodbury_sparse: factorising the %d×%d sparse symmetric block `%s` with SciPy's "
        "SuperLU, because scikit-sparse (CHOLMOD) is not installed; CHOLMOD is faster and "
        "leaner on large sparse matrices: pip install 'woodbury-sparse[cholmod]' (README, "
        "Installation). woodbury_sparse.backend_info() names the backend in use. Shown "
        "once per process.",
        n,
        n,
        name,
    )


def backend_info() -> dict[str, str | None]:
    """Describe the factorisation backend in use.

    Returns
    -------
    dict
        ``{"backend": "cholmod" or "scipy", "scikit_sparse": version or None}``.

    Examples
    --------
    >>> import woodbury_sparse as ws
    >>> ws.backend_info()["backend"] in ("cholmod", "scipy")
    True
    """
    return {
        "backend": BACKEND,
        "scikit_sparse": _sksparse.VERSION if BACKEND == "cholmod" else None,
    }


def factorize(
    matrix, kind: str, n: int, symmetric: bool, name: str, rcond_bound: float | None = None
) -> Factor:
    """Factorise one square block.

    Parameters
    ----------
    matrix : ndarray or scipy.sparse.csc_array
        The block; for ``kind="diagonal"`` its diagonal as a 1-D array, for
        ``kind="identity"`` ignored. Never modified.
    kind : {"identity", "diagonal", "dense", "sparse"}
    n : int
        Order of the matrix.
    symmetric : bool
        Whether the matrix is (exactly) symmetric.
    name : str
        Name of the block in error messages (``"A"``, ``"B"``, ``"O"``).

    Raises
    ------
    SingularMatrixError
        When the matrix is singular to working precision: no factorisation exists, or
        the factor's reciprocal condition estimate (:meth:`Factor.rcond`) is below
        ``n·eps``, where results would be noise. A diagonal matrix is singular only when
        the reciprocal of one of its entries is not a finite number.
    """
    if kind == "identity" or n == 0:
        return IdentityFactor(n)
    factor: Factor | None
    if kind == "diagonal":
        # Solves with a diagonal are exact to rounding whatever its range (diag(1e-10,
        # 1e10) included), so its condition number says nothing about their accuracy:
        # it is singular only when some 1/dᵢ is not a finite number (dᵢ = 0, or a
        # subnormal dᵢ whose reciprocal overflows). No condition test follows.
        # A positive diagonal of normal numbers (the usual precision or prior) passes
        # with one reduction: every 1/dᵢ ≤ 1/tiny is finite, and M is positive definite.
        if matrix.size and float(np.minimum.reduce(matrix)) >= _TINY:  # NaN: not ≥
            return DiagonalFactor(matrix, positive=True)
        _check_diagonal(matrix, name)
        return DiagonalFactor(matrix)
    if kind == "dense":
        factor = DenseCholesky.attempt(matrix) if symmetric else None
        if factor is None:
            factor = DenseLU.attempt(matrix, symmetric)
    elif kind == "sparse":
        factor = None
        if symmetric and BACKEND == "cholmod":
            factor = CholmodFactor.attempt(matrix)
        elif symmetric and (u := _sksparse.bandwidth(matrix)) <= BANDED_MAX_BANDWIDTH:
            factor = BandedCholesky.attempt(matrix, u)  # None: not positive definite
        elif symmetric:
            _note_fallback(n, name)
        if factor is None:
            factor = SuperLUFactor.attempt(matrix, symmetric)
    else:  # pragma: no cover - internal misuse
        raise ValueError(f"unknown block kind {kind!r}")
    if factor is None:
        raise SingularMatrixError(name, f"{_what(name)} is singular to working precision")
    _check_rcond(factor, matrix, kind, n, name, rcond_bound)
    return factor


def refactorize(
    donor: Factor,
    matrix,
    kind: str,
    n: int,
    symmetric: bool,
    name: str,
    rcond_bound: float | None = None,
) -> Factor:
    """Factorise one square block reusing the symbolic analysis of ``donor``'s matrix.

    ``matrix`` must have the sparsity pattern of the matrix ``donor`` factorised (the
    caller checks). Only a factor with a ``refactor`` method (CHOLMOD's) is reused; when
    it has none, the numeric refactorisation fails (new values not positive definite,
    say), or its result fails the checks of :func:`factorize`, this is
    :func:`factorize`: the result, or the error, is exactly a fresh factorisation's.

    Parameters
    ----------
    donor : Factor
        A factorisation of a matrix with ``matrix``'s pattern; left unchanged.
    matrix, kind, n, symmetric, name
        As for :func:`factorize`.

    Raises
    ------
    SingularMatrixError
        As :func:`factorize`.
    """
    factor = reuse_analysis(donor, matrix, kind, n, name, rcond_bound)
    if factor is not None:
        return factor
    return factorize(matrix, kind, n, symmetric, name, rcond_bound)


def reuse_analysis(
    donor: Factor | None, matrix, kind: str, n: int, name: str, rcond_bound: float | None = None
) -> Factor | None:
    """The numeric refactorisation of ``matrix`` on ``donor``'s analysis, or None.

    None when ``donor`` has no reusable analysis (only CHOLMOD's is), CHOLMOD fails on
    the new values, or the result fails the checks a fresh factorisation must pass
    (:func:`checked`); the caller then factorises afresh (now or lazily), which raises
    the fresh factorisation's error where there is one.
    """
    refactor = getattr(donor, "refactor", None)
    if refactor is None or kind != "sparse":
        return None
    factor = refactor(matrix)
    return None if factor is None else checked(factor, matrix, kind, n, name, rcond_bound)


def checked(
    factor: Factor, matrix, kind: str, n: int, name: str, rcond_bound: float | None = None
) -> Factor | None:
    """``factor`` when it passes the checks :func:`factorize` makes, otherwise None.

    For factorisations reached by another route than :func:`factorize` — a numeric
    refactorisation, a rank update or downdate, a bordered extension — which must be
    held to the same standard before they are used: a reciprocal condition estimate of
    at least ``n·eps`` (for a diagonal, finite reciprocals).

    Parameters
    ----------
    factor : Factor
        A factorisation of ``matrix``.
    matrix, kind, n, name
        As for :func:`factorize`.
    """
    try:
        if kind == "diagonal":
            _check_diagonal(matrix, name)
        else:
            _check_rcond(factor, matrix, kind, n, name, rcond_bound)
    except SingularMatrixError:
        return None
    return factor


def _check_diagonal(d: np.ndarray, name: str) -> None:
    """Raise ``SingularMatrixError`` unless every ``1/dᵢ`` is a finite number."""
    with np.errstate(divide="ignore", over="ignore"):
        bad = np.flatnonzero(~np.isfinite(1.0 / d))
    if bad.size:
        i = int(bad[0])
        raise SingularMatrixError(
            name,
            f"{_what(name)} is singular to working precision: its diagonal entry {i} is "
            f"{d[i]:.1e}, whose reciprocal is not a finite float64",
        )


def _what(name: str) -> str:
    return "the capacitance O = B + V A U" if name == "O" else f"`{name}`"


#: A given block's free singularity screen (CHOLMOD's pivot ratio ``min dᵢ / max dᵢ``,
#: which every ``1/cond₂`` lies below for a positive definite matrix) is taken as it is
#: only above ``√eps``; below it the Hager–Higham estimate (a few solves) decides.
SCREENING_TRUSTED: float = float(np.sqrt(EPS))


def _check_rcond(
    factor: Factor, matrix, kind: str, n: int, name: str, rcond_bound: float | None = None
) -> None:
    """Raise ``SingularMatrixError`` when ``factor``'s rcond estimate is below ``n·eps``.

    The capacitance ``O`` is tested with the factor's 1-norm estimate (:meth:`Factor.
    rcond`), the given blocks with its screening estimate (CHOLMOD's free pivot ratio;
    the same 1-norm estimate for the other factors), confirmed by the 1-norm estimate
    when the screen is below :data:`SCREENING_TRUSTED` or the factor indefinite. A
    sparse matrix whose diagonal dominance proves a reciprocal condition number of at
    least ``n·eps`` (:func:`~._base.dominance_rcond_bound`; ``rcond_bound``: that bound,
    when the caller has it already) skips the 1-norm estimate.
    """

    # ‖M‖₁ costs a pass over M; CHOLMOD's pivot ratio and the closed forms ignore it.
    def estimate(method, needs_norm: bool) -> float:
        return method(_one_norm(matrix, kind) if needs_norm else np.nan)

    spared: list[bool] = []  # computed once, on first need (a closure, not functools.cache)

    def solves_spared() -> bool:
        # A sparse factor's 1-norm estimate costs solves; a diagonally dominant matrix is
        # proven nonsingular by one O(nnz) pass instead (dominance_rcond_bound).
        if not spared:
            bound = 0.0
            if kind == "sparse":
                bound = dominance_rcond_bound(matrix) if rcond_bound is None else rcond_bound
            spared.append(kind == "sparse" and bound >= n * EPS)
        return spared[0]

    if name == "O":
        if solves_spared():
            return
        rcond = estimate(factor.rcond, factor.rcond_needs_norm)
        factor.rcond_estimate = rcond  # the same estimate State.capacitance_rcond wants
    else:
        # A screen that needs ‖M‖₁ is the 1-norm estimate itself (solves; SuperLU's factors):
        # the one O(nnz) pass of the dominance bound goes first.
        if factor.screening_needs_norm and solves_spared():
            return
        rcond = estimate(factor.screening_rcond, factor.screening_needs_norm)
        # The free screen only bounds 1/cond₂ from above, and only for a positive definite
        # factor: below SCREENING_TRUSTED, or for an indefinite one, the 1-norm estimate
        # decides (a singular I − c cᵀ/cᵀc passed with a pivot ratio of 7.3e-14).
        if not (rcond >= SCREENING_TRUSTED and factor.positive_definite):
            if solves_spared():
                return
            rcond = min(rcond, estimate(factor.rcond, factor.rcond_needs_norm))
    what = _what(name)
    if not rcond >= n * EPS:  # NaN too
        hint = " (an intrinsic GMRF needs `shift=`)" if name == "A" else ""
        raise SingularMatrixError(
            name,
            f"{what} is singular to working precision: its estimated reciprocal condition "
            f"number {rcond:.1e} is below n·eps = {n * EPS:.1e}{hint}",
        )


def _one_norm(matrix, kind: str) -> float:
    if kind == "diagonal":
        return float(np.abs(matrix).max())
    if kind == "sparse":
        return sparse_one_norm(matrix)
    return float(np.maximum.reduce(np.add.reduce(np.abs(matrix), axis=0)))


def sparse_one_norm(m) -> float:
    """``‖M‖₁``, the largest absolute column sum, of a CSC array.

    Sums each column's stretch of ``|data|`` in place of SciPy's ``abs(M).sum(axis=0)``,
    which copies the matrix and sums through a sparse product (several times slower).
    """
    if m.nnz == 0:
        return 0.0
    starts = m.indptr[:-1]
    nonempty = starts[starts < m.indptr[1:]]  # reduceat misreads empty stretches
    return float(np.add.reduceat(np.abs(m.data), nonempty).max())
