"""Dense matrix products through SciPy's BLAS, the one that does our factorisations.

NumPy's and SciPy's wheels each bundle their own OpenBLAS, and each keeps its own pool
of worker threads that spin for a while after every call. On a machine with few cores,
a multi-threaded NumPy product followed by a multi-threaded SciPy solve (or the other
way round) makes the two pools fight over the cores: on the 2-core benchmark machine a
``1000×5 @ 5×1000`` product next to a 5×5 Cholesky solve with 1000 right-hand sides took
8 ms instead of 0.4 ms (scipy/scipy#15050 and #15129 describe the problem). The dense
factorisations and solves of this package run on SciPy's LAPACK, so its multi-column
products (matrix-vector ones included: NumPy threads a 1000×1000 ``gemv``) run on
SciPy's BLAS too, so one operation wakes one pool.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypedDict

import numpy as np
import threadpoolctl
from scipy.linalg import blas

#: Products with fewer multiply-adds than this go through ``@``: below it OpenBLAS runs
#: single-threaded and the f2py call's overhead would dominate.
SMALL_PRODUCT = 1 << 16

#: The thread policy: the package's own dense products with fewer multiply-adds than this
#: (about 10 ms of one core) run on one BLAS thread, whatever the pools' sizes; larger
#: ones use the pools as the user set them. Below it a second thread gains little (the
#: products here are thin: ``n×p`` by ``p×k`` with small ``p``, bound by memory), and on a
#: machine where another process is busy an OpenBLAS worker that waits for a core costs
#: whole scheduler quanta: a 1000×1000 dense update took 376 ms instead of 4 ms.
LARGE_PRODUCT = 1 << 25

#: Products whose result has at most this many entries run on one BLAS thread at any size:
#: a long inner dimension reduced to a small result (``Xᵀ (A X)`` with ``X`` ``n×p``, the
#: capacitance; ``(A X)ᵀ b``). OpenBLAS splits the *result* among its threads, each of
#: which streams the shared operand, so a second thread gains nothing on such a
#: memory-bound product (``Xᵀ (A X)`` at ``n = 2·10⁵``, ``p = 20``: 8·10⁷ multiply-adds,
#: 0.98× the one-thread wall time on the 2-core machine) and loses whole scheduler quanta
#: when another process is busy (the first regression log density at ``n = 2·10⁵`` took
#: 2.5× its one-thread time with default pools, 5.7× beside a competitor).
SMALL_RESULT = 4096

#: OpenBLAS runs ``gemv`` and ``gemm`` with fewer multiply-adds than this (``2304 × 4``)
#: on one thread by itself, and ``dot`` up to 10 000 entries: no limit is needed below.
UNTHREADED = 9216

#: At most this many columns make a product "thin" (see :func:`matmul`).
THIN = 16


@functools.cache
def _blas_pools() -> tuple:
    """The controllers (threadpoolctl's) of the BLAS libraries loaded, found once.

    Built on first use, after NumPy, SciPy and CHOLMOD have loaded theirs; a scan costs
    milliseconds, a thread count set through a controller microseconds.
    """
    return tuple(threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers)


@functools.cache
def _pool_sizes() -> tuple:
    """``(get, set)`` of every BLAS pool's size, the cheapest callables that do it.

    For OpenBLAS built with its own threads (the wheels' builds) the library's
    ``openblas_get_num_threads`` / ``openblas_set_num_threads``, which threadpoolctl
    calls too, taken once: threadpoolctl's methods look the symbol up and take a lock on
    every call (2.8 µs for a :func:`one_thread` block that only reads two sizes, against
    about 1 µs). Other libraries keep threadpoolctl's methods.
    """
    out = []
    for pool in _blas_pools():
        get = set_ = None
        symbol = getattr(pool, "_get_symbol", None)
        layer = getattr(pool, "threading_layer", None)
        if getattr(pool, "internal_api", None) == "openblas" and layer == "pthreads" and symbol:
            get = symbol("openblas_get_num_threads")
            set_ = symbol("openblas_set_num_threads")
        if get is None or set_ is None:
            get, set_ = pool.get_num_threads, pool.set_num_threads
        out.append((get, set_))
    return tuple(out)


class _LimitState(TypedDict):
    """How many :func:`one_thread` blocks are open, and the pools changed with their sizes."""

    depth: int
    saved: tuple[tuple[Callable[[int], object], int], ...]


_LIMIT_LOCK = threading.Lock()
_limit_state: _LimitState = {"depth": 0, "saved": ()}


class _OneThread:
    """The context manager :func:`one_thread` returns (one, stateless: nesting is global).

    A class rather than a generator: entered around every product of a repeated log
    density, a ``contextlib`` generator and the six ``threadpoolctl`` calls of a
    save-set-restore cost more than the small products themselves (28 µs against a
    13 µs floor). Only the outermost block reads the sizes, and it sets (and restores)
    only the pools not at one thread already: with one-thread pools a block costs two
    reads.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        with _LIMIT_LOCK:
            if _limit_state["depth"] == 0:
                changed = []
                for get, set_ in _pool_sizes():
                    threads = get()
                    if threads != 1:
                        changed.append((set_, threads))
                        set_(1)
                _limit_state["saved"] = tuple(changed)
            _limit_state["depth"] += 1

    def __exit__(self, *exc_info: object) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        with _LIMIT_LOCK:
            _limit_state["depth"] -= 1
            if _limit_state["depth"] == 0:
                for set_, threads in _limit_state["saved"]:
                    set_(threads)
                _limit_state["saved"] = ()


_ONE_THREAD = _OneThread()


def one_thread() -> _OneThread:
    """Run the block with every BLAS pool at one thread, restoring the user's sizes after.

    The package's policy for its own small and medium dense operations (see
    :data:`LARGE_PRODUCT`). In the main thread only: a pool's size is process-wide, and
    OpenBLAS does not reliably take sizes set from several threads at once (a size set
    from a worker thread was seen not to hold), so calls from other threads leave the
    pools as they are. Nested uses share one limit: the outermost saves the sizes of the
    pools it changes and restores them. While a block runs, BLAS calls of other threads
    run on one thread too.

    Examples
    --------
    >>> with one_thread():
    ...     pass
    """
    return _ONE_THREAD


def _transposed_fortran(m: np.ndarray) -> tuple[np.ndarray, int]:
    """``(f, trans)`` with ``f`` Fortran-ordered and ``op(f) = mᵀ`` (no copy when possible)."""
    if m.flags.c_contiguous:
        return m.T, 0
    if m.flags.f_contiguous:
        return m, 1
    return np.ascontiguousarray(m).T, 0


def matmul(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``a @ x`` for a 2-D float64 ``a`` and a dense 1-D or 2-D float64 ``x``.

    Products of at least :data:`SMALL_PRODUCT` multiply-adds go to SciPy's ``dgemv`` or
    ``dgemm``, the latter as ``(xᵀ aᵀ)ᵀ`` so that a C-ordered result comes out without
    copying C- or Fortran-ordered operands. From :data:`UNTHREADED` up to
    :data:`LARGE_PRODUCT` multiply-adds they run on one BLAS thread (:func:`one_thread`),
    and so do larger ones with a result of at most :data:`SMALL_RESULT` entries.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> matmul(a, np.ones((3, 2)))
    array([[ 3.,  3.],
           [12., 12.]])
    """
    columns = 1 if x.ndim == 1 else x.shape[1]
    madds = a.shape[0] * a.shape[1] * columns
    if madds < UNTHREADED:
        return a @ x
    if madds >= LARGE_PRODUCT and a.shape[0] * columns > SMALL_RESULT:
        return _matmul(a, x)
    with one_thread():  # OpenBLAS would thread these, and gain little from it
        return a @ x if madds < SMALL_PRODUCT else _matmul(a, x)


def _matmul(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    if x.ndim == 1:
        at, trans_a = _transposed_fortran(a)
        return blas.dgemv(1.0, at, x, trans=1 - trans_a)
    if x.shape[1] <= THIN and a.flags.c_contiguous:
        # A C-ordered a times a few columns: OpenBLAS streams a's rows against the
        # columns ("T" layout), 1.3–1.4× faster than the (xᵀ aᵀ)ᵀ form at n in the
        # thousands; the thin result is then copied to C order.
        product = blas.dgemm(1.0, a.T, np.asfortranarray(x), trans_a=1)
        return np.ascontiguousarray(product)
    xt, trans_x = _transposed_fortran(x)
    at, trans_a = _transposed_fortran(a)
    return blas.dgemm(1.0, xt, at, trans_a=trans_x, trans_b=trans_a).T


def _fortran(m: np.ndarray) -> tuple[np.ndarray, int]:
    """``(f, trans)`` with ``f`` Fortran-ordered and ``op(f) = m`` (no copy when possible)."""
    if m.flags.f_contiguous:
        return m, 0
    if m.flags.c_contiguous:
        return m.T, 1
    return np.asfortranarray(m), 0


def subtract_product(out: np.ndarray, left: np.ndarray, right: np.ndarray) -> None:
    """``out −= left @ right`` in place, by one ``dgemm`` (``β = 1``, ``α = −1``).

    ``out`` is a C- or Fortran-contiguous float64 ``n×m`` array (a copy of the minuend
    the caller owns), ``left`` is ``n×p``, ``right`` ``p×m``: no ``n×m`` product is made,
    and for ``p`` up to OpenBLAS's inner block size the result is bit for bit
    ``out − left @ right`` (for larger ``p`` the partial sums are added in another order).

    Examples
    --------
    >>> import numpy as np
    >>> out = np.ones((2, 2))
    >>> subtract_product(out, np.ones((2, 1)), np.array([[2.0, 0.5]]))
    >>> out
    array([[-1. ,  0.5],
           [-1. ,  0.5]])
    """
    if out.size == 0 or left.shape[1] == 0:
        return
    if out.flags.f_contiguous:  # out −= left right, as it is
        (a, trans_a), (b, trans_b), c = _fortran(left), _fortran(right), out
    else:  # outᵀ (Fortran-ordered) −= rightᵀ leftᵀ
        (a, trans_a), (b, trans_b), c = _transposed_fortran(right), _transposed_fortran(left), out.T
    keywords = {"beta": 1.0, "c": c, "trans_a": trans_a, "trans_b": trans_b, "overwrite_c": True}
    if out.size * left.shape[1] >= LARGE_PRODUCT:
        result = blas.dgemm(-1.0, a, b, **keywords)
    else:
        with one_thread():
            result = blas.dgemm(-1.0, a, b, **keywords)
    if not np.shares_memory(result, c):  # pragma: no cover - f2py copied c after all
        np.copyto(c, result)


def dot(x: np.ndarray, y: np.ndarray):
    """``x @ y`` for 1-D ``x`` and 1-D or 2-D ``y``: a quadratic form's last step.

    On one BLAS thread where OpenBLAS would thread it (see :data:`UNTHREADED`).

    Examples
    --------
    >>> import numpy as np
    >>> float(dot(np.ones(3), np.arange(3.0)))
    3.0
    """
    if x.size < UNTHREADED or x.size * (1 if y.ndim == 1 else y.shape[1]) >= LARGE_PRODUCT:
        return x @ y
    with one_thread():
        return x @ y


def squared_norm(m: np.ndarray) -> float:
    """``‖m‖²_F`` through SciPy's ``ddot`` (``numpy.vdot`` would wake NumPy's pool).

    Callers with many of these run them under :func:`one_thread`.
    """
    flat = np.ravel(m)
    return float(blas.ddot(flat, flat)) if flat.size else 0.0
