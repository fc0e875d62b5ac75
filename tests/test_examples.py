"""Run the statistics examples in quick mode and check their figures and numbers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

CASES = {
    "regression": ["regression.png"],
    "ar1_noise": ["ar1_noise_sample.png", "ar1_noise_profile.png"],
    "several_terms": ["several_terms.png"],
    "scipy_interop": ["scipy_interop.png"],
    "mauna_loa": ["mauna_loa.png"],
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
    result = _load(name).main(quick=True, outdir=tmp_path)
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
    elif name == "ar1_noise":  # the gradient fit's ρ within a grid step (0.19/7) of the grid's
        assert abs(result["rho_fit"] - result["rho_hat"]) <= 0.19 / 7
        assert 0 < result["rho_se"] < 0.1
    elif name == "mauna_loa":
        assert result["loglik"] == pytest.approx(result["dense_loglik"], rel=1e-10)
        assert result["posterior_agreement"] < 1e-10
        assert result["n_obs"] < result["n_weeks"]
        assert 0 < result["rho"] < 1 and result["tau"] > 0 and result["sigma2"] > 0
        assert all(0 < se < float("inf") for se in result["stderr"])


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
