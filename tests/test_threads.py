"""Many threads on one shared, cold operator: serial results, each factorisation built once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse import testing

THREADS = 8
ROUNDS = 4


def _sparse_cholmod(rng):
    """Sparse SPD blocks: CHOLMOD (SuperLU ``LDLᵀ`` under the SciPy fallback)."""
    n = 200
    return ws.WoodburyMatrix(
        testing.grid_precision(10, 0.5, 20), testing.random_spd(n, rng, density=0.01)
    )


def _superlu(rng):
    """Sparse general blocks: SuperLU for ``A`` and ``B`` (and a dense LU of ``O``)."""
    n = 150
    A = testing.random_sparse(n, n, 0.02, rng, diagonal=4.0)
    B = testing.random_sparse(20, 20, 0.1, rng, diagonal=3.0)
    U = testing.random_sparse(n, 20, 0.1, rng)
    V = testing.random_sparse(20, n, 0.1, rng)
    return ws.WoodburyMatrix(A, B, U=U, V=V)


def _work(W, b, B):
    out = [W.solve(b), W.solve(B), W @ b, W @ B, W.slogdet(), W.T.solve(b), W.inv() @ b]
    if isinstance(W, ws.SymmetricWoodburyMatrix):
        out.append(ws.dwnorm(B.T, np.zeros(W.n), W))
    return out


@pytest.mark.parametrize("make", [_sparse_cholmod, _superlu], ids=["sparse-symmetric", "superlu"])
def test_threads_agree_with_serial_and_factorise_once(make, count_factorisations):
    rng = np.random.default_rng(7)
    W_serial = make(np.random.default_rng(3))
    W = make(np.random.default_rng(3))  # the same operator, cold
    b = rng.standard_normal(W.n)
    B = rng.standard_normal((W.n, 3))
    expected = _work(W_serial, b, B)

    count_factorisations.clear()  # count only what the threads factorise
    barrier = threading.Barrier(THREADS)

    def worker(_):
        barrier.wait()  # all threads hit the cold caches together
        results = [_work(W, b, B) for _ in range(ROUNDS)]
        return results, (W._parts.A.factor, W._parts.B.factor, W._O.factor)

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(worker, range(THREADS)))

    for results, factors in outcomes:
        assert all(f is g for f, g in zip(factors, outcomes[0][1], strict=True))
        for result in results:
            for got, want in zip(result, expected, strict=True):
                np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    # Each block factorised exactly once (O's factor is shared with the transpose's).
    calls = count_factorisations
    assert sorted(calls) == sorted(set(calls))
    assert set(calls) <= {"A", "B", "O"}
    assert {"A", "O"} <= set(calls)


def test_threads_on_transpose_and_inverse_share_factorisations():
    W = _superlu(np.random.default_rng(11))
    b = np.linspace(-1, 1, W.n)
    barrier = threading.Barrier(THREADS)

    def worker(i):
        barrier.wait()
        op = (W, W.T, W.inv(), W.T.inv())[i % 4]
        return op @ b, id(W.T), id(W._O.factor)

    with ThreadPoolExecutor(THREADS) as pool:
        out = list(pool.map(worker, range(THREADS)))
    assert len({o[1] for o in out}) == 1 and len({o[2] for o in out}) == 1
    for i, (value, _, _) in enumerate(out):
        np.testing.assert_array_equal(value, out[i % 4][0])
    assert W.T._O.factor.T is W._O.factor or W.T._O.factor.parent is W._O.factor
    assert sparse.issparse(W.A)
