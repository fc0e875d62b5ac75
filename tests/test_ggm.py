"""Gene-network tools of ``woodbury_sparse.ggm`` against dense NumPy references."""

from __future__ import annotations

import importlib.util
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.linalg import aslinearoperator

import woodbury_sparse as ws
from conftest import dense, rel_err, tol
from woodbury_sparse import ggm
from woodbury_sparse.testing import grid_precision

N, D = 60, 4
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def reference_rho(theta: np.ndarray) -> np.ndarray:
    """The notebook's formula."""
    d = np.sqrt(np.diag(theta))
    rho = -theta / np.outer(d, d)
    np.fill_diagonal(rho, 1.0)
    return rho


def factor_model_precision(rng) -> np.ndarray:
    loadings = 0.1 * rng.standard_normal((N, 10))
    sigma = loadings @ loadings.T + np.diag(rng.uniform(0.01, 0.05, N))
    return np.linalg.inv(sigma)


@pytest.fixture(params=["dense_factor_model", "sparse_grid", "diagonal"])
def problem(request, rng):
    theta = {
        "dense_factor_model": lambda: factor_model_precision(rng),
        "sparse_grid": lambda: grid_precision(6, kappa=0.7, k=10),
        "diagonal": lambda: sparse.diags_array(rng.uniform(1.0, 2.0, N), format="csc"),
    }[request.param]()
    X = 0.3 * rng.standard_normal((N, D))
    updated = np.linalg.inv(np.linalg.inv(dense(theta)) + X @ X.T)
    return theta, X, updated


def genes() -> list[str]:
    return [f"G{i:03d}" for i in range(N)]


# -- precision ---------------------------------------------------------------------------
def test_updated_precision_lazy_and_dense(problem):
    theta, X, ref = problem
    P = ggm.updated_precision(theta, X)
    assert isinstance(P, ws.WoodburyInverse)
    t = tol(ref, 10.0, dense(theta))
    assert rel_err(P @ np.eye(N), ref) <= t
    assert rel_err(ggm.updated_precision_dense(theta, X), ref) <= t


def test_updated_precision_with_pathway_precision(rng):
    theta = grid_precision(6, k=10)
    X = rng.standard_normal((N, 2))
    B = np.array([[2.0, 0.5], [0.5, 1.0]])
    ref = np.linalg.inv(np.linalg.inv(theta.toarray()) + X @ np.linalg.solve(B, X.T))
    assert rel_err(ggm.updated_precision_dense(theta, X, B), ref) <= tol(ref)


def test_updated_precision_dense_is_never_an_inversion(problem, monkeypatch):
    theta, X, ref = problem

    def forbidden(*args, **kwargs):
        raise AssertionError("an N×N inversion was attempted")

    monkeypatch.setattr(np.linalg, "inv", forbidden)
    assert rel_err(ggm.updated_precision_dense(theta, X), ref) <= tol(ref, 10.0, dense(theta))


def test_add_pathways_one_at_a_time(problem):
    theta, X, ref = problem
    P = ggm.updated_precision(theta, X[:, :0])
    for k in range(D):
        P = ggm.add_pathways(P, X[:, k : k + 1])
        ggm.precision_diagonal(P)  # caches the capacitance factor, extended next time
    assert P.W.p == D
    assert rel_err(P @ np.eye(N), ref) <= tol(ref, 10.0, dense(theta))


# -- partial correlations and entries ------------------------------------------------------
def test_partial_correlations_every_kind(problem):
    theta, X, ref = problem
    t = tol(ref, 10.0, dense(theta))
    rho_theta = ggm.partial_correlations(theta)
    if sparse.issparse(theta):
        assert sparse.issparse(rho_theta)
        assert np.array_equal(rho_theta.toarray() != 0, theta.toarray() != 0)
    assert np.abs(dense(rho_theta) - reference_rho(dense(theta))).max() <= 1e-14
    lazy = ggm.partial_correlations(ggm.updated_precision(theta, X))
    assert np.abs(lazy - reference_rho(ref)).max() <= t
    assert np.array_equal(np.diag(lazy), np.ones(N))
    generic = ggm.partial_correlations(aslinearoperator(ref))
    assert np.abs(generic - reference_rho(ref)).max() <= 1e-13


def test_precision_diagonal(problem):
    theta, X, ref = problem
    t = tol(ref, 10.0, dense(theta))
    assert rel_err(ggm.precision_diagonal(ggm.updated_precision(theta, X)), np.diag(ref)) <= t
    assert np.array_equal(ggm.precision_diagonal(theta), np.diag(dense(theta)))
    assert rel_err(ggm.precision_diagonal(aslinearoperator(ref)), np.diag(ref)) <= 1e-15


def test_entries_for_gene_pairs(problem, rng):
    theta, X, ref = problem
    P = ggm.updated_precision(theta, X)
    pairs = rng.integers(0, N, size=(25, 2))
    pairs[:3, 1] = pairs[:3, 0]  # some diagonal entries
    t = tol(ref, 10.0, dense(theta))
    i, j = pairs.T
    for prec, expected in [(P, ref), (theta, dense(theta)), (aslinearoperator(ref), ref)]:
        got = ggm.precision_entries(prec, pairs)
        assert np.abs(got - expected[i, j]).max() <= t * np.abs(expected).max()
        rho = ggm.partial_correlation_entries(prec, pairs)
        assert np.abs(rho - reference_rho(expected)[i, j]).max() <= t
    names = np.array(genes())[pairs].tolist()
    by_name = ggm.partial_correlation_entries(P, names, genes=genes())
    assert np.array_equal(by_name, ggm.partial_correlation_entries(P, pairs))


# -- networks ------------------------------------------------------------------------------
def dense_edges(rho: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    i, j = np.nonzero(np.triu(np.abs(rho) > threshold, k=1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


@pytest.mark.parametrize("block_size", [None, 1, 7, N])
def test_strong_edges_equal_the_dense_computation(problem, block_size):
    theta, X, ref = problem
    P = ggm.updated_precision(theta, X)
    rho = reference_rho(ref)
    threshold = float(np.quantile(np.abs(rho[np.triu_indices(N, 1)]), 0.9))
    edges = ggm.strong_edges(P, threshold, genes=genes(), block_size=block_size)
    assert set(zip(edges.i.tolist(), edges.j.tolist(), strict=True)) == dense_edges(rho, threshold)
    assert np.all(edges.i < edges.j)
    assert np.allclose(edges.rho, rho[edges.i, edges.j], atol=1e-12)
    assert edges.names()[0] == (f"G{edges.i[0]:03d}", f"G{edges.j[0]:03d}")
    before = ggm.strong_edges(theta, 0.1, block_size=block_size)
    assert len(before) == len(dense_edges(reference_rho(dense(theta)), 0.1))


def test_strong_edges_without_names_and_none_found():
    edges = ggm.strong_edges(np.eye(4), 0.5)
    assert len(edges) == 0 and edges.names() == []
    edges = ggm.strong_edges(np.array([[1.0, -0.9], [-0.9, 1.0]]), 0.5)
    assert edges.names() == [("gene 0", "gene 1")]


def test_network_summary_before_and_after(problem):
    theta, X, ref = problem
    P = ggm.updated_precision(theta, X)
    for prec, theta_dense in [(theta, dense(theta)), (P, ref)]:
        upper = np.abs(reference_rho(theta_dense)[np.triu_indices(N, 1)])
        summary = ggm.network_summary(prec, 0.05, block_size=11)
        assert summary.n_edges == np.count_nonzero(upper > 0.05)
        assert summary.mean_abs == pytest.approx(upper.mean(), rel=1e-9, abs=1e-15)
        assert summary.max_abs == pytest.approx(upper.max(), rel=1e-9, abs=1e-15)
        assert summary.density == summary.n_edges / (N * (N - 1) / 2)
        assert summary.as_dict()["n_genes"] == N
    table = ggm.summary_table(ggm.network_summary(theta, 0.05), ggm.network_summary(P, 0.05))
    assert "Strong edges (|ρ| > 0.05)" in table and len(table.splitlines()) == 6


@pytest.mark.parametrize("block_size", [None, 5])
def test_top_changed_edges_equal_the_dense_computation(problem, block_size):
    theta, X, ref = problem
    P = ggm.updated_precision(theta, X)
    before, after = reference_rho(dense(theta)), reference_rho(ref)
    iu = np.triu_indices(N, 1)
    change = (np.abs(after) - np.abs(before))[iu]
    order = np.argsort(-np.abs(change))[:10]
    top = ggm.top_changed_edges(theta, P, k=10, genes=genes(), block_size=block_size)
    assert len(top) == 10
    assert list(zip(top.i, top.j, strict=True)) == list(
        zip(iu[0][order], iu[1][order], strict=True)
    )
    assert np.allclose(top.change, change[order], atol=1e-12)
    assert np.allclose(top.before, before[top.i, top.j], atol=1e-12)
    assert np.allclose(top.after, after[top.i, top.j], atol=1e-12)
    assert top.names()[0] == (genes()[top.i[0]], genes()[top.j[0]])


def test_streaming_memory_is_bounded(rng):
    """20 000 genes (a dense precision: 3.2 GB) with a diagonal base, in 64-row blocks."""
    n = 20_000
    theta = sparse.diags_array(rng.uniform(1.0, 2.0, n), format="csc")
    x = np.zeros((n, 1))
    x[:40, 0] = 1.0  # one pathway of 40 genes: 780 edges among them
    P = ggm.updated_precision(theta, x)
    tracemalloc.start()
    try:
        edges = ggm.strong_edges(P, 0.01, block_size=64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 64 * n * 8  # a few blocks of 64 rows; the N×N matrix is 3.2 GB
    assert len(edges) == 40 * 39 // 2
    assert np.all(edges.j < 40)
    ref = np.linalg.inv(np.diag(1 / theta.diagonal()[:40]) + np.ones((40, 40)))
    assert np.allclose(edges.rho, reference_rho(ref)[edges.i, edges.j], atol=1e-12)


# -- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: ggm.partial_correlations(-np.eye(3)), ValueError, "positive diagonal"),
        (lambda: ggm.partial_correlations(np.ones((2, 3))), ValueError, "must be a square"),
        (lambda: ggm.partial_correlations(np.array([["a"]])), TypeError, "real numbers"),
        (lambda: ggm.strong_edges(np.eye(3), 1.0), ValueError, r"`threshold` must be in \[0, 1\)"),
        (lambda: ggm.network_summary(np.eye(3), -0.1), ValueError, "`threshold` must be"),
        (lambda: ggm.strong_edges(np.eye(3), 0.1, genes=["a"]), ValueError, "`genes` has 1"),
        (lambda: ggm.strong_edges(np.eye(3), 0.1, block_size=0), ValueError, "`block_size`"),
        (lambda: ggm.precision_entries(np.eye(3), [0, 1]), ValueError, r"shape \(m, 2\)"),
        (lambda: ggm.precision_entries(np.eye(3), [[0, 3]]), ValueError, "outside 0..2"),
        (lambda: ggm.precision_entries(np.eye(3), [[0.5, 1]]), TypeError, "integer indices"),
        (
            lambda: ggm.precision_entries(np.eye(2), [["a", "z"]], genes=["a", "b"]),
            ValueError,
            "unknown gene 'z'",
        ),
        (lambda: ggm.top_changed_edges(np.eye(3), np.eye(3), k=0), ValueError, "`k` must be"),
        (lambda: ggm.top_changed_edges(np.eye(3), np.eye(4)), ValueError, "`before` is 3×3"),
        (lambda: ggm.add_pathways(np.eye(3), np.ones((3, 1))), TypeError, "WoodburyInverse"),
        (lambda: ggm.updated_precision(np.eye(3), np.ones(3)), ValueError, "`X` must be 2-D"),
        (
            lambda: ggm.add_pathways(ggm.updated_precision(np.eye(3), np.ones((3, 1))), np.ones(3)),
            ValueError,
            "`X` must be 2-D",
        ),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- the example ---------------------------------------------------------------------------
def test_gene_network_example_quick(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "_example_gene_network", EXAMPLES / "gene_network.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(quick=True, outdir=tmp_path)
    for figure in ("gene_network_edges.png", "gene_network_scaling.png"):
        path = tmp_path / figure
        assert path.exists() and path.stat().st_size > 1000, figure
    assert result["max_diff"] < 1e-9
    assert result["sequential_max_diff"] < 1e-9
    assert len(result["speedups"]) == len(result["sizes"])
    assert "verification against direct inversion" in capsys.readouterr().out
