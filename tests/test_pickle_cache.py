"""Pickling by value without factorisations; identity tokens; the per-process operator cache.

What a process receives is the operator's normalised inputs and its token: never a
factorisation (CHOLMOD's cannot be pickled, and would dwarf the inputs). Unpickling the
same operator again in a process returns the operator restored first, with the
factorisations it has built since: one factorisation per process per operator.
"""

from __future__ import annotations

import copy
import pickle
import pickletools
import threading

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse._cache import peek
from woodbury_sparse._operators import OPERATOR_CACHE, _restore
from woodbury_sparse.testing import ar1_precision, grid_precision

N, P = 600, 8


def symmetric_dense_x(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, P))
    return ws.WoodburyMatrix(ar1_precision(N, 0.9), 2.0 * np.eye(P), X=X)


def symmetric_sparse_x(seed: int = 0):
    X = sparse.random_array((N, P), density=0.2, rng=seed, format="csc")
    return ws.WoodburyMatrix(ar1_precision(N, 0.9), np.eye(P), X=X)


def general(seed: int = 0):
    rng = np.random.default_rng(seed)
    U, V = rng.standard_normal((N, P)), rng.standard_normal((P, N))
    return ws.WoodburyMatrix(grid_precision(20, k=N // 20), np.eye(P) * 5.0, U=U, V=V)


BUILDERS = {"symmetric_dense_x": symmetric_dense_x, "symmetric_sparse_x": symmetric_sparse_x}
BUILDERS["general"] = general


def exercise(W) -> list:
    """Every operation that factorises something; their results."""
    b = np.linspace(-1.0, 1.0, W.n)
    return [W.slogdet(), W.solve(b), W @ b, W.T @ b, W.T.solve(b)]


def strings_in(data: bytes) -> set[str]:
    """The text arguments of a pickle's opcodes (module and class names among them)."""
    return {arg for _, arg, _ in pickletools.genops(data) if isinstance(arg, str)}


# -- what the pickle holds ---------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_pickle_is_about_the_size_of_the_inputs_and_holds_no_factor(name):
    W = BUILDERS[name]()
    before = pickle.dumps(W)
    assert 0.5 * W.nbytes < len(before) <= W.nbytes + 4096
    exercise(W)
    assert "factor" in W._parts.A.__dict__ and peek(W._state, "O") is not None
    after = pickle.dumps(W)
    assert len(after) == len(before)  # the factorisations never travel
    text = " ".join(strings_in(after))
    for forbidden in ("_factor", "sksparse", "Factor", "cholmod"):
        assert forbidden not in text
    restored = pickle.loads(after)
    assert "factor" not in restored._parts.A.__dict__ and peek(restored._state, "O") is None
    for got, want in zip(exercise(restored), exercise(W), strict=True):
        np.testing.assert_array_equal(got, want)


def test_nbytes_counts_shared_storage_once():
    W = symmetric_dense_x()
    A = W._parts.A.data
    expected = A.data.nbytes + A.indices.nbytes + A.indptr.nbytes + N * P * 8
    assert W.nbytes == expected + P * 8  # B = 2 I is stored as its diagonal
    Xᵀ_view = W._parts.V.data
    assert np.shares_memory(Xᵀ_view, W._parts.U.data)


def test_symmetric_pickle_holds_x_once():
    W = symmetric_dense_x()
    A = W._parts.A.data
    A_bytes, X_bytes = A.data.nbytes + A.indices.nbytes + A.indptr.nbytes, N * P * 8
    assert len(pickle.dumps(W)) < A_bytes + 1.5 * X_bytes  # not X and Xᵀ
    restored = pickle.loads(pickle.dumps(W))
    assert np.shares_memory(restored._parts.V.data, restored._parts.U.data)


# -- identity tokens -----------------------------------------------------------------------
def test_tokens_identify_operators():
    W, W2 = general(), general()
    assert W._token != W2._token  # equal inputs, different operators
    assert W.T._token == W._token + ".T"
    assert W.T.T is W
    S = symmetric_dense_x()
    assert S.T is S
    restored = pickle.loads(pickle.dumps(W))
    assert restored._token == W._token
    assert pickle.loads(pickle.dumps(restored)) is restored  # the token survives relaying
    # operators derived by the update functions are new operators
    assert S.add_terms(np.eye(1), X=np.ones((N, 1)))._token != S._token
    assert S.with_blocks(B=3.0 * np.eye(P))._token != S._token


def test_dask_tokenize_uses_the_token():
    W = general()
    assert W.__dask_tokenize__() == ("woodbury_sparse", "WoodburyMatrix", W._token)
    assert pickle.loads(pickle.dumps(W)).__dask_tokenize__() == W.__dask_tokenize__()


# -- the per-process cache -----------------------------------------------------------------
def test_unpickling_twice_returns_the_same_warm_operator(count_factorisations):
    W = symmetric_dense_x()
    exercise(W)
    data = pickle.dumps(W)
    count_factorisations.clear()
    first = pickle.loads(data)
    assert first is not W  # the process's own operator is never handed out
    expected = exercise(W)
    got = exercise(first)
    factorised = sorted(count_factorisations)
    assert factorised == ["A", "B", "O"]
    second = pickle.loads(data)
    assert second is first
    for g, e in zip(exercise(second), expected, strict=True):
        np.testing.assert_array_equal(g, e)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)
    assert sorted(count_factorisations) == factorised  # nothing factorised again
    info = OPERATOR_CACHE.info()["operators"][W._token]
    assert info == {
        "class": "SymmetricWoodburyMatrix",
        "restores": 1,
        "factorised": ["A", "B", "O"],
    }


def test_transpose_restores_through_its_parent(count_factorisations):
    W = general()
    data = pickle.dumps(W.T)
    WT = pickle.loads(data)
    assert WT is pickle.loads(data)
    assert WT is pickle.loads(pickle.dumps(W)).T
    b = np.ones(W.n)
    np.testing.assert_array_equal(WT.solve(b), W.T.solve(b))
    np.testing.assert_array_equal(WT @ b, W.T @ b)
    counted = len(count_factorisations)
    pickle.loads(pickle.dumps(W)).solve(b)  # the parent's capacitance factor is shared
    assert len(count_factorisations) == counted


def test_inverse_pickles_through_the_cache():
    W = symmetric_sparse_x()
    inv = pickle.loads(pickle.dumps(W.inv()))
    assert inv.W is pickle.loads(pickle.dumps(W))
    b = np.ones(W.n)
    np.testing.assert_array_equal(inv @ b, W.inv() @ b)


def test_the_cache_is_bounded_least_recently_used_first(monkeypatch):
    monkeypatch.setattr(OPERATOR_CACHE, "maxsize", 2)
    ops = [symmetric_dense_x(seed) for seed in range(3)]
    data = [pickle.dumps(W) for W in ops]
    first = [pickle.loads(d) for d in data[:2]]
    assert pickle.loads(data[0]) is first[0]  # 0 is now the most recently used
    pickle.loads(data[2])  # evicts 1
    tokens = set(OPERATOR_CACHE.info()["operators"])
    assert tokens == {ops[0]._token, ops[2]._token}
    again = pickle.loads(data[1])
    assert again is not first[1]
    assert OPERATOR_CACHE.info()["operators"][ops[1]._token]["restores"] == 2


def test_concurrent_unpickling_gives_one_operator():
    data = pickle.dumps(symmetric_sparse_x())
    results, barrier = [], threading.Barrier(8)

    def load():
        barrier.wait()
        results.append(pickle.loads(data))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 8 and all(r is results[0] for r in results)


def test_copies_are_equivalent_operators():
    W = general()
    b = np.arange(W.n, dtype=float)
    for other in (copy.copy(W), copy.deepcopy(W)):
        assert other._token == W._token
        np.testing.assert_array_equal(other.solve(b), W.solve(b))


def test_pickles_without_a_token_still_restore():
    W = symmetric_dense_x()
    old_style = _restore("SymmetricWoodburyMatrix", W._parts)
    assert old_style is not _restore("SymmetricWoodburyMatrix", W._parts)
    b = np.ones(W.n)
    np.testing.assert_array_equal(old_style.solve(b), W.solve(b))
