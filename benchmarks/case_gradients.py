"""Exact gradients of the log likelihood, and the fits they make cheaper: case ``gradients``.

* **Value + gradient against one log density.** AR(1) latent field plus noise in
  ``(ρ, τ, σ²)`` at n = 10⁶ (target ≤ 4×) and a GMRF on a 500×500 grid plus noise in
  ``(κ, τ, σ²)`` at n = 250 000 (target ≤ 6×): ``log_density_gradient`` on a fresh
  operator against ``dwnorm`` on a fresh operator (both factorise ``A`` and ``O`` and
  solve; the gradient adds the selected inversions of ``A`` and ``O``, two solves and the
  traces). Also *in a fit*: the operator rebuilt from the previous one by ``refactor``
  (CHOLMOD's symbolic analysis reused), as :func:`woodbury_sparse.fitting.fit` does.
* **Mauna Loa fit** (the model of ``examples/mauna_loa.py``: weekly CO₂ residuals as a
  latent AR(1) observed with noise, 2284 weeks, 59 missing): ``fitting.fit`` (L-BFGS-B
  with exact gradients) against the derivative-free fits: L-BFGS-B with finite-difference
  gradients (what the example did) and Nelder–Mead, counting log-likelihood evaluations
  and comparing the optimum (target: ≥ 5× fewer evaluations, the same log likelihood to
  1e-6). Needs statsmodels for the data (skipped without it).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from scipy import linalg, optimize, sparse

import woodbury_sparse as ws
from woodbury_sparse.fitting import fit
from woodbury_sparse.testing import ar1_precision, ar1_precision_derivative, grid_precision

from ._harness import Case, Result, Timings, fmt_ms, fmt_ratio

SPEED = (
    "Value and gradient in all three parameters against one log density (medians of the "
    "rounds; ratios round by round). *fresh*: a new operator each call (construction and "
    "factorisations included); *in a fit*: the operator rebuilt by `refactor` from the "
    "previous parameter value (symbolic analyses reused), as the fitting helper does."
)
FITS = (
    "Maximum likelihood for the Mauna Loa model in (atanh ρ, log τ, log σ²) from the same "
    "start. Evaluations: log likelihoods computed (a value with its gradient counts once); "
    "Δ log likelihood: this fit's maximum minus the gradient fit's."
)


# -- the speed problems ---------------------------------------------------------------------
def ar1_model(n):
    def model(theta):
        rho, tau, s2 = theta
        Q = ar1_precision(n, rho)
        B = sparse.eye_array(n, format="csc") / s2
        dA = [tau * ar1_precision_derivative(n, rho), Q, None]
        return tau * Q, B, dA, [None, None, -1.0 / s2**2]

    return model, (0.9, 2.0, 0.5)


def grid_model(n):
    m = math.isqrt(n)

    def model(theta):
        kappa, tau, s2 = theta
        Q = grid_precision(m, kappa)
        B = sparse.eye_array(n, format="csc") / s2
        return tau * Q, B, [2 * kappa * tau, Q, None], [None, None, -1.0 / s2**2]

    return model, (0.5, 1.5, 0.3)


MODELS = {"AR(1) + noise": ar1_model, "grid + noise": grid_model}


def setup_speed(param) -> SimpleNamespace:
    kind, n = param
    model, theta = MODELS[kind](n)
    A, B, dA, dB = model(theta)
    p = SimpleNamespace(A=A, B=B, dA=dA, dB=dB, n=n)
    W = ws.SymmetricWoodburyMatrix(A, B)
    p.y = ws.rwnorm(1, 0.0, W, random_state=0)
    # in a fit: the previous evaluation's operator (factorised), and this one's blocks
    p.previous = W
    _ = ws.dwnorm(p.y, 0.0, W, log=True)
    nearby = np.array(theta) * 1.01
    p.A2, p.B2, p.dA2, p.dB2 = model(nearby)
    return p


def routes_speed(param, p) -> dict:
    def fresh():
        return ws.SymmetricWoodburyMatrix(p.A, p.B)

    def refit():
        return p.previous.refactor(A=p.A2, B=p.B2)

    return {
        "log density": lambda: ws.dwnorm(p.y, 0.0, fresh(), log=True),
        "value + gradient": lambda: ws.log_density_gradient(p.y, 0.0, fresh(), dA=p.dA, dB=p.dB),
        "log density (fit)": lambda: ws.dwnorm(p.y, 0.0, refit(), log=True),
        "value + gradient (fit)": lambda: ws.log_density_gradient(
            p.y, 0.0, refit(), dA=p.dA2, dB=p.dB2
        ),
    }


# -- Mauna Loa ------------------------------------------------------------------------------
def mauna_loa_data():
    """``(y, S)``: the example's residuals of the observed weeks and the selection matrix."""
    try:
        from statsmodels.datasets import co2
    except ImportError:
        return None
    data = co2.load_pandas().data
    dates, co2_values = data.index.to_numpy(), data["co2"].to_numpy(dtype=float)
    observed = np.isfinite(co2_values)
    years = 1970.0 + dates.astype("datetime64[D]").astype(float) / 365.2425
    s = (years - years.mean()) / (years.max() - years.min())
    columns = [s**k for k in range(4)]
    for k in range(1, 4):
        columns += [np.cos(2 * np.pi * k * years), np.sin(2 * np.pi * k * years)]
    D = np.column_stack(columns)
    coef, *_ = linalg.lstsq(D[observed], co2_values[observed])
    y = co2_values[observed] - (D @ coef)[observed]
    idx = np.flatnonzero(observed)
    n_obs, n_weeks = idx.size, co2_values.size
    S = sparse.csc_array((np.ones(n_obs), (np.arange(n_obs), idx)), shape=(n_obs, n_weeks))
    return y, S


def mauna_loa_model(S):
    n_obs, n_weeks = S.shape

    def model(theta):
        rho, tau, s2 = theta
        Q = ar1_precision(n_weeks, rho)
        A = sparse.eye_array(n_obs, format="csc") / s2
        dB = [ar1_precision_derivative(n_weeks, rho) / tau**2, -2.0 * Q / tau**3, None]
        return A, Q / tau**2, [None, None, -1.0 / s2**2], dB

    return model


def setup_fits(param) -> SimpleNamespace | None:
    loaded = mauna_loa_data()
    if loaded is None:
        return None
    y, S = loaded
    p = SimpleNamespace(y=y, S=S, model=mauna_loa_model(S), outcome={})
    p.start = np.array([0.5, 0.5 * y.std(), 0.5 * y.var()])
    return p


def routes_fits(param, p) -> dict:
    if p is None:
        return {}

    def loglik(phi):
        rho, tau, s2 = np.tanh(phi[0]), np.exp(phi[1]), np.exp(phi[2])
        A, B, _, _ = p.model((rho, tau, s2))
        return ws.dwnorm(p.y, 0.0, ws.SymmetricWoodburyMatrix(A, B, X=p.S), log=True)

    phi0 = np.array([np.arctanh(p.start[0]), np.log(p.start[1]), np.log(p.start[2])])

    def gradient_fit():
        res = fit(
            p.model,
            p.start,
            p.y,
            X=p.S,
            transforms=["correlation", "positive", "positive"],
            standard_errors=False,
            progress=False,
        )
        p.outcome["gradient"] = (res.nfev, res.loglik, res.message)

    def counted(method, **options):
        def run():
            count = [0]

            def negative(phi):
                count[0] += 1
                return -loglik(phi)

            res = optimize.minimize(negative, phi0, method=method, options=options)
            p.outcome[method] = (count[0], -res.fun, str(res.message))

        return run

    return {
        "gradient fit": gradient_fit,
        "L-BFGS-B": counted("L-BFGS-B", maxiter=200),
        "Nelder-Mead": counted("Nelder-Mead", xatol=1e-10, fatol=1e-10, maxiter=5000),
    }


# -- the case -------------------------------------------------------------------------------
def setup(param):
    return setup_fits(param) if param[0] == "Mauna Loa" else setup_speed(param)


def routes(param, p):
    return routes_fits(param, p) if param[0] == "Mauna Loa" else routes_speed(param, p)


def tabulate(res: Result, param, p, t: Timings) -> None:
    kind, n = param
    if kind != "Mauna Loa":
        res.add(
            SPEED,
            {
                "problem": kind,
                "n": f"{n:,}",
                "log density (ms)": fmt_ms(t.median("log density")),
                "value + gradient (ms)": fmt_ms(t.median("value + gradient")),
                "ratio, fresh": fmt_ratio(t.ratio("value + gradient", "log density")),
                "ratio, in a fit": fmt_ratio(
                    t.ratio("value + gradient (fit)", "log density (fit)")
                ),
            },
        )
        return
    if p is None:
        res.notes.append("Mauna Loa fits skipped: statsmodels (the data) is not installed.")
        return
    evals, best, _ = p.outcome["gradient"]
    for name, label in (
        ("gradient", "fitting.fit (exact gradients, L-BFGS-B)"),
        ("L-BFGS-B", "L-BFGS-B, finite-difference gradients"),
        ("Nelder-Mead", "Nelder–Mead"),
    ):
        count, value, message = p.outcome[name]
        route = "gradient fit" if name == "gradient" else name
        res.add(
            FITS,
            {
                "method": label,
                "evaluations": str(count),
                "× gradient fit's": fmt_ratio(count / evals),
                "log likelihood": f"{value:.8f}",
                "Δ log likelihood": f"{value - best:.1e}",
                "time (s)": f"{t.median(route):.2f}",
                "message": message[:60],
            },
        )


CASE = Case(
    name="gradients",
    title="Exact gradients of the log likelihood, and fits with them",
    doc=__doc__,
    params=lambda quick: (
        [("AR(1) + noise", 10**4), ("grid + noise", 100**2), ("Mauna Loa", 2284)]
        if quick
        else [("AR(1) + noise", 10**6), ("grid + noise", 500**2), ("Mauna Loa", 2284)]
    ),
    setup=setup,
    routes=routes,
    timing=lambda param, quick: {"repeats": 1 if param[0] == "Mauna Loa" else (3 if quick else 7)},
    tabulate=tabulate,
)
