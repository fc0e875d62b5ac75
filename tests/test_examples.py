"""Run the statistics examples in quick mode and check their figures and numbers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

CASES = {
    "regression": ["regression.png"],
    "ar1_noise": ["ar1_noise_sample.png", "ar1_noise_profile.png"],
    "several_terms": ["several_terms.png"],
    "scipy_interop": ["scipy_interop.png"],
    "mauna_loa": ["mauna_loa.png"],
    "pbmc_pathways": ["pbmc_pathways_mhc2.png", "pbmc_pathways_edges.png"],
}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs_and_writes_figures(name, tmp_path, capsys):
    if name == "mauna_loa":
        pytest.importorskip("statsmodels", reason="the Mauna Loa example needs statsmodels")
    module = _load(name)
    if name == "pbmc_pathways" and module.dataset_path() is None:
        pytest.skip("the PBMC example needs scanpy's data file and anndata (the examples extra)")
    result = module.main(quick=True, outdir=tmp_path)
    for figure in CASES[name]:
        path = tmp_path / figure
        assert path.exists() and path.stat().st_size > 1000, figure
    assert capsys.readouterr().out.strip()
    if name == "regression":
        assert result["logpdf"] == pytest.approx(result["logpdf_direct"], rel=1e-10)
        assert result["operator_bytes"] < result["dense_bytes"]
    elif name == "several_terms":
        assert result["solve_error"] < 1e-9
        assert result["logdet_error"] < 1e-8
        assert result["density_error"] < 1e-8
    elif name == "scipy_interop":
        assert result["cg_iterations_exact"] <= 2 and result["minres_iterations_exact"] <= 2
        assert result["gmres_iterations_exact"] <= 2
        assert result["cg_iterations_neighbour"] < result["cg_iterations_none"] / 4
        assert result["logpdf_rel_diff_woodbury"] < 1e-12
        assert result["logpdf_rel_diff_dense"] < 1e-11
        assert abs(result["maha_mean_over_n"] - 1) < 0.01
    elif name == "mauna_loa":
        assert result["loglik"] == pytest.approx(result["dense_loglik"], rel=1e-10)
        assert result["posterior_agreement"] < 1e-10
        assert result["n_obs"] < result["n_weeks"]
        assert 0 < result["rho"] < 1 and result["tau"] > 0 and result["sigma2"] > 0
    elif name == "pbmc_pathways":
        assert result["n_genes"] > result["n_cells"]  # p > n: S alone is singular
        assert 0 < result["a"] < 1
        assert result["a_error"] <= result["a_tolerance"]
        for check in result["checks"].values():  # the example asserts these too
            assert check["error"] <= check["tolerance"] < 1e-9
            assert check["rho_error"] <= check["rho_tolerance"] < 1e-9
        assert len(result["pathway"]) == 10  # all ten MHC class II genes are in the data
        assert result["n_edges_after"] > result["n_edges_before"]
        mhc = set(result["pathway"])
        assert all(set(pair) <= mhc for pair in result["gained"] if set(pair) & mhc)
        assert sum(set(pair) <= mhc for pair in result["gained"]) >= 10
        assert set(result["top_changes"][0]) <= mhc
        # the invariant chain CD74 loses its direct links once the program explains them
        assert all("CD74" in pair for pair in result["cross_changes"][:5])


def test_pbmc_pathways_without_the_data(tmp_path, capsys, monkeypatch):
    module = _load("pbmc_pathways")
    monkeypatch.setattr(module, "DATA_FILE", "scanpy/datasets/no-such-file.h5ad")
    assert module.dataset_path() is None
    assert module.main(quick=True, outdir=tmp_path) == {}
    assert "pbmc68k_reduced data file (and anndata to read it) are not installed" in (
        capsys.readouterr().out
    )
    assert not list(tmp_path.glob("*.png"))


def test_pbmc_shrinkage_against_scikit_learn_and_dense():
    """The example's Gram-matrix Ledoit–Wolf and its Woodbury Σ, on synthetic p > n data."""
    sklearn_covariance = pytest.importorskip("sklearn.covariance")
    module = _load("pbmc_pathways")
    rng = np.random.default_rng(16)
    n, p = 40, 90
    expression = rng.standard_normal((n, 5)) @ rng.standard_normal((5, p))
    expression += rng.standard_normal((n, p))
    Z, keep = module.standardise(expression)
    assert keep.all()
    lw = module.ledoit_wolf(Z)
    shrunk, a_sklearn = sklearn_covariance.ledoit_wolf(Z, assume_centered=True)
    eps = np.finfo(float).eps
    # the example's tolerance for its own dense check: 4 (n + p) ε × cancellation
    tol_a = 4 * (n + p) * eps * lw["cancellation"]
    assert abs(lw["a"] - a_sklearn) <= tol_a * a_sklearn
    sigma = module.shrinkage_covariance(Z, lw["a"], lw["mu"]).toarray()
    # Σ entries are sums of n products of standardised values: error ≤ n ε max|Σ|
    assert np.abs(sigma - shrunk).max() <= n * eps * np.abs(shrunk).max()
    kappa = np.linalg.cond(shrunk)
    assert lw["lambda_max"] == pytest.approx(np.linalg.eigvalsh(Z.T @ Z / n)[-1], rel=n * eps)
    assert kappa == pytest.approx(
        (lw["a"] * lw["mu"] + (1 - lw["a"]) * lw["lambda_max"]) / (lw["a"] * lw["mu"]),
        rel=p * eps * kappa,
    )


def test_mauna_loa_without_statsmodels(tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_statsmodels(name, *args, **kwargs):
        if name.split(".")[0] == "statsmodels":
            raise ImportError("No module named 'statsmodels'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_statsmodels)
    assert _load("mauna_loa").main(quick=True, outdir=tmp_path) == {}
    assert "statsmodels is not installed" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.png"))
