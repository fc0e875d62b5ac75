"""The notebook's scaling table, ``(Σ + X Xᵀ)⁻¹`` for N = 50 … 5000, D = 5.

Three ways to the updated precision, given the cached precision ``Θ = Σ⁻¹``:

* direct: ``numpy.linalg.inv(Σ + X Xᵀ)`` — O(N³);
* Woodbury dense update: ``ggm.updated_precision_dense(Θ, X)`` — O(N² D), a dense result;
* lazy operator: ``ggm.updated_precision(Θ, X) @ v`` — construction plus one product
  with the updated precision (one solve with ``W = Θ⁻¹ + X Xᵀ``), and one more product
  with an operator already built (what each later use costs).

Both thread regimes are timed: NumPy's and SciPy's wheels bundle separate OpenBLAS
builds whose thread pools slow each other down on a 2-core machine, which matters for
the millisecond-scale routes here.
"""

from __future__ import annotations

from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np
from scipy import linalg
from threadpoolctl import threadpool_limits

from woodbury_sparse import ggm

from ._harness import Case, Result, Timings, fmt_ms, fmt_ratio
from .report import plot

D = 5
SIZES = [50, 100, 200, 500, 1000, 2000, 5000]
REGIMES = {
    "default": "each BLAS pool at its default size",
    "one thread": "every BLAS and OpenMP pool limited to one thread with threadpoolctl",
}
COLUMNS = {
    "direct": "direct inv (ms)",
    "dense": "Woodbury dense (ms)",
    "hand_dense": "dense, hand-written (ms)",
    "lazy": "lazy build + solve (ms)",
    "hand_lazy": "lazy, hand-written (ms)",
    "reused": "lazy solve, built (ms)",
}
CAPTION = (
    "**{}** threads ({}). Median wall times after one untimed warm-up call (N ≤ 1000: "
    "rounds of 5 consecutive calls per route); Θ = Σ⁻¹ cached beforehand, as in the "
    "notebook. *lazy build + solve*: a fresh operator and one product with the updated "
    "precision; *lazy solve, built*: one more product with an operator whose capacitance "
    "is already factorised; *hand-written*: the same arithmetic as bare NumPy/SciPy calls, "
    "without validation or copies (the floor of each route). Speed-up = direct / ours, "
    "round by round; error: max |dense update − direct| / max |direct|."
)


def setup(param) -> SimpleNamespace:
    """A factor-model covariance ``Σ = F Fᵀ + diag(ψ)``, its precision, pathways X."""
    N = param[1]
    rng = np.random.default_rng(0)
    F = rng.standard_normal((N, 10)) / np.sqrt(10)
    Sigma = F @ F.T + np.diag(rng.uniform(0.5, 1.5, N))
    Theta = np.linalg.inv(Sigma)
    p = SimpleNamespace(Sigma=Sigma, Theta=0.5 * (Theta + Theta.T))
    p.X, p.v = rng.standard_normal((N, D)) * 0.3, rng.standard_normal(N)
    p.built = ggm.updated_precision(p.Theta, p.X)
    p.built @ p.v  # factorise the capacitance once, outside the timing
    direct = np.linalg.inv(Sigma + p.X @ p.X.T)
    p.error = (
        np.abs(ggm.updated_precision_dense(p.Theta, p.X) - direct).max() / np.abs(direct).max()
    )
    return p


def hand_dense(Theta, X):
    """The dense update as bare NumPy/SciPy arithmetic: no validation, no copies."""
    tx = Theta @ X
    c = linalg.cho_factor(np.eye(X.shape[1]) + X.T @ tx)
    return Theta - tx @ linalg.cho_solve(c, tx.T)


def hand_lazy(Theta, X, v):
    """One product with the updated precision as bare NumPy/SciPy arithmetic."""
    tx = Theta @ X
    c = linalg.cho_factor(np.eye(X.shape[1]) + X.T @ tx)
    return Theta @ v - tx @ linalg.cho_solve(c, tx.T @ v)


def routes(param, p) -> dict:
    return {
        "direct": lambda: np.linalg.inv(p.Sigma + p.X @ p.X.T),
        "dense": lambda: ggm.updated_precision_dense(p.Theta, p.X),
        "hand_dense": lambda: hand_dense(p.Theta, p.X),
        "lazy": lambda: ggm.updated_precision(p.Theta, p.X) @ p.v,
        "hand_lazy": lambda: hand_lazy(p.Theta, p.X, p.v),
        "reused": lambda: p.built @ p.v,
    }


def timing(param, quick: bool) -> dict:
    N = param[1]
    if quick:
        return {"repeats": 3}
    repeats, block = (3, 5) if N <= 1000 else ((5, 1) if N <= 2000 else (3, 1))
    return {"repeats": repeats, "block": block, "warmup": True}


def tabulate(res: Result, param, p, t: Timings) -> None:
    row = {"N": param[1], **{c: fmt_ms(t.median(k)) for k, c in COLUMNS.items()}}
    for k in ("dense", "lazy", "reused"):
        row[f"speed-up {k}"] = fmt_ratio(t.ratio("direct", k))
    row["error"] = f"{p.error:.1e}"
    res.add(CAPTION.format(param[0], REGIMES[param[0]]), row)


def figure(res: Result, path) -> None:
    t = {int(k.split("|")[1]): v["median"] for k, v in res.data.items() if "default" in k}
    Ns = sorted(t)
    series = [
        (label, Ns, [t[N][k] * 1e3 for N in Ns], style)
        for k, label, style in (
            ("direct", "direct inv(Σ + XXᵀ)", "o-"),
            ("dense", "Woodbury dense update", "s-"),
            ("lazy", "lazy operator: build + one solve", "^-"),
            ("reused", "lazy operator: one more solve", "v-"),
        )
    ]
    series.append(("∝ N³", Ns, [t[Ns[-1]]["direct"] * 1e3 * (N / Ns[-1]) ** 3 for N in Ns], ":"))
    title = f"Updated precision (Σ + XXᵀ)⁻¹, D = {D}, default threads"
    plot(path, [(title, series, [])], "N (genes)", "median time (ms)")


CASE = Case(
    name="scaling",
    title="Notebook scaling table: direct inversion vs Woodbury update (D = 5)",
    doc=__doc__,
    params=lambda quick: [(r, N) for r in REGIMES for N in (SIZES[:2] if quick else SIZES)],
    context=lambda param: threadpool_limits(1) if param[0] == "one thread" else nullcontext(),
    setup=setup,
    routes=routes,
    timing=timing,
    tabulate=tabulate,
    figure=figure,
    notes=(
        "The notebook reported 7.4× at N = 500 and 5.1× at N = 1000 for its own Woodbury "
        "code (dense update); targets: ≥ 10× (dense update) and ≥ 100× (lazy solve) at "
        "N = 1000. Cost model: direct ≈ 2N³ flops; dense update ≈ 2N²D flops plus writing "
        "the N×N result; a lazy build ≈ 2N²D flops (ΘX) plus reading and validating Θ "
        "(copy, finiteness, symmetry: three passes over N² entries); one lazy product "
        "≈ 2N² flops (Θv).",
    ),
)
