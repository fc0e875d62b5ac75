"""Run the statistics examples in quick mode and check their figures and numbers."""

from __future__ import annotations

import builtins
import importlib.util
import socket
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

CASES = {
    "regression": ["regression.png"],
    "ar1_noise": ["ar1_noise_sample.png", "ar1_noise_profile.png", "ar1_noise_posterior.png"],
    "several_terms": ["several_terms.png"],
    "scipy_interop": ["scipy_interop.png"],
    "mauna_loa": ["mauna_loa.png"],
    "pbmc_pathways": ["pbmc_pathways_mhc2.png", "pbmc_pathways_edges.png"],
    "sids_icar": ["sids_icar_maps.png", "sids_icar_fit.png"],
}

# what each example needs beyond the test dependencies (the `examples` extra)
NEEDS = {"mauna_loa": ["statsmodels"], "sids_icar": ["libpysal", "geopandas"]}

EPS = np.finfo(float).eps


@pytest.fixture
def no_network(monkeypatch):
    """The examples read data shipped inside packages: any connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"an example tried to use the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs_and_writes_figures(name, tmp_path, capsys, no_network):
    for module in NEEDS.get(name, []):
        pytest.importorskip(module, reason=f"the {name} example needs {module}")
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
    elif name == "ar1_noise":
        # posterior of the AR(1) component vs the dense (Q₁ + σ⁻² I)⁻¹: n eps κ, constant 10;
        # the swapped roles (A = σ⁻² I, B = Q₁) factorise the same O, so the same bound
        bound = 10 * 500 * EPS * result["condition_number"]
        assert result["dense_error"] < bound and result["swap_error"] < bound
        # the band's coverage of the true path (seeded; errors correlated along the series,
        # so a wide window around 0.95)
        assert 0.85 < result["coverage"] < 1.0
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
    elif name == "ar1_noise":  # the gradient fit's ρ within a grid step (0.19/7) of the grid's
        assert abs(result["rho_fit"] - result["rho_hat"]) <= 0.19 / 7
        assert 0 < result["rho_se"] < 0.1
    elif name == "mauna_loa":
        assert result["loglik"] == pytest.approx(result["dense_loglik"], rel=1e-10)
        assert result["posterior_agreement"] < 1e-10
        # posterior sd (selected inverse of O) vs the dense inverse: n eps κ(O), constant 10
        assert result["sd_agreement"] < 10 * result["n_weeks"] * EPS * result["condition_number"]
        # the band is wider where weeks are missing
        assert result["sd_missing"] > 1.5 * result["sd_observed"]
        assert result["n_obs"] < result["n_weeks"]
        assert 0 < result["rho"] < 1 and result["tau"] > 0 and result["sigma2"] > 0
        assert all(0 < se < float("inf") for se in result["stderr"])
        assert all(0 < se < float("inf") for se in result["stderr_ai"])
        # the target: the same optimum to 1e-6 in the log likelihood as the
        # derivative-free fit (L-BFGS-B with finite differences), in ≥ 5× fewer evaluations
        # (measured 10 against 100 in quick mode, 11 against 60 on the whole series)
        assert abs(result["loglik"] - result["derivative_free_loglik"]) <= 1e-6
        assert abs(result["loglik"] - result["lbfgsb_loglik"]) <= 1e-6
        assert 5 * result["evaluations"] <= result["derivative_free_evaluations"]
        assert result["evaluations"] <= result["lbfgsb_evaluations"]
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

    elif name == "sids_icar":
        n = result["n_counties"]
        assert n == 100
        # REML through the pinned Woodbury covariance vs numpy.linalg.pinv: both well
        # conditioned at n = 100 (measured 7e-15), so 100 n eps is ample
        assert result["reml_error"] < 100 * n * EPS
        # constrained posterior vs the dense kriging correction: n eps κ(O) with constant 10
        bound = 10 * (n + 1) * EPS * result["condition_number"]
        assert result["mean_error"] < bound and result["sd_error"] < bound
        # the vague prior on μ (s = 10) is within O(1/s²) of a flat one (measured 2.8e-4)
        assert result["vague_error"] < 1e-3
        # draws satisfy 1ᵀ z = 0 to round-off: the sum of n corrected unconstrained draws, each
        # within 5 sd of the mean, n eps 5 sd with constant 10
        assert result["constraint_residual"] < 10 * n * EPS * 5 * result["unconstrained_sd"]
        # seeded draws: the sample means lie within 5 standard errors of the means
        assert result["moment_error"] < 5 / np.sqrt(result["n_draws"])
        # the sd of μ + z_i from cov_entries vs the draws' sample sd: each ratio has sd about
        # 1/√(2 n_draws); 5 of those for the extremes over 100 counties
        slack = 5 / np.sqrt(2 * result["n_draws"])
        low, high = result["draw_sd_ratio"]
        assert 1 - slack < low and high < 1 + slack
        assert result["tau"] > 0 and result["sigma_v"] >= 0
        check_reml_optimum(result)


def check_reml_optimum(result):
    """fit(fixed=F) found the REML maximum: no grid point is higher, and the KKT conditions
    hold (∂ℓ/∂log τ = 0; ∂ℓ/∂σ_v² = 0 inside, ≤ 0 on the bound σ_v² = 0)."""
    assert result["fit_success"]
    assert result["reml"] >= result["grid_best"] - 1e-9
    g_tau, g_variance = result["reml_gradient"]
    # the average-information method stops at a predicted increase ½ gᵀ H⁻¹ g ≤ 1e-9: the
    # gradient on the log τ scale is then O(√(2e-9 · curvature)): measured 3e-8
    assert abs(g_tau * result["tau"]) < 1e-3
    if result["sigma_v2"] == 0.0:
        assert g_variance <= 0.0
    else:
        assert abs(g_variance) < 1e-3


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
    real_import = builtins.__import__

    def no_statsmodels(name, *args, **kwargs):
        if name.split(".")[0] == "statsmodels":
            raise ImportError("No module named 'statsmodels'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_statsmodels)
    assert _load("mauna_loa").main(quick=True, outdir=tmp_path) == {}
    assert "statsmodels is not installed" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.png"))


def test_sids_icar_without_libpysal(tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_libpysal(name, *args, **kwargs):
        if name.split(".")[0] in ("libpysal", "geopandas"):
            raise ImportError(f"No module named {name.split('.')[0]!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_libpysal)
    assert _load("sids_icar").main(quick=True, outdir=tmp_path) == {}
    assert "libpysal is not installed" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.png"))


def test_sids_icar_with_two_components(tmp_path, capsys, no_network):
    """The map cut in two at 79.5° W: one level and one sum-to-zero constraint per component,
    and the REML of the pinned covariance still equals the dense one with Q's pseudo-inverse."""
    pytest.importorskip("libpysal", reason="the sids_icar example needs libpysal")
    module = _load("sids_icar")
    counties, adjacency = module.load_sids()
    west = np.array([shape.representative_point().x < -79.5 for shape in counties.geometry])
    cut = adjacency.toarray()
    cut[np.ix_(west, ~west)] = cut[np.ix_(~west, west)] = 0.0
    module.load_sids = lambda: (counties, type(adjacency)(cut))
    result = module.main(quick=True, outdir=tmp_path)
    assert "2 connected component(s)" in capsys.readouterr().out
    n = result["n_counties"]
    assert result["reml_error"] < 100 * n * EPS  # measured 8e-16
    bound = 10 * (n + 2) * EPS * result["condition_number"]
    assert result["mean_error"] < bound and result["sd_error"] < bound
    assert result["constraint_residual"] < 10 * n * EPS * 5 * result["unconstrained_sd"]
    check_reml_optimum(result)
