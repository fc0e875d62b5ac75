"""Pathway updates: one at a time vs rebuilding, and the dense update vs the notebook's.

*Sequential arrivals*: a base precision Θ (2-D grid GMRF, N = 20 000 genes) and pathway
loadings X (N × 50). After each arrival we (a) apply the updated precision
``(Θ⁻¹ + X_k X_kᵀ)⁻¹`` to a vector (``ggm.add_pathways`` vs ``ggm.updated_precision`` from
scratch) and (b) evaluate the log density of ``N(0, Θ⁻¹ + X_k X_kᵀ)``
(``updates.add_terms`` vs a new operator). Each arrival is one round (the chain is
sequential), the order shuffled.

*Dense gene update*: the notebook's problem at N = 1000 … 4000 genes, D = 5 pathways —
``Σ = F Fᵀ + diag(ψ)`` with ten pathway loadings ``F`` (entries ``0.1·N(0, 1)``) and
``ψ ~ U(0.01, 0.05)``, its precision ``Θ = numpy.linalg.inv(Σ)`` used as it comes (not
symmetrised), new loadings ``X`` (entries ``0.05·N(0, 1)``). The floor is the notebook's
own four-line function (:func:`notebook_update`: ``Θ X``, the ``D×D`` middle matrix, its
``numpy.linalg.inv``, ``Θ − Θ X M⁻¹ (Θ X)ᵀ``), against ``ggm.updated_precision_dense``,
validation included.
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

#: Gene counts of the dense update (the notebook's D = 5 pathways each).
DENSE_SIZES = (1000, 2000, 4000)
DENSE_D = 5
#: The issue's target for the dense update: at most this times the notebook's function.
DENSE_TARGET = 1.2


def notebook_update(Sigma_inv: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The notebook's Woodbury function: ``(Σ + X Xᵀ)⁻¹`` from ``Σ⁻¹``, its four lines."""
    Sigma_inv_X = Sigma_inv @ X
    middle = np.eye(X.shape[1]) + X.T @ Sigma_inv_X
    middle_inv = np.linalg.inv(middle)
    return Sigma_inv - Sigma_inv_X @ middle_inv @ Sigma_inv_X.T


def _dense(param) -> bool:
    return param[0] == "dense"


def setup(param) -> SimpleNamespace:
    if _dense(param):
        return _dense_setup(param[1])
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


def _dense_setup(n: int) -> SimpleNamespace:
    """The notebook's generator: a factor-model covariance, its inverse as it comes, X."""
    rng = np.random.default_rng(42)
    loadings = rng.standard_normal((n, 10)) * 0.1
    Sigma = loadings @ loadings.T + np.diag(rng.uniform(0.01, 0.05, n))
    p = SimpleNamespace(Theta=np.linalg.inv(Sigma), out={})
    p.X = rng.standard_normal((n, DENSE_D)) * 0.05
    return p


def routes(param, p) -> dict:
    if _dense(param):

        def notebook():
            p.out["notebook"] = notebook_update(p.Theta, p.X)

        def library():
            p.out["library"] = ggm.updated_precision_dense(p.Theta, p.X)

        return {"notebook": notebook, "library": library}

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


def timing(param, quick: bool) -> dict:
    if not _dense(param):
        return {"args": range(2, param[1] + 1)}
    if quick:
        return {"repeats": 3, "warmup": True}
    repeats, block = {1000: (15, 3), 2000: (11, 1), 4000: (7, 1)}.get(param[1], (7, 1))
    return {"repeats": repeats, "block": block, "warmup": True}


DENSE_CAPTION = (
    "Dense gene update (Σ + X Xᵀ)⁻¹ from Θ = Σ⁻¹, D = 5, the notebook's data: "
    "`ggm.updated_precision_dense(Θ, X)` (validation included) against the notebook's "
    "four-line function, interleaved, one untimed warm-up call each; ratio = library / "
    "notebook, round by round (median, quartiles); target ≤ 1.2. Error: max |library − "
    "notebook| / max |notebook|."
)


def tabulate(res: Result, param, p, t: Timings) -> None:
    if _dense(param):
        o = p.out
        error = np.abs(o["library"] - o["notebook"]).max() / np.abs(o["notebook"]).max()
        res.add(
            DENSE_CAPTION,
            {
                "N": param[1],
                "notebook (ms)": fmt_ms(t.median("notebook")),
                "library (ms)": fmt_ms(t.median("library")),
                "library / notebook": fmt_ratio(t.ratio("library", "notebook")),
                "target": f"≤ {DENSE_TARGET}",
                "error": f"{error:.1e}",
            },
        )
        return
    m, k_max = param
    caption = (
        f"N = {m * 2 * m:,} genes (grid precision {m}×{2 * m}), pathways k = 2 … {k_max} added "
        "one at a time after the first (each step timed once: the chain is sequential; the "
        "order of the four routes changes from step to step)."
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
    title="Pathway updates: one at a time vs rebuild; the dense update vs the notebook's",
    doc=__doc__,
    params=lambda quick: [
        (20, 5) if quick else (100, 50),
        *(("dense", n) for n in ((200,) if quick else DENSE_SIZES)),
    ],
    setup=setup,
    routes=routes,
    timing=timing,
    tabulate=tabulate,
    figure=figure,
)
