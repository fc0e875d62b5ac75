r"""Scale-out on Dask: Woodbury operators applied, sampled and evaluated on a cluster.

Install with ``pip install 'woodbury-sparse[dask]'``; ``import woodbury_sparse`` never
imports this module (nor Dask).

=====================  ===============================================================
function               what runs on the workers
=====================  ===============================================================
:func:`apply`          ``W b``, ``W⁻¹ b``, ``Wᵀ b`` or ``W⁻ᵀ b`` for a ``dask.array``
                       of right-hand sides, one column block per task
:func:`sample`         draws of ``N(μ, W)``, a block of draws per spawned seed, so the
                       draws do not depend on the chunking or the number of workers
:func:`map_grid`       any function of an operator built on the worker, over a grid
                       of parameters
:func:`logpdf_grid`    log densities ``log N(x; μ_θ, W_θ)`` over a grid of ``θ``
:func:`compute`        ``dask.compute`` that reports progress (a callback or a bar)
=====================  ===============================================================

How the operator travels
------------------------
Operators pickle by value and never carry a factorisation: the pickle holds the
normalised inputs and an identity token, so it is about the size of the inputs
(``W.nbytes``). Each process that unpickles an operator keeps it in a small
per-process cache keyed by that token, so unpickling it again returns the same object
with the factorisations it has built: *one factorisation per process per operator*,
however many tasks use it.

With a ``distributed`` client (given as ``client=`` or the default one), the operator is
scattered to every worker once (:func:`scatter`, ``broadcast=True``) and the tasks refer
to it by key; it stays there while ``W`` is alive in the client process (or until
:func:`release`). Without one (the threaded or multiprocessing schedulers), it is one
key of the task graph, so a compute ships it once per process that needs it. Large
shared arguments (means, data) travel the same way, never inside every task.

Threads
-------
A worker process with several threads runs several tasks at once; each operator builds
each factorisation once even then (its caches lock while they are built, and are read
without locking afterwards). CHOLMOD and BLAS start threads of their own, set per process by
``OMP_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` (or ``MKL_NUM_THREADS``) *before* the
process starts. Dask's nanny sets all three to 1 in its workers (configuration
``distributed.nanny.pre-spawn-environ``): right for one single-threaded worker per core;
for fewer, larger workers raise them to the cores per worker.

Examples
--------
>>> import numpy as np
>>> import dask
>>> import dask.array as da
>>> import woodbury_sparse as ws
>>> import woodbury_sparse.dask as wsd
>>> W = ws.WoodburyMatrix(np.eye(4), np.eye(1), X=np.ones((4, 1)))
>>> b = da.ones((4, 6), chunks=(4, 2))
>>> with dask.config.set(scheduler="synchronous"):
...     x = wsd.apply(W, b, how="solve").compute()
>>> bool(np.allclose(W @ x, 1.0))
True
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

try:
    import dask
    import dask.array as da
    from dask.callbacks import Callback
    from dask.delayed import Delayed
except ImportError as exc:  # pragma: no cover - the module is only imported with Dask
    raise ImportError(
        "woodbury_sparse.dask needs Dask: pip install 'woodbury-sparse[dask]'"
    ) from exc

from ._arguments import check_covariance, mean_vector
from ._operators import WoodburyMatrix
from ._process_cache import OPERATOR_CACHE
from ._progress import Reporter, reporter
from ._random import check_one, generator
from ._validation import as_count, require_integer, require_real, short_repr
from .stats import dwnorm, rwnorm

__all__ = [
    "apply",
    "cache_info",
    "clear_cache",
    "compute",
    "logpdf_grid",
    "map_grid",
    "release",
    "sample",
    "scatter",
]

#: What :func:`apply` computes, by its ``how``.
_HOW = {
    "matmul": lambda W, x: W @ x,
    "solve": lambda W, x: W.solve(x),
    "transpose": lambda W, x: W.T @ x,
    "solve_transpose": lambda W, x: W.T.solve(x),
}

#: Largest block of white noise one seed generates by default (float64 entries): 32 MB.
_NOISE_ENTRIES = 2**22


# -- this process's cache ------------------------------------------------------------------
def cache_info() -> dict[str, Any]:
    """The per-process cache of operators restored from pickles, in this process.

    Returns
    -------
    dict
        ``maxsize``, ``hits`` and ``misses`` (operators restored), and ``operators``:
        for each cached identity token its ``class``, how often it was ``restores``-d
        (1 unless evicted and restored again) and the blocks (``"A"``, ``"B"``, ``"O"``)
        it has ``factorised``.

    Notes
    -----
    Run it on every worker with ``client.run(woodbury_sparse.dask.cache_info)``.

    Examples
    --------
    >>> import woodbury_sparse.dask as wsd
    >>> sorted(wsd.cache_info())
    ['hits', 'maxsize', 'misses', 'operators']
    """
    return OPERATOR_CACHE.info()


def clear_cache() -> None:
    """Empty this process's cache of restored operators (and reset its counters).

    Examples
    --------
    >>> import pickle
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> import woodbury_sparse.dask as wsd
    >>> W = ws.WoodburyMatrix(np.eye(3), np.eye(3))
    >>> restored = pickle.loads(pickle.dumps(W))  # as on a worker: now in the cache
    >>> wsd.clear_cache()
    >>> info = wsd.cache_info()
    >>> info["hits"], info["misses"], info["operators"]
    (0, 0, {})
    """
    OPERATOR_CACHE.clear()


# -- shipping operators and data ----------------------------------------------------------
def _default_client(client=None):
    """``client``, else the default ``distributed`` client, else None."""
    if client is not None:
        return client
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - Dask without distributed
        return None
    try:
        return default_client()
    except ValueError:  # no client
        return None


#: Futures of scattered operators: operator → {client id: future}. Weak on the operator,
#: so the workers' copies are released when the client process lets go of ``W``.
_SCATTERED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SCATTER_LOCK = threading.Lock()


def _check_operator(W, name: str = "W") -> WoodburyMatrix:
    if not isinstance(W, WoodburyMatrix):
        raise TypeError(f"`{name}` must be a WoodburyMatrix, got {type(W).__name__}")
    return W


def scatter(W: WoodburyMatrix, client=None):
    """Ship ``W`` to every worker once; a future that tasks can depend on.

    Parameters
    ----------
    W : WoodburyMatrix
        The operator. It travels without factorisations (about ``W.nbytes`` bytes);
        each worker factorises it on first use and keeps the factorisations.
    client : distributed.Client, optional
        Default: the default client.

    Returns
    -------
    distributed.Future
        The same future for every call with the same ``W`` and client, while ``W`` is
        alive (or until :func:`release`).

    Raises
    ------
    ValueError
        Without a ``distributed`` client.

    Examples
    --------
    >>> import numpy as np
    >>> from distributed import Client, LocalCluster
    >>> import woodbury_sparse as ws
    >>> import woodbury_sparse.dask as wsd
    >>> cluster = LocalCluster(n_workers=1, processes=False, dashboard_address=None)
    >>> client = Client(cluster)
    >>> W = ws.WoodburyMatrix(np.diag([1.0, 2.0]), np.eye(2))
    >>> future = wsd.scatter(W, client)
    >>> future is wsd.scatter(W, client)  # shipped once
    True
    >>> client.submit(lambda W, b: W.solve(b), future, np.ones(2)).result()
    array([0.5       , 0.66666667])
    >>> wsd.release(W)
    >>> client.close(); cluster.close()
    """
    W = _check_operator(W)
    client = _default_client(client)
    if client is None:
        raise ValueError("scatter() needs a distributed client: pass `client=` or start one")
    with _SCATTER_LOCK:
        futures = _SCATTERED.setdefault(W, {})
        future = futures.get(client.id)
        if future is None or future.status != "finished":
            future = client.scatter(W, broadcast=True, hash=True)
            futures[client.id] = future
    return future


def release(W: WoodburyMatrix) -> None:
    """Forget the futures :func:`scatter` keeps for ``W``, so the workers may drop it.

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> import woodbury_sparse.dask as wsd
    >>> W = ws.WoodburyMatrix(np.eye(2), np.eye(2))
    >>> wsd.release(W)  # nothing scattered: nothing to forget, no error

    :func:`scatter` shows it after a scatter.
    """
    with _SCATTER_LOCK:
        _SCATTERED.pop(W, None)


def _operator_ref(W: WoodburyMatrix, client):
    """What tasks receive for ``W``: a scattered future, or one key of the graph."""
    if _default_client(client) is not None:
        return scatter(W, client)
    return dask.delayed(W, pure=True, traverse=False)


def _data_ref(value):
    """``value`` as one key of the graph (shipped once per process, not per task)."""
    return dask.delayed(value, pure=True, traverse=False)


# -- W, W⁻¹, Wᵀ on column blocks ----------------------------------------------------------
def _apply_block(block: np.ndarray, W: WoodburyMatrix, how: str) -> np.ndarray:
    return np.asarray(_HOW[how](W, block), dtype=np.float64)


def apply(W: WoodburyMatrix, b, how: str = "matmul", *, client=None) -> da.Array:
    """Apply ``W``, ``W⁻¹``, ``Wᵀ`` or ``W⁻ᵀ`` to a ``dask.array``, column block by block.

    Parameters
    ----------
    W : WoodburyMatrix
        The ``n×n`` operator, shipped once per worker (see :func:`scatter`).
    b : (n,) or (n, k) dask.array.Array or array_like
        Right-hand sides. Rows are gathered into one chunk; each column chunk is one
        task.
    how : {"matmul", "solve", "transpose", "solve_transpose"}, optional
        ``W b`` (default), ``W⁻¹ b``, ``Wᵀ b`` or ``W⁻ᵀ b``.
    client : distributed.Client, optional
        Default: the default client if there is one, else the operator becomes one key
        of the graph (any Dask scheduler).

    Returns
    -------
    dask.array.Array
        Lazy, float64, the shape and column chunks of ``b``.

    Raises
    ------
    ValueError
        For an unknown ``how`` or a ``b`` whose rows do not match ``W``.

    Notes
    -----
    Each task makes one multi-right-hand-side product or solve with the factorisations
    its process has cached: a process factorises ``W`` once, on its first task.

    Examples
    --------
    >>> import numpy as np
    >>> import dask
    >>> import dask.array as da
    >>> import woodbury_sparse as ws
    >>> import woodbury_sparse.dask as wsd
    >>> W = ws.WoodburyMatrix(np.eye(3), np.eye(3))  # W = 2 I
    >>> with dask.config.set(scheduler="synchronous"):
    ...     wsd.apply(W, da.ones((3, 4), chunks=(3, 2))).compute()
    array([[2., 2., 2., 2.],
           [2., 2., 2., 2.],
           [2., 2., 2., 2.]])
    """
    W = _check_operator(W)
    if how not in _HOW:
        raise ValueError(f"`how` must be one of {sorted(_HOW)}, got {how!r}")
    if not isinstance(b, da.Array):
        b = da.asarray(b)
    require_real(b.dtype, "b")
    if b.ndim not in (1, 2) or b.shape[0] != W.n:
        raise ValueError(
            f"`b` must have shape ({W.n},) or ({W.n}, k) for the {W.n}×{W.n} operator, "
            f"got shape {b.shape}"
        )
    b = b.astype(np.float64).rechunk({0: -1})
    return da.map_blocks(
        _apply_block,
        b,
        _operator_ref(W, client),
        how,
        dtype=np.float64,
        meta=np.empty((0,) * b.ndim),
    )


# -- sampling ------------------------------------------------------------------------------
def _seed_sequence(seed, name: str = "seed") -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (np.random.Generator, np.random.RandomState, np.random.BitGenerator)):
        raise TypeError(
            f"`{name}` must be an int, a sequence of ints, a numpy.random.SeedSequence or "
            f"None, not a {type(seed).__name__}: a generator's stream cannot be split "
            "reproducibly (pass it as `rng=`, which seeds the blocks from its next draws)"
        )
    expected = (
        f"`{name}` must be None, a non-negative int, a sequence of non-negative ints or a "
        f"numpy.random.SeedSequence; got {short_repr(seed)}"
    )
    if isinstance(seed, (bool, np.bool_, str, bytes)):
        raise TypeError(expected)
    try:
        return np.random.SeedSequence(seed)
    except TypeError:
        raise TypeError(expected) from None
    except ValueError:
        raise ValueError(expected) from None


def _root_seed(rng, seed) -> np.random.SeedSequence:
    """The root of the blocks' seeds, from ``rng`` (SPEC 7) or its older name ``seed``.

    A seed (``None``, ints, a ``SeedSequence``) is the root as it is, under either name; a
    ``Generator`` or ``BitGenerator`` given as ``rng`` is used as SPEC 7 says, drawn from:
    128 bits of its stream seed the root, so a seeded generator gives the same draws and
    advances, and the blocks stay independent of the chunking.
    """
    check_one(rng, seed, "seed", "sample")
    if rng is None:
        return _seed_sequence(seed)
    if isinstance(rng, (np.random.Generator, np.random.BitGenerator, np.random.RandomState)):
        entropy = generator(rng).integers(0, 2**32, size=4, dtype=np.uint32)
        return np.random.SeedSequence([int(e) for e in entropy])
    return _seed_sequence(rng, "rng")


def _child(root: np.random.SeedSequence, i: int) -> np.random.SeedSequence:
    """``root.spawn(i + 1)[i]`` without spawning (``root`` must not have spawned yet)."""
    return np.random.SeedSequence(
        root.entropy, spawn_key=(*root.spawn_key, i), pool_size=root.pool_size
    )


def _sample_chunk(W, mean, root, block_size: int, size: int, start: int, stop: int):
    """Draws ``start:stop`` of ``size``: the seed blocks covering them, sliced."""
    pieces = []
    for i in range(start // block_size, (stop - 1) // block_size + 1):
        lo = i * block_size
        count = min(block_size, size - lo)
        rng = np.random.default_rng(_child(root, i))
        draws = rwnorm(count, mean, W, rng=rng)
        draws = np.reshape(draws, (count, W.n))
        pieces.append(draws[max(start - lo, 0) : min(stop - lo, count)])
    return np.concatenate(pieces, axis=0)


def _chunk_sizes(chunks, size: int, block_size: int, name: str = "chunks") -> tuple[int, ...]:
    if chunks is None:
        chunks = block_size
    count = as_count(chunks)
    if count is not None:
        if count <= 0:
            raise ValueError(f"`{name}` must be positive, got {count}")
        full, rest = divmod(size, count)
        return (count,) * full + ((rest,) if rest else ())
    expected = f"`{name}` must be an int or a tuple of ints, got {short_repr(chunks)}"
    if not isinstance(chunks, (tuple, list)):
        raise TypeError(expected)
    counts = [as_count(c) for c in chunks]
    sizes = tuple(c for c in counts if c is not None)
    if len(sizes) != len(counts):
        raise TypeError(expected)
    if any(c <= 0 for c in sizes) or sum(sizes) != size:
        raise ValueError(
            f"`{name}` must be positive sizes adding up to {size}, got {tuple(chunks)!r}"
        )
    return sizes


def sample(
    W: WoodburyMatrix,
    size: int,
    mean=None,
    *,
    seed=None,
    block_size: int | None = None,
    chunks=None,
    client=None,
    rng=None,
) -> da.Array:
    """Draws of ``N(mean, W)`` generated on the workers, identical however they are split.

    Parameters
    ----------
    W : SymmetricWoodburyMatrix
        The covariance; ``A`` and ``B`` must be positive definite (see
        :func:`~woodbury_sparse.rwnorm`). Shipped once per worker.
    size : int
        Number of draws.
    mean : None, scalar or (n,) array_like, optional
        The mean; ``None`` (default) means zero.
    seed : None, int, sequence of int or numpy.random.SeedSequence, optional
        Root of the seeds. The same ``seed`` and ``block_size`` give the same draws
        whatever ``chunks``, the scheduler or the number of workers. The older spelling
        of ``rng``: give one of the two.
    block_size : int, optional
        Draws per spawned seed: draws ``i·block_size`` onwards are
        ``rwnorm(count, mean, W, rng=default_rng(SeedSequence(seed).spawn(m)[i]))``.
        Default: 1024, or fewer so that a block's white noise stays below 32 MB.
    chunks : int or tuple of int, optional
        Draws per task (default ``block_size``). Chunks that are not multiples of
        ``block_size`` cost extra work (a block split between two tasks is drawn by
        both), never different draws.
    client : distributed.Client, optional
        Default: the default client if there is one.
    rng : None, int, sequence of int, numpy.random.SeedSequence, BitGenerator or Generator, optional
        As SPEC 7 reads it. A seed is the root, as ``seed`` is (``rng=1`` and ``seed=1``
        give the same draws); a ``Generator`` (or ``BitGenerator``) seeds the root with
        128 bits of its stream, so the same seeded generator gives the same draws and is
        advanced, as drawing from it does.

    Returns
    -------
    dask.array.Array
        Lazy, shape ``(size, n)``, row chunks ``chunks``. Reduce it on the workers
        (``draws.mean(axis=0)``, ``da.cov``...) so that only summaries travel back.

    Raises
    ------
    TypeError
        When ``W`` is not a Woodbury operator; when ``seed`` is a generator (whose stream
        cannot be split reproducibly: pass it as ``rng``) or not a seed, ``rng`` is
        not a seed or generator, or both are given; when ``size``, ``block_size`` or
        ``chunks`` are not integers (a float is never truncated, a string never parsed).
    ValueError
        When ``W`` is a general (non-symmetric) operator; for a negative ``size`` or
        ``seed``, a non-positive ``block_size`` or ``chunks`` that do not add up to
        ``size``.

    Examples
    --------
    >>> import numpy as np
    >>> import dask
    >>> import woodbury_sparse as ws
    >>> import woodbury_sparse.dask as wsd
    >>> W = ws.WoodburyMatrix(np.eye(3), np.eye(1), X=np.ones((3, 1)))
    >>> x = wsd.sample(W, 10, seed=1, block_size=4, chunks=5)
    >>> y = wsd.sample(W, 10, seed=1, block_size=4, chunks=(2, 8))
    >>> with dask.config.set(scheduler="synchronous"):
    ...     bool(np.array_equal(x.compute(), y.compute()))
    True
    """
    W = check_covariance(W, "W")
    size = require_integer(size, "size", "a non-negative", minimum=0)
    if block_size is None:
        block_size = max(1, min(1024, _NOISE_ENTRIES // (W.n + W.p)))
    block_size = require_integer(block_size, "block_size", "a positive", minimum=1)
    mean = mean_vector(mean, W.n, "mean")
    root = _root_seed(rng, seed)
    if root.n_children_spawned:
        raise ValueError(
            f"`{'seed' if rng is None else 'rng'}` is a SeedSequence that has already "
            "spawned children; pass a fresh one (its children are the seeds of the blocks "
            "of draws)"
        )
    sizes = _chunk_sizes(chunks, size, block_size)
    if size == 0:
        return da.zeros((0, W.n), dtype=np.float64)
    w_ref, mean_ref = _operator_ref(W, client), _data_ref(mean)
    parts, start = [], 0
    for count in sizes:
        task = dask.delayed(_sample_chunk, pure=True)(
            w_ref, mean_ref, root, block_size, size, start, start + count
        )
        parts.append(da.from_delayed(task, shape=(count, W.n), dtype=np.float64))
        start += count
    return da.concatenate(parts, axis=0)


# -- grids of parameters -------------------------------------------------------------------
def _grid_batch(build, func, thetas, *args):
    return [func(build(theta), *args) for theta in thetas]


def _flatten(batches):
    return [value for batch in batches for value in batch]


def _batches(grid, batch_size: int | None) -> list[list]:
    grid = list(grid)
    if batch_size is None:  # about a hundred tasks
        batch_size = max(1, math.ceil(len(grid) / 100))
    batch_size = require_integer(batch_size, "batch_size", "a positive", minimum=1)
    return [grid[i : i + batch_size] for i in range(0, len(grid), batch_size)]


def map_grid(
    build: Callable[[Any], WoodburyMatrix],
    grid: Sequence,
    func: Callable[..., Any],
    *args,
    batch_size: int | None = None,
) -> Delayed:
    """``[func(build(θ), *args) for θ in grid]``, each operator built on a worker.

    Parameters
    ----------
    build : callable
        ``build(θ)`` returns the operator for one grid point. It runs on the workers:
        it must be picklable (a module-level function, or a lambda or closure defined in
        ``__main__`` or a notebook, which Dask's cloudpickle ships by value).
    grid : sequence
        The parameter values ``θ`` (any picklable objects).
    func : callable
        ``func(W, *args)``: what to compute from each operator.
    *args
        Shared arguments (data, say): each is one key of the graph, shipped once per
        worker, not with every task. ``build`` and ``func`` travel the same way.
    batch_size : int, optional
        Grid points per task; default about a hundred tasks in all. The result does not
        depend on it.

    Returns
    -------
    dask.delayed.Delayed
        Computes to the list of results, in grid order.

    Examples
    --------
    >>> import numpy as np
    >>> import dask
    >>> import woodbury_sparse as ws
    >>> import woodbury_sparse.dask as wsd
    >>> def build(s):
    ...     return ws.WoodburyMatrix(np.eye(2), np.eye(2) / s)  # W = (1 + s) I
    >>> task = wsd.map_grid(build, [1.0, 3.0], lambda W: round(W.logdet(), 6))
    >>> with dask.config.set(scheduler="synchronous"):
    ...     task.compute()
    [1.386294, 2.772589]
    """
    batches = _batches(grid, batch_size)
    build_ref, func_ref = _data_ref(build), _data_ref(func)
    arg_refs = [_data_ref(a) for a in args]
    tasks = [
        dask.delayed(_grid_batch, pure=True)(build_ref, func_ref, thetas, *arg_refs)
        for thetas in batches
    ]
    return dask.delayed(_flatten, pure=True)(tasks)


def _logpdf_batch(build, thetas, x, mean):
    out = []
    for theta in thetas:
        built = build(theta)
        theta_mean, W = built if isinstance(built, tuple) else (mean, built)
        out.append(dwnorm(x, theta_mean, W, log=True))
    return np.asarray(out, dtype=np.float64)


def logpdf_grid(
    build: Callable[[Any], Any],
    grid: Sequence,
    x,
    mean=None,
    *,
    batch_size: int | None = None,
) -> da.Array:
    """Log densities ``log N(x; μ_θ, W_θ)`` over a grid of ``θ``, computed on the workers.

    Parameters
    ----------
    build : callable
        ``build(θ)`` returns the covariance ``W_θ`` (a
        :class:`~woodbury_sparse.SymmetricWoodburyMatrix`), or a pair ``(μ_θ, W_θ)``.
        Runs on the workers; must be picklable (see :func:`map_grid`).
    grid : sequence
        The parameter values.
    x : (n,) or (k, n) array_like
        One point, or ``k`` points one per row; shipped once per worker.
    mean : None, scalar or (n,) array_like, optional
        The mean when ``build`` returns only ``W_θ``; default zero.
    batch_size : int, optional
        Grid points per task (default: about a hundred tasks in all).

    Returns
    -------
    dask.array.Array
        Lazy float64, shape ``(len(grid),)`` for one point, ``(len(grid), k)`` for ``k``.

    Examples
    --------
    >>> import numpy as np
    >>> import dask
    >>> import woodbury_sparse as ws
    >>> import woodbury_sparse.dask as wsd
    >>> def build(s):
    ...     return ws.WoodburyMatrix(np.eye(2), np.eye(2) / s)  # W = (1 + s) I
    >>> logp = wsd.logpdf_grid(build, [1.0, 3.0], np.ones(2))
    >>> with dask.config.set(scheduler="synchronous"):
    ...     logp.compute().round(6)
    array([-3.031024, -3.474171])
    """
    x = np.asarray(x)
    require_real(x.dtype, "x")
    x = x.astype(np.float64)
    if x.ndim not in (1, 2):
        raise ValueError(f"`x` must have shape (n,) or (k, n), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("`x` contains NaN or infinite values")
    batches = _batches(grid, batch_size)
    if not batches:
        return da.zeros((0, *x.shape[:-1]), dtype=np.float64)
    build_ref, x_ref, mean_ref = _data_ref(build), _data_ref(x), _data_ref(mean)
    parts = [
        da.from_delayed(
            dask.delayed(_logpdf_batch, pure=True)(build_ref, thetas, x_ref, mean_ref),
            shape=(len(thetas), *x.shape[:-1]),
            dtype=np.float64,
        )
        for thetas in batches
    ]
    return da.concatenate(parts, axis=0)


# -- progress ------------------------------------------------------------------------------
class _LocalProgress(Callback):
    """Finished tasks of one run of a local scheduler (threads, processes, synchronous).

    Dask calls these hooks in the thread that called ``compute``, so the user's callback
    runs there too.
    """

    def __init__(self, report: Reporter) -> None:
        super().__init__()
        self._report = report

    def _start_state(self, dsk, state) -> None:
        done = len(state["finished"])
        self._report.start(done + sum(len(state[k]) for k in ("ready", "waiting", "running")))
        self._report.update(done)

    def _posttask(self, key, result, dsk, state, worker_id) -> None:
        self._report.update(len(state["finished"]))

    def _finish(self, dsk, state, errored) -> None:
        if not errored:
            self._report.update(self._report.total)


def _distributed_progress(client, futures, report: Reporter) -> None:
    """Follow ``futures`` (and every task they need) on ``client``'s scheduler until done.

    ``distributed``'s own progress bar asks the scheduler for ``(remaining, all)`` every
    100 ms; drawing it is replaced by a call of ``report``.
    """
    from distributed.diagnostics.progressbar import ProgressBar

    class _Follow(ProgressBar):
        started = False

        def _draw_bar(self, remaining, all, **kwargs) -> None:  # distributed names it `all`
            if not self.started:
                report.start(all)
                self.started = True
            report.update(all - remaining)

    follow = _Follow(futures, scheduler=client.scheduler.address, complete=True)
    client.sync(follow.listen)


def compute(*collections, progress=None, client=None, scheduler=None) -> tuple:
    """``dask.compute(*collections)`` that reports its progress in finished tasks.

    For the lazy results of this module (:func:`map_grid`, :func:`logpdf_grid`,
    :func:`sample`, :func:`apply`) and any other Dask collection.

    Parameters
    ----------
    *collections : dask collections
        What to compute, as ``dask.compute`` takes them.
    progress : None, bool or callable, optional
        ``None``/``False`` (default) silent; ``True`` a bar on a terminal (tqdm's when
        installed, else one line on stderr; silent when stderr is not a terminal); a
        callable is called as ``progress(done, total)`` in finished tasks of the graph,
        in this thread: first ``(0, total)``, then as tasks finish, ``done`` never
        decreasing, last ``(total, total)``.
    client : distributed.Client, optional
        Default: the default client if there is one (then the scheduler is asked for the
        counts every 100 ms), else Dask's local scheduler.
    scheduler : str, optional
        A local scheduler (``"threads"``, ``"processes"``, ``"synchronous"``); runs
        there even when a default client exists. Not with ``client``.

    Returns
    -------
    tuple
        One result per collection, as ``dask.compute`` returns.

    Raises
    ------
    TypeError
        When ``progress`` is not None, a bool or a callable, or an argument is not a
        Dask collection (checked before anything runs).
    ValueError
        When both ``client`` and ``scheduler`` are given.

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> import woodbury_sparse.dask as wsd
    >>> def build(s):
    ...     return ws.WoodburyMatrix(np.eye(2), np.eye(2) / s)  # W = (1 + s) I
    >>> seen = []
    >>> logp = wsd.logpdf_grid(build, [1.0, 2.0, 3.0], np.ones(2), batch_size=1)
    >>> (values,) = wsd.compute(
    ...     logp, scheduler="synchronous", progress=lambda done, total: seen.append(done)
    ... )
    >>> values.shape, seen[0], seen[-1] == len(seen) - 1
    ((3,), 0, True)
    """
    report = reporter(progress, "woodbury_sparse.dask", unit="task")
    for k, c in enumerate(collections):
        if not dask.is_dask_collection(c):
            raise TypeError(
                f"`collections[{k}]` must be a Dask collection (an array, a delayed value, "
                f"...), got {type(c).__name__}"
            )
    if client is not None and scheduler is not None:
        raise ValueError("give `client` (distributed) or `scheduler` (local), not both")
    client = None if scheduler is not None else _default_client(client)
    with report:
        if client is None:
            if report.silent:
                return dask.compute(*collections, scheduler=scheduler)
            with _LocalProgress(report):
                return dask.compute(*collections, scheduler=scheduler)
        if report.silent:
            return tuple(client.compute(list(collections), sync=True))
        from distributed import futures_of

        persisted = client.persist(list(collections))
        _distributed_progress(client, futures_of(persisted), report)
        return tuple(client.compute(persisted, sync=True))
