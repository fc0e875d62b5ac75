"""Case 7: GPyTorch's ``linear_operator`` on case 2 (σ² I + X B⁻¹ Xᵀ), in a separate venv.

The peer venv (default ``~/.cache/woodbury_sparse/bench-peer``, or ``$WOODBURY_BENCH_PEER``)
needs ``torch`` and ``linear_operator``; the case is skipped, saying why, when it is
missing. The peer runs in a subprocess (its own interpreter), so its timings and ours
alternate per size instead of per repeat.
"""
# ruff: noqa: B023  (the closures are called within the loop iteration that made them)

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import woodbury_sparse as ws

from . import case_regression as reg
from ._harness import CaseResult, fmt_ms, fmt_ratio, progress
from ._harness import legacy_interleaved as interleaved

NAME = "peer"
TITLE = "Python peer: GPyTorch linear_operator on the regression case"
PEER = Path(
    os.environ.get("WOODBURY_BENCH_PEER", Path.home() / ".cache" / "woodbury_sparse" / "bench-peer")
)


def _peer_python() -> tuple[Path | None, str]:
    py = PEER / "bin" / "python"
    if not py.exists():
        return None, f"no peer environment at {PEER} (see benchmarks/README in REPORT.md)"
    probe = subprocess.run(
        [str(py), "-c", "import torch, linear_operator; print(linear_operator.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return None, f"torch/linear_operator do not import in {PEER}: {probe.stderr[-200:]}"
    return py, probe.stdout.strip()


def run(quick: bool = False) -> CaseResult:
    res = CaseResult(NAME, TITLE)
    py, version = _peer_python()
    if py is None:
        res.notes.append(f"skipped: {version}")
        return res
    script = Path(__file__).with_name("_peer_linear_operator.py")
    sizes = [2000] if quick else [2000, 20_000, 200_000]
    rows, raw = [], {}
    for n in sizes:
        reps = 1 if quick else 5
        progress(f"  n = {n:,}: linear_operator ×{reps}")
        out = subprocess.run(
            [str(py), str(script), str(n), str(reg.P), str(reg.SIGMA2), str(reg.TAU), str(reps)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            res.notes.append(f"n = {n}: peer failed: {out.stderr.strip()[-300:]}")
            continue
        peer = json.loads(out.stdout.strip().splitlines()[-1])
        X, y = reg.problem(n)
        W = reg.build(X)
        ours_val = ws.dwnorm(y, covariance=W, log=True)
        t = interleaved(
            {
                "first": lambda: ws.dwnorm(y, covariance=reg.build(X), log=True),
                "repeated": lambda: ws.dwnorm(y, covariance=W, log=True),
            },
            reps,
        )
        raw[n] = {"ours": t, "peer": peer}
        rows.append(
            {
                "n": f"{n:,}",
                "ours first (ms)": fmt_ms(t["first"]),
                "linear_operator first (ms)": fmt_ms(peer["first"]),
                "ours repeated (ms)": fmt_ms(t["repeated"]),
                "linear_operator repeated (ms)": fmt_ms(peer["repeated"]),
                "speed-up first": fmt_ratio(peer["first"] / t["first"]),
                "speed-up repeated": fmt_ratio(peer["repeated"] / t["repeated"]),
                "log density rel. diff.": f"{abs(peer['value'] - ours_val) / abs(ours_val):.1e}",
            }
        )
    if rows:
        res.table(
            "`LowRankRootLinearOperator(X/√τ) + DiagLinearOperator(σ²)` → "
            "`inv_quad_logdet` (float64, 2 torch threads) vs our `dwnorm`. First: a fresh "
            "operator; repeated: the same operator.",
            list(rows[0]),
            rows,
        )
    torch_version = next(iter(raw.values()))["peer"]["torch"] if raw else "?"
    res.notes.append(f"linear_operator {version}, torch {torch_version}, peer venv {PEER}.")
    res.data["raw"] = {str(k): v for k, v in raw.items()}
    return res
