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
}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs_and_writes_figures(name, tmp_path, capsys):
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
