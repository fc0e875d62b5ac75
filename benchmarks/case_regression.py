"""Case 2: the vignette's regression, ``y ~ N(0, σ² I + X B⁻¹ Xᵀ)`` with p = 20.

Ours: ``SymmetricWoodburyMatrix(A = I/σ² (diagonal), B, X)`` and ``dwnorm``. Baseline:
the dense route, a Cholesky factorisation of the n×n covariance (where it fits).
"""
# ruff: noqa: B023  (the closures are called within the loop iteration that made them)

from __future__ import annotations

import numpy as np
from scipy import linalg, sparse

import woodbury_sparse as ws

from ._harness import CaseResult, fmt_ms, fmt_ratio, progress
from ._harness import legacy_interleaved as interleaved

NAME = "regression"
TITLE = "Bayesian regression log density (p = 20) vs the dense Cholesky route"
P = 20
SIGMA2 = 0.5
TAU = 2.0  # prior precision of the coefficients: B = τ I


def problem(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, P))
    beta = rng.standard_normal(P) / np.sqrt(TAU)
    y = X @ beta + np.sqrt(SIGMA2) * rng.standard_normal(n)
    return X, y


def build(X):
    n = X.shape[0]
    return ws.SymmetricWoodburyMatrix(
        sparse.diags_array(np.full(n, 1 / SIGMA2)), TAU * np.eye(P), X=X
    )


def dense_first(X, y):
    n = X.shape[0]
    S = X @ X.T
    S /= TAU
    S[np.diag_indices(n)] += SIGMA2
    c = linalg.cho_factor(S, lower=True, overwrite_a=True, check_finite=False)
    return c, _dense_logpdf(c, y)


def _dense_logpdf(c, y):
    logdet = 2 * np.sum(np.log(np.diag(c[0])))
    quad = y @ linalg.cho_solve(c, y, check_finite=False)
    return -0.5 * (y.size * np.log(2 * np.pi) + logdet + quad)


def run(quick: bool = False) -> CaseResult:
    res = CaseResult(NAME, TITLE)
    sizes = [2000] if quick else [2000, 20_000, 200_000]
    rows, raw = [], {}
    dense_budget_s = 90.0  # skip a dense first call projected to take longer
    t_dense_2000 = None
    for n in sizes:
        reps = 1 if quick else (9 if n <= 2000 else 5)
        X, y = problem(n)
        W = build(X)
        ws.dwnorm(y, covariance=W, log=True)
        fits = n * n * 8 * 2 < 20 * 2**30
        projected = None if t_dense_2000 is None else t_dense_2000 * (n / 2000) ** 3
        do_dense = fits and (projected is None or projected < dense_budget_s)
        progress(f"  n = {n:,}: ×{reps}" + ("" if do_dense else " (dense route skipped)"))
        first = interleaved(
            {
                "ours": lambda: ws.dwnorm(y, covariance=build(X), log=True),
                **({"dense": lambda: dense_first(X, y)} if do_dense and n <= 2000 else {}),
            },
            reps,
        )
        rep = interleaved({"ours": lambda: ws.dwnorm(y, covariance=W, log=True)}, reps)
        check = ""
        if do_dense:
            if n > 2000:  # one timed dense run, kept apart from the interleaved repeats
                progress(f"  n = {n:,}: dense Cholesky of the {n}×{n} covariance (once)")
                import time

                t0 = time.perf_counter()
                c, ld = dense_first(X, y)
                first["dense"] = time.perf_counter() - t0
            else:
                c, ld = dense_first(X, y)
            rep.update(interleaved({"dense": lambda: _dense_logpdf(c, y)}, reps))
            ours_ld = ws.dwnorm(y, covariance=W, log=True)
            check = f"{abs(ours_ld - ld) / abs(ld):.1e}"
            del c
            if n == 2000:
                t_dense_2000 = first["dense"]
        raw[n] = {"first": first, "repeated": rep, "projected_dense_s": projected}
        rows.append(
            {
                "n": f"{n:,}",
                "ours first (ms)": fmt_ms(first["ours"]),
                "ours repeated (ms)": fmt_ms(rep["ours"]),
                "dense first (ms)": fmt_ms(first.get("dense"))
                if do_dense
                else (f"skipped (≈{projected:,.0f} s projected)" if fits else "does not fit"),
                "dense repeated (ms)": fmt_ms(rep.get("dense")),
                "speed-up first": fmt_ratio(first["dense"] / first["ours"]) if do_dense else "–",
                "speed-up repeated": fmt_ratio(rep["dense"] / rep["ours"]) if do_dense else "–",
                "rel. diff. of log density": check or "–",
            }
        )
    res.table(
        "Median wall times. *first*: construction + `dwnorm` on a fresh operator (dense: "
        "form σ²I + XXᵀ/τ and its Cholesky); *repeated*: `dwnorm` on the warm operator "
        "(dense: a solve with the cached Cholesky factor).",
        list(rows[0]),
        rows,
    )
    res.notes.append(
        "R's WoodburyMatrix 0.0.4 on this machine (from the issue): n = 2000, p = 20, "
        "`dwnorm` 14 ms first, 1.7 ms repeated."
    )
    res.data["raw"] = {str(k): v for k, v in raw.items()}
    return res
