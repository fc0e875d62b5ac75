"""Scaling out on Dask: many right-hand sides, many draws, a grid of log likelihoods.

The covariance of an AR(1) process observed with a regression effect,
``W(ρ, σ²) = σ² Q(ρ)⁻¹ + X Xᵀ`` (``Q`` the tridiagonal AR(1) precision, ``X`` ``n×p``),
on a local cluster of two worker processes (127.0.0.1 only, no dashboard):

1. the operator pickles without its factorisations, at about the size of its inputs;
2. ``W⁻¹ B`` for many right-hand sides, one column block per task, the operator shipped
   once to each worker and factorised there once;
3. draws of ``N(0, W)`` made on the workers from spawned seeds: the same draws for any
   chunking, and only the summaries travel back;
4. the log likelihood of simulated data over a ``(ρ, σ²)`` grid, each operator built on a
   worker; the figure ``dask_scaling_grid.png`` shows the surface.

Run with ``python examples/dask_scaling.py`` (``--quick`` for small sizes). Needs the
``dask`` extra (``pip install 'woodbury-sparse[dask]'``); without it, prints a message
and does nothing.
"""

from __future__ import annotations

import functools
import importlib.util
import pickle
import sys
import time
from pathlib import Path

import numpy as np

import woodbury_sparse as ws
from woodbury_sparse.testing import ar1_precision, relative_error

OUTPUT = Path(__file__).resolve().parent / "output"
P = 10


def covariance(X: np.ndarray, theta) -> ws.SymmetricWoodburyMatrix:
    """``σ² Q(ρ)⁻¹ + X Xᵀ`` for ``θ = (ρ, σ²)``.

    Shipped to the workers as ``functools.partial(covariance, X)``: the data travel inside
    the callable (once per worker), never through module globals, which a worker
    importing this file would see empty.
    """
    rho, sigma2 = theta
    return ws.WoodburyMatrix(ar1_precision(X.shape[0], rho) / sigma2, np.eye(X.shape[1]), X=X)


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _cluster():
    from distributed import Client, LocalCluster

    # Dask's nanny starts every worker with OMP/OPENBLAS/MKL_NUM_THREADS=1 (its
    # `distributed.nanny.pre-spawn-environ`): one BLAS/CHOLMOD thread per worker process.
    cluster = LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        # No dashboard; the scheduler's small HTTP server (health checks) on any free
        # loopback port instead of 8787, which another cluster may hold.
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )
    return cluster, Client(cluster, set_as_default=False)


def main(quick: bool = False, outdir: Path = OUTPUT, client=None) -> dict:
    """Run the example; ``client`` reuses a running ``distributed.Client``."""
    if importlib.util.find_spec("dask") is None or importlib.util.find_spec("distributed") is None:
        print("skipped: Dask is not installed (pip install 'woodbury-sparse[dask]')")
        return {}
    import cloudpickle
    import dask.array as da

    import woodbury_sparse.dask as wsd

    module = sys.modules.get(__name__)
    if module is not None and __name__ != "__main__":
        # Workers that cannot import this file get its functions by value.
        cloudpickle.register_pickle_by_value(module)

    n = 2_000 if quick else 20_000
    k = 16 if quick else 128
    draws = 512 if quick else 4_096
    rhos = np.linspace(0.5, 0.95, 4 if quick else 10)
    sigma2s = np.linspace(0.5, 2.0, 4 if quick else 10)
    rng = np.random.default_rng(11)
    X = rng.standard_normal((n, P)) / np.sqrt(P)
    build = functools.partial(covariance, X)
    W = build((0.8, 1.0))
    y = ws.rwnorm(1, None, W, random_state=rng)

    own = client is None
    if own:
        cluster, client = _cluster()
    summary: dict = {}
    try:
        client.wait_for_workers(2, timeout=60)
        # 1. the pickle: the inputs and a token, never a factorisation
        before = len(pickle.dumps(W))
        W.solve(y)  # factorises O (and nothing else)
        summary["pickle_bytes"] = len(pickle.dumps(W))
        summary["operator_bytes"] = W.nbytes
        print(f"{W!r}")
        print(
            f"  pickle: {summary['pickle_bytes']:,} bytes (before factorising: {before:,}); "
            f"inputs (W.nbytes): {W.nbytes:,} bytes"
        )

        # 2. W⁻¹ B, one column block per task
        # right-hand sides generated on the workers (a big array would bloat the graph)
        x = da.random.default_rng(3).standard_normal((n, k), chunks=(n, max(1, k // 8)))
        B = client.compute(x).result(timeout=600)
        out = wsd.apply(W, x, "solve", client=client)
        got, seconds = _timed(lambda: client.compute(out).result(timeout=600))
        expected, serial_seconds = _timed(lambda: W.solve(B))
        summary["solve_error"] = relative_error(got, expected)
        info = client.run(wsd.cache_info)
        restores = [i["operators"][W._token]["restores"] for i in info.values()]
        print(
            f"W⁻¹ B for {k} right-hand sides in {x.numblocks[1]} tasks: {seconds:.2f} s on "
            f"the cluster, {serial_seconds:.2f} s serially; relative difference "
            f"{summary['solve_error']:.1e}; restores per worker {restores}"
        )

        # 3. draws on the workers, identical whatever the chunking
        first = wsd.sample(W, draws, seed=5, block_size=128, chunks=256, client=client)
        second = wsd.sample(W, draws, seed=5, block_size=128, chunks=1000, client=client)
        diff = client.compute(abs(first - second).max()).result(timeout=600)
        summary["samples_identical"] = bool(diff == 0.0)
        (mean, var), seconds = _timed(
            lambda: client.compute([first.mean(axis=0), first.var(axis=0)], sync=True)
        )
        var_ref = 1.0 / (1.0 - 0.8**2) + np.einsum("ij,ij->i", X, X)
        print(
            f"{draws} draws in {first.numblocks[0]} tasks: {seconds:.2f} s; identical with "
            f"other chunks: {summary['samples_identical']}; |mean| ≤ {np.abs(mean).max():.3f}, "
            f"var / var(W) in [{(var / var_ref).min():.2f}, {(var / var_ref).max():.2f}]"
        )

        # 4. log likelihoods over a grid, each operator built on a worker
        grid = [(r, s) for r in rhos for s in sigma2s]
        logp = wsd.logpdf_grid(build, grid, y)
        values, seconds = _timed(lambda: client.compute(logp).result(timeout=600))
        check = [0, len(grid) // 2, len(grid) - 1]
        serial = np.array([ws.dwnorm(y, None, build(grid[i]), log=True) for i in check])
        summary["grid_error"] = float(np.max(np.abs(values[check] - serial) / np.abs(serial)))
        best = grid[int(np.argmax(values))]
        print(
            f"log likelihood at {len(grid)} grid points: {seconds:.2f} s; maximum at "
            f"ρ = {best[0]:.2f}, σ² = {best[1]:.2f} (truth 0.80, 1.00); "
            f"relative difference from serial {summary['grid_error']:.1e}"
        )
        _figure(values.reshape(len(rhos), len(sigma2s)), rhos, sigma2s, outdir)
    finally:
        if own:
            client.close()
            cluster.close()
        if module is not None and __name__ != "__main__":
            cloudpickle.unregister_pickle_by_value(module)
    return summary


def _figure(values, rhos, sigma2s, outdir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 4))
    image = ax.pcolormesh(sigma2s, rhos, values - values.max(), shading="nearest")
    fig.colorbar(image, ax=ax, label="log likelihood − maximum")
    ax.set_xlabel("σ²")
    ax.set_ylabel("ρ")
    ax.set_title("log likelihood over the grid (computed on Dask)")
    fig.tight_layout()
    fig.savefig(outdir / "dask_scaling_grid.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    from _cli import run_example

    run_example(main, __doc__)
