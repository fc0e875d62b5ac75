"""Case 6: k = 1 … 50 pathways added one at a time vs rebuilding the operator each time.

A base precision Θ (2-D grid GMRF, N = 20 000 genes) and pathway loadings X (N × 50).
After each arrival we (a) apply the updated precision ``(Θ⁻¹ + X_k X_kᵀ)⁻¹`` to a vector
(``ggm.add_pathways`` vs ``ggm.updated_precision`` from scratch) and (b) evaluate the
log density of ``N(0, Θ⁻¹ + X_k X_kᵀ)`` (``updates.add_terms`` vs a new operator).
"""
# ruff: noqa: B023  (the closures are called within the loop iteration that made them)

from __future__ import annotations

import numpy as np

import woodbury_sparse as ws
from woodbury_sparse.testing import grid_precision

from ._harness import CaseResult, fmt_ms, fmt_ratio, progress

NAME = "pathways"
TITLE = "Sequential pathway updates: add one at a time vs rebuild"


def run(quick: bool = False) -> CaseResult:
    import time

    res = CaseResult(NAME, TITLE)
    try:
        from woodbury_sparse import ggm
        from woodbury_sparse.updates import add_terms
    except ImportError:
        res.notes.append("skipped: API not available (woodbury_sparse.updates / ggm)")
        return res
    m, k_max = (20, 5) if quick else (100, 50)
    Theta = grid_precision(m, kappa=1.0, k=2 * m)
    N = Theta.shape[0]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, k_max)) * 0.2
    v = rng.standard_normal(N)
    series = {k: [] for k in ("prec_add", "prec_rebuild", "logpdf_add", "logpdf_rebuild")}
    P = ggm.updated_precision(Theta, X[:, :1])
    P @ v
    W = ws.SymmetricWoodburyMatrix(Theta, np.eye(1), X=X[:, :1])
    ws.dwnorm(v, covariance=W, log=True)
    for k in range(2, k_max + 1):
        col = X[:, k - 1 : k]
        steps = {
            "prec_add": lambda: ggm.add_pathways(P, col),
            "prec_rebuild": lambda: ggm.updated_precision(Theta, X[:, :k]),
            "logpdf_add": lambda: add_terms(W, np.eye(1), X=col),
            "logpdf_rebuild": lambda: ws.SymmetricWoodburyMatrix(Theta, np.eye(k), X=X[:, :k]),
        }
        order = list(steps)[k % 2 :] + list(steps)[: k % 2]
        out = {}
        for name in order:
            t0 = time.perf_counter()
            op = steps[name]()
            if name.startswith("prec"):
                out[name] = (op, op @ v)
            else:
                out[name] = (op, ws.dwnorm(v, covariance=op, log=True))
            series[name].append(time.perf_counter() - t0)
        P, W = out["prec_add"][0], out["logpdf_add"][0]
        if k % 10 == 0 or quick:
            progress(f"  k = {k}/{k_max}")
    prec_err = np.max(np.abs(out["prec_add"][1] - out["prec_rebuild"][1])) / np.max(
        np.abs(out["prec_rebuild"][1])
    )
    ld_err = abs(out["logpdf_add"][1] - out["logpdf_rebuild"][1]) / abs(out["logpdf_rebuild"][1])
    rows = []
    for what, a, b in (
        ("updated precision × vector", "prec_add", "prec_rebuild"),
        ("log density", "logpdf_add", "logpdf_rebuild"),
    ):
        ta, tb = np.sum(series[a]), np.sum(series[b])
        rows.append(
            {
                "after each arrival": what,
                "add one at a time, total (ms)": fmt_ms(ta),
                "rebuild each time, total (ms)": fmt_ms(tb),
                "speed-up (total)": fmt_ratio(tb / ta),
                "last step add (ms)": fmt_ms(series[a][-1]),
                "last step rebuild (ms)": fmt_ms(series[b][-1]),
            }
        )
    res.table(
        f"N = {N:,} genes (grid precision {m}×{2 * m}), pathways k = 2 … {k_max} added one at "
        "a time after the first (each step timed once: the chain is sequential; rebuild and "
        "add alternate in order).",
        list(rows[0]),
        rows,
    )
    res.notes.append(
        f"Accuracy after {k_max} sequential additions vs a rebuild: precision × vector max "
        f"rel. diff {prec_err:.1e}; log density rel. diff {ld_err:.1e}."
    )
    res.data["raw"] = {k: list(v) for k, v in series.items()}
    return res


def figure(res: CaseResult, path) -> None:
    import matplotlib.pyplot as plt

    raw = res.data["raw"]
    ks = np.arange(2, 2 + len(raw["prec_add"]))
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for key, label, style in (
        ("prec_add", "precision × v: add one", "-"),
        ("prec_rebuild", "precision × v: rebuild", "--"),
        ("logpdf_add", "log density: add one", "-"),
        ("logpdf_rebuild", "log density: rebuild", "--"),
    ):
        ax.plot(ks, np.cumsum(raw[key]) * 1e3, style, label=label)
    ax.set_xlabel("pathways k")
    ax.set_ylabel("cumulative time (ms)")
    ax.set_title("Sequential pathway arrivals")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
