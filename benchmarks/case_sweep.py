"""A sweep of 20 AR(1) correlations ρ at n = 10⁵ and 10⁶, the log density at each ρ.

* refactor: ``updates.refactor(W_prev, A=Q_ρ)`` (CHOLMOD's symbolic analyses of ``A`` and
  of the capacitance reused, numeric factorisations only) then ``dwnorm``;
* fresh: ``SymmetricWoodburyMatrix(Q_ρ, I)`` then ``dwnorm``;
* floor: bare CHOLMOD numeric refactorisations (``Factor.cholesky_inplace``) of ``A`` and
  ``O = I + Q_ρ`` (formed in the round from ``Q_ρ``, as the library must) on the analysed
  pattern, the log-determinants and one solve.

Each ρ is one round (the refactor chain must see each ρ once), the order shuffled.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse.testing import ar1_precision
from woodbury_sparse.updates import refactor

from ._harness import Case, Result, Timings, fmt_ms, fmt_ratio
from .case_gmrf import setup

ROUTES = {
    "refactor": "`updates.refactor` + `dwnorm`",
    "fresh": "fresh operator + `dwnorm`",
    "floor": "bare CHOLMOD numeric refactorisations (floor)",
}


def steps(param):
    """Each ρ's matrices, built when its round starts (untimed), one ρ held at a time."""
    n, count = param
    eye = sparse.eye_array(n, format="csc")
    for rho in np.linspace(0.5, 0.95, count):
        Q = ar1_precision(n, rho)
        yield SimpleNamespace(rho=rho, Q=Q, Qc=sparse.csc_matrix(Q), eye=eye)


def routes(param, p) -> dict:
    p.values = {}

    def by_refactor(m):
        p.W = refactor(p.W, A=m.Q)
        p.values[m.rho, "refactor"] = ws.dwnorm(p.x, covariance=p.W, log=True)

    def fresh(m):
        W = ws.SymmetricWoodburyMatrix(m.Q, p.eye)
        p.values[m.rho, "fresh"] = ws.dwnorm(p.x, covariance=W, log=True)

    def floor(m):
        p.fA.cholesky_inplace(m.Qc)
        p.fO.cholesky_inplace(sparse.csc_matrix(m.eye + m.Qc))  # O formed, as ours must
        y = m.Qc @ p.x
        quad = p.x @ y - y @ p.fO.solve_A(y)
        return -0.5 * (p.n * np.log(2 * np.pi) + p.fO.logdet() - p.fA.logdet() + quad)

    return {"refactor": by_refactor, "fresh": fresh, "floor": floor}


def tabulate(res: Result, param, p, t: Timings) -> None:
    n, count = param
    caption = f"n = {n:,}, {count} values of ρ in [0.5, 0.95]; log density at each ρ."
    for k, label in ROUTES.items():
        res.add(
            caption,
            {
                "route": label,
                "total for the sweep (ms)": fmt_ms(t.total(k)),
                "median per ρ (ms)": fmt_ms(t.median(k)),
                "ratio to floor": fmt_ratio(t.ratio(k, "floor")),
                "speed-up vs fresh": fmt_ratio(t.ratio("fresh", k)),
            },
        )
    v = p.values
    diff = max(abs(v[r, "refactor"] - v[r, "fresh"]) / abs(v[r, "fresh"]) for r, _ in v)
    res.notes.append(
        f"Largest relative difference of the log densities, refactor vs fresh: {diff:.1e}."
    )


CASE = Case(
    name="sweep",
    title="Parameter sweep: 20 values of ρ, same-pattern refactorisation vs fresh construction",
    doc=__doc__,
    params=lambda quick: [(10**4, 3)] if quick else [(10**5, 20), (10**6, 20)],
    setup=lambda param: setup(ar1_precision(param[0], 0.3)),
    routes=routes,
    timing=lambda param, quick: {"args": steps(param)},
    tabulate=tabulate,
)
