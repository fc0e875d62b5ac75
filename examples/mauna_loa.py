"""Real data: weekly Mauna Loa CO₂ as a latent AR(1) process observed with noise.

The weekly CO₂ series of Mauna Loa (March 1958 – December 2001, shipped with statsmodels
as ``statsmodels.datasets.co2``) has 2284 weeks, 59 of them missing (most in 1958–1966).
A cubic trend and an annual cycle (three harmonics) are removed by least squares; the
residual is modelled as a latent stationary AR(1) process ``x`` over *all* weeks, observed
with white noise on the observed weeks only::

    y = S x + e,   x ~ N(0, (τ⁻² Q_ρ)⁻¹),   e ~ N(0, σ² I),

where ``S`` (``n_obs × n_weeks``, sparse) selects the observed weeks and ``Q_ρ`` is the
tridiagonal AR(1) precision with unit innovations (so ``τ`` is the innovation standard
deviation). The covariance of ``y`` is the Woodbury matrix

    ``W = σ² I + S (τ⁻² Q_ρ)⁻¹ Sᵀ``,  ``A = σ⁻² I``, ``B = τ⁻² Q_ρ``, ``X = S``,

whose capacitance ``O = B + Sᵀ A S`` is a large sparse tridiagonal matrix (CHOLMOD).
``(ρ, τ, σ²)`` are fitted by maximum likelihood with exact gradients
(``woodbury_sparse.fitting.fit``: L-BFGS-B, standard errors from the observed information),
in a fraction of the evaluations a derivative-free search needs; the posterior mean of the
latent process, ``E[x | y] = O⁻¹ Sᵀ A y``, fills the missing weeks.

Needs statsmodels (the ``examples`` extra); without it the example says so and stops.
Run with ``python examples/mauna_loa.py`` (``--quick``: the five years 1962–1966, with
their missing weeks, and a few optimiser iterations). Figures go to ``examples/output/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import linalg, optimize, sparse
from scipy.sparse import linalg as splinalg

import woodbury_sparse as ws
from woodbury_sparse.fitting import fit
from woodbury_sparse.testing import ar1_precision, ar1_precision_derivative

OUTPUT = Path(__file__).resolve().parent / "output"


def load_weekly_co2():
    """``(dates, co2)`` of all weeks, ``co2`` NaN for the missing ones; None without statsmodels."""
    try:
        from statsmodels.datasets import co2
    except ImportError:
        return None
    data = co2.load_pandas().data
    return data.index.to_numpy(), data["co2"].to_numpy(dtype=float)


def design(t: np.ndarray, degree: int = 3, harmonics: int = 3) -> np.ndarray:
    """Polynomial trend in (scaled) time and annual harmonics; ``t`` in years."""
    s = (t - t.mean()) / (t.max() - t.min() + 1e-12)
    columns = [s**k for k in range(degree + 1)]
    for k in range(1, harmonics + 1):
        columns += [np.cos(2 * np.pi * k * t), np.sin(2 * np.pi * k * t)]
    return np.column_stack(columns)


def covariance(theta: np.ndarray, S: sparse.csc_array) -> ws.SymmetricWoodburyMatrix:
    """``σ² I + S (τ⁻² Q_ρ)⁻¹ Sᵀ`` for unconstrained ``θ = (atanh ρ, log τ, log σ²)``."""
    rho, tau, sigma2 = unpack(theta)
    n_obs, n_weeks = S.shape
    A = sparse.eye_array(n_obs) / sigma2
    B = ar1_precision(n_weeks, rho) / tau**2
    return ws.WoodburyMatrix(A, B, X=S)


def model(theta, S: sparse.csc_array):
    """``(A, B, ∂A, ∂B)`` at ``θ = (ρ, τ, σ²)``: ``A = σ⁻² I``, ``B = τ⁻² Q_ρ`` (for ``fit``)."""
    rho, tau, sigma2 = theta
    n_obs, n_weeks = S.shape
    Q = ar1_precision(n_weeks, rho)
    dB = [ar1_precision_derivative(n_weeks, rho) / tau**2, -2.0 * Q / tau**3, None]
    return sparse.eye_array(n_obs) / sigma2, Q / tau**2, [None, None, -1.0 / sigma2**2], dB


def unpack(theta: np.ndarray) -> tuple[float, float, float]:
    """``(ρ, τ, σ²)`` from the unconstrained parameters."""
    return float(np.tanh(theta[0])), float(np.exp(theta[1])), float(np.exp(theta[2]))


def main(quick: bool = False, outdir: Path = OUTPUT) -> dict[str, float]:
    outdir = Path(outdir)
    loaded = load_weekly_co2()
    if loaded is None:
        print(
            "statsmodels is not installed, so the Mauna Loa CO₂ data are not available: "
            "skipping this example (pip install statsmodels, or the package's `examples` extra)"
        )
        return {}
    outdir.mkdir(parents=True, exist_ok=True)
    dates, co2 = loaded
    if quick:  # five years, 1962–1966, with a long gap in 1964 (the last years have none)
        keep = (dates >= np.datetime64("1962-01-01")) & (dates < np.datetime64("1967-01-01"))
        dates, co2 = dates[keep], co2[keep]
    observed = np.isfinite(co2)
    n_weeks, n_obs = co2.size, int(observed.sum())
    years = 1970.0 + dates.astype("datetime64[D]").astype(float) / 365.2425

    # -- trend and annual cycle by least squares (observed weeks) ---------------------------
    D = design(years)
    coef, *_ = linalg.lstsq(D[observed], co2[observed])
    fitted = D @ coef
    y = co2[observed] - fitted[observed]
    idx = np.flatnonzero(observed)
    S = sparse.csc_array((np.ones(n_obs), (np.arange(n_obs), idx)), shape=(n_obs, n_weeks))
    print(
        f"Mauna Loa weekly CO₂, {str(dates[0])[:10]} – {str(dates[-1])[:10]}: {n_weeks} weeks, "
        f"{n_weeks - n_obs} missing; cubic trend + 3 annual harmonics removed "
        f"(residual sd {y.std():.3f} ppm)"
    )

    # -- maximum likelihood for (ρ, τ, σ²), with exact gradients -----------------------------
    theta0 = np.array([np.arctanh(0.5), np.log(0.5 * y.std()), np.log(0.5 * y.var())])
    W0 = covariance(theta0, S)
    print(f"  W = {W0!r}")
    print(
        f"  capacitance O = B + Sᵀ A S: {W0.capacitance.shape} sparse, nnz = {W0.capacitance.nnz}"
    )
    result = fit(
        lambda theta: model(theta, S),
        unpack(theta0),
        y,
        X=S,
        transforms=["correlation", "positive", "positive"],
        names=["ρ", "τ", "σ²"],
        options={"maxiter": 8 if quick else 200},
    )
    fit_time = result.seconds
    rho, tau, sigma2 = result.theta
    loglik = result.loglik
    print(
        f"  maximum likelihood with exact gradients (L-BFGS-B, {result.nit} iterations, "
        f"{result.nfev} log likelihoods and gradients in {fit_time:.2f} s):"
    )
    print("    " + result.summary().replace("\n", "\n    "))
    print(
        f"    ρ = {rho:.4f} per week, innovation sd τ = {tau:.4f} ppm "
        f"(process sd {tau / np.sqrt(1 - rho**2):.3f} ppm), noise variance σ² = "
        f"{sigma2:.4f} ppm² (sd {np.sqrt(sigma2):.3f}); log likelihood {loglik:.3f}"
    )
    # The derivative-free fit this replaces: the same optimum, several times the evaluations.
    evaluations = []

    def negloglik(theta: np.ndarray) -> float:
        evaluations.append(1)
        return -ws.dwnorm(y, 0.0, covariance(theta, S), log=True)

    free = optimize.minimize(
        negloglik, theta0, method="L-BFGS-B", options={"maxiter": 8 if quick else 200}
    )
    print(
        f"    derivative-free (finite-difference L-BFGS-B): {len(evaluations)} log likelihoods, "
        f"log likelihood {-free.fun:.6f} (Δ = {-free.fun - loglik:.1e})"
    )

    # -- check against the dense n_obs × n_obs computation at the optimum ---------------------
    W = result.W
    start = time.perf_counter()
    dense = W.toarray()
    chol = linalg.cho_factor(dense, lower=True)
    dense_loglik = -0.5 * (
        n_obs * np.log(2 * np.pi)
        + 2 * np.sum(np.log(np.diag(chol[0])))
        + y @ linalg.cho_solve(chol, y)
    )
    dense_time = time.perf_counter() - start
    print(
        f"    dense check: log likelihood {dense_loglik:.3f} (|Δ| = "
        f"{abs(dense_loglik - loglik):.1e}) in {dense_time * 1e3:.0f} ms vs "
        f"{fit_time / result.nfev * 1e3:.1f} ms per value and gradient through the Woodbury "
        "operator"
    )

    # -- posterior mean of the latent process: E[x | y] = O⁻¹ Sᵀ A y ------------------------
    start = time.perf_counter()
    capacitance = W.capacitance  # O = B + Sᵀ A S, sparse tridiagonal (n_weeks × n_weeks)
    x_mean = splinalg.spsolve(capacitance, S.T @ (y / sigma2))
    post_time = time.perf_counter() - start
    # the same by the push-through identity O⁻¹ Sᵀ A = B⁻¹ Sᵀ W⁻¹ (one solve with W)
    B = ar1_precision(n_weeks, rho) / tau**2
    x_check = splinalg.spsolve(sparse.csc_array(B), S.T @ W.solve(y))
    agreement = np.max(np.abs(x_mean - x_check)) / np.max(np.abs(x_mean))
    print(
        f"  posterior mean of x over all {n_weeks} weeks in {post_time * 1e3:.1f} ms "
        f"(O⁻¹ Sᵀ A y; B⁻¹ Sᵀ W⁻¹ y agrees to {agreement:.1e}), the {n_weeks - n_obs} "
        "missing weeks included"
    )

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    ax1.plot(years[observed], co2[observed], ".", ms=2, color="0.5", label="observed")
    ax1.plot(years, fitted + x_mean, lw=0.8, color="C0", label="trend + cycle + E[x | y]")
    if n_weeks > n_obs:
        ax1.plot(
            years[~observed],
            (fitted + x_mean)[~observed],
            "o",
            ms=3,
            mfc="none",
            color="C3",
            label="missing weeks (posterior mean)",
        )
    ax1.set(ylabel="CO₂ (ppm)", title="Mauna Loa weekly CO₂")
    ax1.legend(fontsize=8)
    ax2.plot(years[observed], y, ".", ms=2, color="0.5", label="residual y")
    ax2.plot(years, x_mean, lw=0.8, color="C0", label="posterior mean E[x | y]")
    if n_weeks > n_obs:
        ax2.plot(years[~observed], x_mean[~observed], "o", ms=3, mfc="none", color="C3")
    ax2.set(
        xlabel="year",
        ylabel="ppm",
        title=f"latent AR(1): ρ = {rho:.3f}, τ = {tau:.3f}, σ = {np.sqrt(sigma2):.3f}",
    )
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(outdir / "mauna_loa.png", dpi=100)
    plt.close(fig)

    return {
        "rho": rho,
        "tau": tau,
        "sigma2": sigma2,
        "loglik": float(loglik),
        "dense_loglik": float(dense_loglik),
        "posterior_agreement": float(agreement),
        "n_weeks": n_weeks,
        "n_obs": n_obs,
        "fit_seconds": fit_time,
        "stderr": [float(se) for se in result.stderr],
        "evaluations": result.nfev,
        "derivative_free_evaluations": len(evaluations),
        "derivative_free_loglik": float(-free.fun),
    }


if __name__ == "__main__":
    from _cli import run_example

    run_example(main, __doc__)
