"""``woodbury_sparse.dask`` on a real cluster: two worker processes bound to 127.0.0.1.

The cluster starts once for the module and is closed at its end; every result is waited
for with a timeout. Skipped where Dask (the ``dask`` extra) is not installed.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import cloudpickle  # noqa: E402  (installed with distributed)
import dask.array as da  # noqa: E402

import woodbury_sparse as ws  # noqa: E402
import woodbury_sparse.dask as wsd  # noqa: E402
from woodbury_sparse.testing import ar1_precision, grid_precision, relative_error  # noqa: E402

#: Seconds any one result may take; a hung cluster fails the test instead of the suite.
TIMEOUT = 60
N, P = 400, 6
RNG = np.random.default_rng(7)
X_SHARED = RNG.standard_normal((N, P))


def symmetric_operator():
    """``Q_AR(1)⁻¹ + X B⁻¹ Xᵀ``: CHOLMOD for ``A``, dense ``B`` and ``O``."""
    B = np.eye(P) + 0.3 * np.ones((P, P))
    return ws.WoodburyMatrix(ar1_precision(N, 0.8), B, X=X_SHARED)


def general_operator():
    """``A⁻¹ + U B⁻¹ V`` with a sparse, non-symmetric ``V``."""
    rng = np.random.default_rng(3)
    V = sparse.random_array((P, N), density=0.3, rng=4, format="csr")
    A = grid_precision(20, k=N // 20)
    return ws.WoodburyMatrix(A, 4.0 * np.eye(P), U=rng.standard_normal((N, P)), V=V)


SERIAL = {
    "matmul": lambda W, b: W @ b,
    "solve": lambda W, b: W.solve(b),
    "transpose": lambda W, b: W.T @ b,
    "solve_transpose": lambda W, b: W.T.solve(b),
}


@pytest.fixture(scope="module")
def client():
    module = sys.modules[__name__]
    # The workers cannot import this test module: ship its functions by value.
    cloudpickle.register_pickle_by_value(module)
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        # No dashboard; the scheduler's small HTTP server (health checks) on any free
        # loopback port instead of 8787, which another cluster may hold.
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        worker_dashboard_address=None,
    )
    c = distributed.Client(cluster, set_as_default=False, timeout=TIMEOUT)
    try:
        c.wait_for_workers(2, timeout=TIMEOUT)
        yield c
    finally:
        c.close(timeout=TIMEOUT)
        cluster.close(timeout=TIMEOUT)
        cloudpickle.unregister_pickle_by_value(module)


def result(client, collection, **kwargs):
    return client.compute(collection, **kwargs).result(timeout=TIMEOUT)


def workers(client) -> list[str]:
    return sorted(client.scheduler_info()["workers"])


def on_each_worker(client, fn) -> dict:
    """``fn()`` in every worker process (as a task pinned there, so with a timeout)."""
    futures = {
        w: client.submit(fn, workers=[w], allow_other_workers=False, pure=False)
        for w in workers(client)
    }
    return {w: f.result(timeout=TIMEOUT) for w, f in futures.items()}


def start_counting_factorisations():
    """Count, in this process, the blocks factorised from now on (by their names)."""
    from woodbury_sparse import _blocks

    if not hasattr(_blocks.factorize, "calls"):
        original = _blocks.factorize

        def counting(matrix, kind, n, symmetric, name, **keywords):
            counting.calls.append(name)
            return original(matrix, kind, n, symmetric, name, **keywords)

        counting.calls = []
        _blocks.factorize = counting
    _blocks.factorize.calls.clear()
    wsd.clear_cache()


def factorisations() -> list[str]:
    from woodbury_sparse import _blocks

    return sorted(_blocks.factorize.calls)


# -- W, W⁻¹, Wᵀ on column blocks ----------------------------------------------------------
@pytest.mark.parametrize("how", sorted(SERIAL))
@pytest.mark.parametrize("build", [symmetric_operator, general_operator], ids=["sym", "gen"])
def test_apply_matches_the_serial_computation(client, build, how):
    W = build()
    b = RNG.standard_normal((N, 22))
    x = da.from_array(b, chunks=(N // 3, 5))  # row chunks are merged, column chunks kept
    out = wsd.apply(W, x, how, client=client)
    assert out.shape == b.shape and out.chunks[1] == (5, 5, 5, 5, 2)
    got = result(client, out)
    assert relative_error(got, SERIAL[how](W, b)) < 1e-12
    one = result(client, wsd.apply(W, da.from_array(b[:, 0], chunks=N // 2), how, client=client))
    assert relative_error(one, SERIAL[how](W, b[:, 0])) < 1e-12


def test_each_worker_factorises_each_operator_once(client):
    on_each_worker(client, start_counting_factorisations)
    W = general_operator()
    b = RNG.standard_normal((N, 64))
    x = da.from_array(b, chunks=(N, 4))  # 16 tasks per call
    for how in SERIAL:
        got = result(client, wsd.apply(W, x, how, client=client))
        assert relative_error(got, SERIAL[how](W, b)) < 1e-12
    info = on_each_worker(client, wsd.cache_info)
    # scattered once to each worker: one restore there, and no task carried its own copy.
    # 64 tasks: a copy per task would be ~32 cache hits per worker. On a loaded machine the
    # scheduler moves tasks and data between the workers (work stealing, re-fetches of the
    # scattered future), each a stray hit: 2 were seen under a load of 13 on 2 cores, so
    # the bound sits at a quarter of the per-task count, far from both.
    for w in workers(client):
        assert info[w]["misses"] == 1 and info[w]["hits"] <= 8, info
        assert info[w]["operators"][W._token]["restores"] == 1
    # the same operator embedded in every task: the per-process cache hands out one object
    # (count the hits of these 12 tasks only: the calls above may have left a stray one)
    hits_before = sum(i["hits"] for i in info.values())
    tasks = client.map(ws.WoodburyMatrix.solve, [W] * 12, [b[:, j] for j in range(12)])
    for j, task in enumerate(tasks):
        np.testing.assert_allclose(task.result(timeout=TIMEOUT), W.solve(b[:, j]), rtol=1e-12)
    counted = on_each_worker(client, factorisations)
    info = on_each_worker(client, wsd.cache_info)
    assert sum(i["hits"] for i in info.values()) - hits_before == 12
    for w in workers(client):
        assert info[w]["operators"][W._token]["restores"] == 1
        assert counted[w] == ["A", "B", "O"]  # each block once (A only for W @ b)
        assert info[w]["operators"][W._token]["factorised"] == ["A", "B", "O"]
    del tasks
    wsd.release(W)


def apply_tasks(collection) -> list:
    graph = dict(collection.__dask_graph__())
    return [v for k, v in graph.items() if isinstance(k, tuple) and "_apply_block" in k[0]]


def test_the_graph_refers_to_the_operator_by_one_key(client):
    W = symmetric_operator()
    x = da.ones((N, 40), chunks=(N, 4))
    # a distributed client: the scattered future, the same for every call
    out = wsd.apply(W, x, "solve", client=client)
    future = wsd.scatter(W, client)
    assert future is wsd.scatter(W, client)
    assert future.key == f"SymmetricWoodburyMatrix-{dask.base.tokenize(W)}"
    tasks = apply_tasks(out)
    assert len(tasks) == 10 and all(future.key in t.dependencies for t in tasks)
    assert not any(getattr(v, "value", None) is W for v in dict(out.__dask_graph__()).values())
    wsd.release(W)
    # any other scheduler: one key of the graph holds W, every task depends on it
    out = wsd.apply(W, x, "solve")
    graph = dict(out.__dask_graph__())
    holders = [k for k, v in graph.items() if getattr(v, "value", None) is W]
    assert len(holders) == 1
    assert all(holders[0] in t.dependencies for t in apply_tasks(out))


def test_without_a_distributed_client(client):
    W = general_operator()
    b = RNG.standard_normal((N, 9))
    x = da.from_array(b, chunks=(N, 2))
    # (not the "threads" scheduler: concurrent LAPACK getrs calls crash the multithreaded
    # OpenBLAS 0.3.30 of SciPy's wheels unless OPENBLAS_NUM_THREADS=1, as Dask's nanny sets)
    with dask.config.set(scheduler="synchronous"):
        got = wsd.apply(W, x, "solve").compute()
    assert relative_error(got, W.solve(b)) < 1e-12
    with pytest.raises(ValueError, match="needs a distributed client"):
        wsd.scatter(W)


# -- sampling ------------------------------------------------------------------------------
def serial_draws(W, size, mean, seed, block_size):
    """The definition: block ``i`` of draws from the ``i``-th spawned seed."""
    blocks = -(-size // block_size)
    seeds = np.random.SeedSequence(seed).spawn(blocks)
    parts = [
        ws.rwnorm(
            min(block_size, size - i * block_size),
            mean,
            W,
            random_state=np.random.default_rng(seeds[i]),
        ).reshape(-1, W.n)
        for i in range(blocks)
    ]
    return np.concatenate(parts)


def test_sampling_does_not_depend_on_chunks_or_workers(client):
    W = symmetric_operator()
    mean = np.linspace(-1.0, 1.0, N)
    size, block = 203, 16
    expected = serial_draws(W, size, mean, 2024, block)
    for chunks in (None, 7, 64, (1, 100, 2, 100)):
        draws = wsd.sample(W, size, mean, seed=2024, block_size=block, chunks=chunks, client=client)
        assert draws.shape == (size, N)
        np.testing.assert_array_equal(result(client, draws), expected)
    one_worker = workers(client)[:1]
    draws = wsd.sample(W, size, mean, seed=2024, block_size=block, chunks=50, client=client)
    np.testing.assert_array_equal(result(client, draws, workers=one_worker), expected)
    with dask.config.set(scheduler="synchronous"):
        local = wsd.sample(W, size, mean, seed=2024, block_size=block, chunks=30).compute()
    np.testing.assert_array_equal(local, expected)
    # summaries are reduced on the workers; only they travel back
    summary = result(client, draws.mean(axis=0))
    np.testing.assert_allclose(summary, expected.mean(axis=0), rtol=1e-12, atol=1e-14)
    # a different seed, different draws
    other = wsd.sample(W, size, mean, seed=2025, block_size=block, client=client)
    assert not np.array_equal(result(client, other), expected)
    assert result(client, wsd.sample(W, 0, client=client)).shape == (0, N)
    wsd.release(W)


def test_sampling_argument_errors():
    W = symmetric_operator()
    with pytest.raises(TypeError, match="`seed` must be"):
        wsd.sample(W, 5, seed=np.random.default_rng(0))
    with pytest.raises(ValueError, match="`chunks` must be positive sizes adding up to 5"):
        wsd.sample(W, 5, seed=0, chunks=(2, 2))
    with pytest.raises(ValueError, match="`block_size` must be a positive integer"):
        wsd.sample(W, 5, seed=0, block_size=0)
    with pytest.raises(ValueError, match="`size` must be a non-negative integer"):
        wsd.sample(W, -1, seed=0)
    with pytest.raises(ValueError, match="SymmetricWoodburyMatrix"):
        wsd.sample(general_operator(), 5, seed=0)
    spawned = np.random.SeedSequence(1)
    spawned.spawn(1)
    with pytest.raises(ValueError, match="already spawned"):
        wsd.sample(W, 5, seed=spawned)


def test_apply_argument_errors():
    W = general_operator()
    with pytest.raises(ValueError, match="`how` must be one of"):
        wsd.apply(W, da.ones((N, 2)), "inverse")
    with pytest.raises(ValueError, match=rf"`b` must have shape \({N},\) or \({N}, k\)"):
        wsd.apply(W, da.ones((N + 1, 2)))
    with pytest.raises(TypeError, match="`W` must be a WoodburyMatrix"):
        wsd.apply(np.eye(N), da.ones((N, 2)))


# -- grids of parameters -------------------------------------------------------------------
def build_on_grid(theta):
    """``σ² Q_AR(1)(ρ)⁻¹ + X Xᵀ``: built on the workers."""
    rho, sigma2 = theta
    return ws.WoodburyMatrix(ar1_precision(N, rho) / sigma2, np.eye(P), X=X_SHARED)


def build_with_mean(theta):
    return np.full(N, theta[1]), build_on_grid(theta)


GRID = [(rho, s2) for rho in (0.2, 0.5, 0.9) for s2 in (0.5, 1.0, 2.0)]


def test_log_densities_over_a_grid(client):
    y = RNG.standard_normal((3, N))
    logp = wsd.logpdf_grid(build_on_grid, GRID, y, batch_size=2)
    assert logp.shape == (len(GRID), 3)
    got = result(client, logp)
    expected = np.array([ws.dwnorm(y, None, build_on_grid(t), log=True) for t in GRID])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    one = result(client, wsd.logpdf_grid(build_with_mean, GRID, y[0]))
    expected = [ws.dwnorm(y[0], *build_with_mean(t), log=True) for t in GRID]
    np.testing.assert_allclose(one, expected, rtol=1e-12)


def test_any_function_over_a_grid(client):
    y = RNG.standard_normal(N)
    logdets = result(client, wsd.map_grid(build_on_grid, GRID, ws.WoodburyMatrix.logdet))
    np.testing.assert_allclose(logdets, [build_on_grid(t).logdet() for t in GRID], rtol=1e-12)
    solves = result(client, wsd.map_grid(build_on_grid, GRID, ws.WoodburyMatrix.solve, y))
    for got, theta in zip(solves, GRID, strict=True):
        assert relative_error(got, build_on_grid(theta).solve(y)) < 1e-12


# -- the example ---------------------------------------------------------------------------
def test_the_example_runs_quick(client, tmp_path, capsys):
    path = Path(__file__).resolve().parent.parent / "examples" / "dask_scaling.py"
    spec = importlib.util.spec_from_file_location("_example_dask_scaling", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    summary = module.main(quick=True, outdir=tmp_path, client=client)
    assert capsys.readouterr().out.strip()
    assert summary["solve_error"] < 1e-10
    assert summary["samples_identical"]
    assert summary["grid_error"] < 1e-10
    assert summary["pickle_bytes"] <= summary["operator_bytes"] + 4096


def test_pickled_operators_are_what_the_workers_get(client):
    W = symmetric_operator()
    W.solve(np.ones(N))
    data = pickle.dumps(W)
    assert len(data) <= W.nbytes + 4096
    back = client.submit(pickle.loads, data, pure=False).result(timeout=TIMEOUT)
    assert back._token == W._token  # restored on a worker, and sent back by value
