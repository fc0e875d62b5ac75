"""Posterior of the latent field: marginal variances, mean and draws against their floors.

The AR(1) process observed with noise, ``y = e + z`` with ``z`` an AR(1) (``ρ = 0.95``,
precision ``Q``) and ``e ~ N(0, σ² I)`` (``σ² = 0.5``): ``W = σ² I + Q⁻¹``, the posterior
precision of ``z`` is ``O = Q + I/σ²``, tridiagonal.

* Against one factorisation of ``O`` (bare CHOLMOD with the library's settings, symbolic
  analysis included, as the library's first factorisation): the marginal posterior
  variances ``latent_posterior(W, y).latent.var()`` on a warm operator (``O``'s factor
  cached by an earlier solve, as after fitting) and on a fresh one (the factorisation
  included); the issue's target is within 3× at n = 10⁶. The posterior mean (one solve)
  and ten draws are timed alongside.
* Small (n ≤ 5000, and a 2-D grid GMRF plus noise): the same variances against the
  obvious alternatives — the dense inverse of ``O`` and one solve per unit vector with
  the cached factor (the whole ``O⁻¹``, column by column).

The selected inverse of a 500×500 grid precision against its factorisation is the
``selinv`` case.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse.testing import ar1_precision, grid_precision

from ._harness import Case, Result, Timings, fmt_ms, fmt_ratio
from .case_gmrf import library_cholesky

SMALL = 5000
NOISE = 0.5
FACTOR = (
    "Marginal posterior variances of the latent field against one factorisation of its "
    "precision O (bare CHOLMOD, library settings, analysis included). *warm*: W's factor of "
    "O cached (after a solve, as after a fit); *fresh*: a new operator each round, O "
    "factorised inside. Medians of the rounds; ratios round by round (quartiles)."
)
ALTERNATIVES = (
    "Marginal posterior variances against the alternatives (× = how many times slower the "
    "alternative is than `latent_posterior(W, y).latent.var()` on a fresh operator; the "
    "unit-vector solves reuse a cached factor)."
)
MAKE = {
    "AR(1)+noise": lambda n: ar1_precision(n, 0.95),
    "grid+noise": lambda n: grid_precision(math.isqrt(n), 0.3),
}


def _operator(Q) -> ws.SymmetricWoodburyMatrix:
    n = Q.shape[0]
    return ws.WoodburyMatrix(sparse.diags_array(np.full(n, 1.0 / NOISE)), Q, symmetric=True)


def setup(param) -> SimpleNamespace:
    kind, n = param
    p = SimpleNamespace(Q=MAKE[kind](n), n=n)
    p.y = np.random.default_rng(0).standard_normal(n)
    p.W = _operator(p.Q)
    p.W.solve(p.y)  # factorises O: the warm operator
    p.O = sparse.csc_array(p.Q + sparse.eye_array(n) / NOISE)
    p.Oc = sparse.csc_matrix(p.O)
    p.Oc.sort_indices()
    p.fO = library_cholesky(p.Oc)
    return p


def routes(param, p) -> dict:
    out = {
        "factorisation of O": lambda: library_cholesky(p.Oc),
        "variances (warm)": lambda: ws.latent_posterior(p.W, p.y).latent.var(),
        "variances (fresh)": lambda: ws.latent_posterior(_operator(p.Q), p.y).latent.var(),
        "mean (warm)": lambda: ws.latent_posterior(p.W, p.y).latent.mean,
        "10 draws (warm)": lambda: ws.latent_posterior(p.W, p.y).latent.rvs(10, random_state=0),
    }
    if p.n <= SMALL:
        out["dense inverse"] = lambda: np.diag(np.linalg.inv(p.O.toarray()))
        out["unit-vector solves"] = lambda: np.diag(p.fO.solve_A(np.eye(p.n)))
    return out


def tabulate(res: Result, param, p, t: Timings) -> None:
    kind, n = param
    head = {"problem": kind, "n": f"{n:,}"}
    res.add(
        FACTOR,
        {
            **head,
            "factorisation (ms)": fmt_ms(t.median("factorisation of O")),
            "variances warm (ms)": fmt_ms(t.median("variances (warm)")),
            "variances fresh (ms)": fmt_ms(t.median("variances (fresh)")),
            "mean warm (ms)": fmt_ms(t.median("mean (warm)")),
            "10 draws warm (ms)": fmt_ms(t.median("10 draws (warm)")),
            "warm / factorisation": fmt_ratio(t.ratio("variances (warm)", "factorisation of O")),
            "fresh / factorisation": fmt_ratio(t.ratio("variances (fresh)", "factorisation of O")),
        },
    )
    if n <= SMALL:
        ours = "variances (fresh)"
        res.add(
            ALTERNATIVES,
            {
                **head,
                "ours, fresh (ms)": fmt_ms(t.median(ours)),
                "dense inverse (ms)": fmt_ms(t.median("dense inverse")),
                "× dense": fmt_ratio(t.ratio("dense inverse", ours)),
                "solves with I (ms)": fmt_ms(t.median("unit-vector solves")),
                "× solves": fmt_ratio(t.ratio("unit-vector solves", ours)),
            },
        )


CASE = Case(
    name="posterior",
    title="Posterior of the latent field: marginal variances by the selected inverse",
    doc=__doc__,
    params=lambda quick: (
        [("AR(1)+noise", 2000), ("grid+noise", 40**2), ("AR(1)+noise", 10**5)]
        if quick
        else [
            ("AR(1)+noise", 2000),
            ("AR(1)+noise", 5000),
            ("grid+noise", 50**2),
            ("grid+noise", 70**2),
            ("AR(1)+noise", 10**5),
            ("AR(1)+noise", 10**6),
        ]
    ),
    setup=setup,
    routes=routes,
    timing=lambda param, quick: {"repeats": 3 if quick else 5},
    tabulate=tabulate,
)
