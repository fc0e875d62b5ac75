"""k = 1 … 50 pathways added one at a time vs rebuilding the operator each time.

A base precision Θ (2-D grid GMRF, N = 20 000 genes) and pathway loadings X (N × 50).
After each arrival we (a) apply the updated precision ``(Θ⁻¹ + X_k X_kᵀ)⁻¹`` to a vector
(``ggm.add_pathways`` vs ``ggm.updated_precision`` from scratch) and (b) evaluate the
log density of ``N(0, Θ⁻¹ + X_k X_kᵀ)`` (``updates.add_terms`` vs a new operator).
Each arrival is one round (the chain is sequential), the order rotating.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

import woodbury_sparse as ws
from woodbury_sparse import ggm
from woodbury_sparse.testing import grid_precision
from woodbury_sparse.updates import add_terms

from ._harness import Case, Result, Timings, fmt_ms, fmt_ratio
from .report import plot

WHAT = {"prec": "updated precision × vector", "logpdf": "log density"}


def setup(param) -> SimpleNamespace:
    m, k_max = param
    p = SimpleNamespace(Theta=grid_precision(m, kappa=1.0, k=2 * m), out={})
    rng = np.random.default_rng(0)
    p.X = rng.standard_normal((p.Theta.shape[0], k_max)) * 0.2
    p.v = rng.standard_normal(p.Theta.shape[0])
    p.P = ggm.updated_precision(p.Theta, p.X[:, :1])
    p.P @ p.v
    p.W = ws.SymmetricWoodburyMatrix(p.Theta, np.eye(1), X=p.X[:, :1])
    ws.dwnorm(p.v, covariance=p.W, log=True)
    return p


def routes(param, p) -> dict:
    def prec_add(k):
        p.P = ggm.add_pathways(p.P, p.X[:, k - 1 : k])
        p.out["prec_add"] = p.P @ p.v

    def prec_rebuild(k):
        p.out["prec_rebuild"] = ggm.updated_precision(p.Theta, p.X[:, :k]) @ p.v

    def logpdf_add(k):
        p.W = add_terms(p.W, np.eye(1), X=p.X[:, k - 1 : k])
        p.out["logpdf_add"] = ws.dwnorm(p.v, covariance=p.W, log=True)

    def logpdf_rebuild(k):
        W = ws.SymmetricWoodburyMatrix(p.Theta, np.eye(k), X=p.X[:, :k])
        p.out["logpdf_rebuild"] = ws.dwnorm(p.v, covariance=W, log=True)

    return {f.__name__: f for f in (prec_add, prec_rebuild, logpdf_add, logpdf_rebuild)}


def tabulate(res: Result, param, p, t: Timings) -> None:
    m, k_max = param
    caption = (
        f"N = {m * 2 * m:,} genes (grid precision {m}×{2 * m}), pathways k = 2 … {k_max} added "
        "one at a time after the first (each step timed once: the chain is sequential; the "
        "order of the four routes rotates from step to step)."
    )
    for what, label in WHAT.items():
        add, rebuild = f"{what}_add", f"{what}_rebuild"
        res.add(
            caption,
            {
                "after each arrival": label,
                "add one at a time, total (ms)": fmt_ms(t.total(add)),
                "rebuild each time, total (ms)": fmt_ms(t.total(rebuild)),
                "speed-up (total)": fmt_ratio(t.total(rebuild) / t.total(add)),
                "last step add (ms)": fmt_ms(t.samples[add][-1]),
                "last step rebuild (ms)": fmt_ms(t.samples[rebuild][-1]),
            },
        )
    o = p.out
    prec = np.abs(o["prec_add"] - o["prec_rebuild"]).max() / np.abs(o["prec_rebuild"]).max()
    logpdf = abs(o["logpdf_add"] - o["logpdf_rebuild"]) / abs(o["logpdf_rebuild"])
    res.notes.append(
        f"Accuracy after {k_max} sequential additions vs a rebuild: precision × vector max "
        f"rel. diff {prec:.1e}; log density rel. diff {logpdf:.1e}."
    )


def figure(res: Result, path) -> None:
    series = []
    for k, s in next(iter(res.data.values()))["samples"].items():
        what, how = k.split("_")
        label, style = f"{WHAT[what]}: {how}", "-" if how == "add" else "--"
        series.append((label, range(2, 2 + len(s)), np.cumsum(s) * 1e3, style))
    panels = [("Sequential pathway arrivals", series, [])]
    plot(path, panels, "pathways k", "cumulative time (ms)", "linear", "linear")


CASE = Case(
    name="pathways",
    title="Sequential pathway updates: add one at a time vs rebuild",
    doc=__doc__,
    params=lambda quick: [(20, 5) if quick else (100, 50)],
    setup=setup,
    routes=routes,
    timing=lambda param, quick: {"args": range(2, param[1] + 1)},
    tabulate=tabulate,
    figure=figure,
)
