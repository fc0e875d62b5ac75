"""Case 5: a sweep of 20 AR(1) correlations ρ at n = 10⁶ (log density at each ρ).

* refactor: ``updates.refactor(W_prev, A=Q_ρ)`` (CHOLMOD's symbolic analysis of ``A``
  reused, numeric factorisation only) then ``dwnorm``;
* fresh: ``SymmetricWoodburyMatrix(Q_ρ, I)`` then ``dwnorm``;
* floor: bare CHOLMOD numeric refactorisations (``Factor.cholesky_inplace``) of ``A`` and
  ``O = I + Q_ρ`` on the analysed pattern, the log-determinants and one solve.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse.testing import ar1_precision

from ._harness import CaseResult, fmt_ms, fmt_ratio, progress
from ._harness import legacy_interleaved as interleaved
from .case_gmrf import library_cholesky

NAME = "sweep"
TITLE = "Parameter sweep: 20 values of ρ, same-pattern refactorisation vs fresh construction"


def _api():
    try:
        from woodbury_sparse.updates import refactor
    except ImportError:
        return None
    return refactor


def run(quick: bool = False) -> CaseResult:
    res = CaseResult(NAME, TITLE)
    refactor = _api()
    if refactor is None:
        res.notes.append("skipped: API not available (woodbury_sparse.updates.refactor)")
        return res
    n = 10**4 if quick else 10**6
    rhos = np.linspace(0.5, 0.95, 3 if quick else 20)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n)
    eye = sparse.eye_array(n, format="csc")
    Q0 = ar1_precision(n, 0.3)
    W = ws.SymmetricWoodburyMatrix(Q0, eye)
    ws.dwnorm(x, covariance=W, log=True)
    fA = library_cholesky(sparse.csc_matrix(Q0))
    fO = library_cholesky(sparse.csc_matrix(eye + Q0))
    state = {"W": W}
    times = {"refactor": [], "fresh": [], "floor": []}
    values = []
    for i, rho in enumerate(rhos):
        Q = ar1_precision(n, rho)
        Qc = sparse.csc_matrix(Q)
        Oc = sparse.csc_matrix(eye + Q)

        def by_refactor(Q=Q):
            state["W"] = refactor(state["W"], A=Q)
            state["ref"] = ws.dwnorm(x, covariance=state["W"], log=True)

        def fresh(Q=Q):
            state["fresh"] = ws.dwnorm(x, covariance=ws.SymmetricWoodburyMatrix(Q, eye), log=True)

        def floor(Qc=Qc, Oc=Oc):
            fA.cholesky_inplace(Qc)
            fO.cholesky_inplace(Oc)
            y = Qc @ x
            quad = x @ y - y @ fO.solve_A(y)
            return -0.5 * (n * np.log(2 * np.pi) + fO.logdet() - fA.logdet() + quad)

        # one round per ρ (the refactor chain must see each ρ once), order rotating
        t = interleaved(
            dict(list({"refactor": by_refactor, "fresh": fresh, "floor": floor}.items())[i % 3 :])
            | dict(
                list({"refactor": by_refactor, "fresh": fresh, "floor": floor}.items())[: i % 3]
            ),
            1,
        )
        for k in times:
            times[k].append(t[k])
        values.append(abs(state["ref"] - state["fresh"]) / abs(state["fresh"]))
        if i % 5 == 4 or quick:
            progress(
                f"  ρ {i + 1}/{len(rhos)}: refactor {t['refactor']:.2f} s, fresh {t['fresh']:.2f} s"
            )
    tot = {k: float(np.sum(v)) for k, v in times.items()}
    med = {k: float(np.median(v)) for k, v in times.items()}
    rows = [
        {
            "route": label,
            "total for the sweep (ms)": fmt_ms(tot[k]),
            "median per ρ (ms)": fmt_ms(med[k]),
            "ratio to floor": fmt_ratio(med[k] / med["floor"]),
            "speed-up vs fresh": fmt_ratio(med["fresh"] / med[k]),
        }
        for k, label in (
            ("refactor", "`updates.refactor` + `dwnorm`"),
            ("fresh", "fresh operator + `dwnorm`"),
            ("floor", "bare CHOLMOD numeric refactorisations (floor)"),
        )
    ]
    res.table(
        f"n = {n:,}, {len(rhos)} values of ρ in [{rhos[0]}, {rhos[-1]}]; log density at each ρ.",
        list(rows[0]),
        rows,
    )
    res.notes.append(
        f"Largest relative difference of the log densities (refactor vs fresh): {max(values):.1e}."
    )
    res.data["raw"] = {"rho": rhos.tolist(), **times}
    return res
