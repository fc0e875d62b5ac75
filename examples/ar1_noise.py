"""AR(1) plus white noise: sampling, log density and a likelihood profile over ρ.

``Y = Y₁ + Y₂`` with ``Y₁`` a stationary AR(1) process (precision ``Q₁``, tridiagonal) and
``Y₂`` white noise (precision ``Q₂ = σ⁻² I``): ``Y ~ N(0, Q₁⁻¹ + Q₂⁻¹)``, a Woodbury matrix
with ``A = Q₁`` and ``B = Q₂`` (``X = I``). The R vignette's example 2: n = 10 000,
ρ = 0.95, σ² = 1. The sample is drawn without ever factorising the dense covariance, and
the log likelihood is profiled over a grid of ρ — one new operator per value, each costing
one sparse Cholesky of a tridiagonal matrix — and maximised with exact gradients
(``woodbury_sparse.fitting.fit``), whose optimum and standard error the figure adds. Finally
the posterior of the AR(1) component given the data (``ws.latent_posterior``): its mean, a
95 % credible band and draws, on a data set whose true AR(1) path is known.

Run with ``python examples/ar1_noise.py`` (``--quick`` for small sizes). Figures go to
``examples/output/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse.fitting import fit
from woodbury_sparse.testing import ar1_precision, ar1_precision_derivative

OUTPUT = Path(__file__).resolve().parent / "output"


def covariance(n: int, rho: float, sigma2: float = 1.0) -> ws.SymmetricWoodburyMatrix:
    """``Q₁(ρ)⁻¹ + σ² I`` as a Woodbury matrix."""
    return ws.WoodburyMatrix(ar1_precision(n, rho), sparse.eye_array(n) / sigma2)


def posterior_of_the_process(
    n: int, rho: float, sigma2: float, outdir: Path, quick: bool
) -> dict[str, float]:
    """The AR(1) component given ``y``: posterior mean, 95 % band and draws, against the truth.

    A data set whose components are known: ``x ~ N(0, Q₁⁻¹)`` drawn through its sparse
    precision (``PrecisionNormal``), white noise ``e``, ``y = x + e``. In ``W = A⁻¹ + B⁻¹``
    with ``A = Q₁`` the AR(1) is the first term, so ``x | y`` is the posterior's ``noise``
    (``e | y`` of the library's ``y = e + X z``); written with the roles swapped
    (``A = σ⁻² I``, ``B = Q₁``) it is the ``latent`` part (here through the frozen
    ``WoodburyNormal(0, W).posterior(y)``). Both are computed and compared.
    """
    rng = np.random.default_rng(7)
    Q1 = ar1_precision(n, rho)
    x = ws.PrecisionNormal(np.zeros(n), Q1).rvs(random_state=rng).ravel()
    y = x + np.sqrt(sigma2) * rng.standard_normal(n)

    start = time.perf_counter()
    posterior = ws.latent_posterior(covariance(n, rho, sigma2), y)
    x_post = posterior.noise  # the AR(1) term of W = Q₁⁻¹ + σ² I
    x_mean, x_sd = np.asarray(x_post.mean), np.asarray(x_post.std())
    post_time = time.perf_counter() - start
    # the frozen spelling: WoodburyNormal(mean, W).posterior(y) is latent_posterior(W, y, mean)
    swapped = ws.WoodburyNormal(0.0, ws.WoodburyMatrix(sparse.eye_array(n) / sigma2, Q1)).posterior(
        y
    )
    swap_error = max(
        np.max(np.abs(np.asarray(swapped.latent.mean) - x_mean)) / np.max(np.abs(x_mean)),
        np.max(np.abs(np.asarray(swapped.latent.std()) - x_sd) / x_sd),
    )
    band = 1.959963984540054 * x_sd  # ± Φ⁻¹(0.975) sd
    coverage = float(np.mean(np.abs(x - x_mean) <= band))
    draws = x_post.rvs(size=3, random_state=np.random.default_rng(8))
    print(
        f"  posterior of the AR(1) component given y (n = {n}) in {post_time * 1e3:.1f} ms: "
        f"sd {x_sd.min():.3f}–{x_sd.max():.3f} (larger at the ends, one neighbour); "
        f"the 95 % band covers {100 * coverage:.1f} % of the true path; swapped roles "
        f"(A = σ⁻² I, B = Q₁) agree to {swap_error:.1e}"
    )
    result = {"coverage": coverage, "swap_error": float(swap_error)}
    if quick:  # the dense reference: Cov(x | y) = (Q₁ + σ⁻² I)⁻¹, mean Cov · y / σ²
        cov = np.linalg.inv(Q1.toarray() + np.eye(n) / sigma2)
        dense_mean, dense_sd = cov @ y / sigma2, np.sqrt(np.diag(cov))
        result["dense_error"] = float(
            max(
                np.max(np.abs(x_mean - dense_mean)) / np.max(np.abs(dense_mean)),
                np.max(np.abs(x_sd - dense_sd) / dense_sd),
            )
        )
        result["condition_number"] = float(np.linalg.cond(cov))
        print(f"    dense check (n = {n}): {result['dense_error']:.1e}")

    window = slice(0, min(n, 200))
    t = np.arange(n)[window]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    ax1.plot(t, y[window], ".", ms=3, color="0.55", label="data y = x + e")
    ax1.fill_between(
        t,
        (x_mean - band)[window],
        (x_mean + band)[window],
        color="C0",
        alpha=0.3,
        lw=0,
        label="95 % credible band of x",
    )
    ax1.plot(t, x_mean[window], color="C0", lw=1, label="posterior mean E[x | y]")
    ax1.plot(t, x[window], color="k", lw=0.8, ls="--", label="true AR(1) path x")
    ax1.set(
        ylabel="value",
        title=f"posterior of the AR(1) component x given y = x + e (ρ = {rho}, σ² = {sigma2:g}),"
        f"\nits 95 % band covers {100 * coverage:.1f} % of all {n} true values",
    )
    ax1.legend(fontsize=8, ncols=4, loc="upper left")
    ax2.fill_between(
        t, (x_mean - band)[window], (x_mean + band)[window], color="C0", alpha=0.15, lw=0
    )
    for k, draw in enumerate(draws):
        ax2.plot(t, draw[window], lw=0.7, color=f"C{k + 1}", label=f"posterior draw {k + 1}")
    ax2.plot(t, x[window], color="k", lw=0.8, ls="--", label="true path x")
    ax2.set(
        xlabel=f"time t (the first {t.size} of {n})",
        ylabel="value",
        title="draws from x | y (through the factor of O)",
    )
    ax2.legend(fontsize=8, ncols=4, loc="upper left")
    for ax in (ax1, ax2):  # room for the legends above the curves
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + 0.15 * (high - low))
    fig.tight_layout()
    fig.savefig(outdir / "ar1_noise_posterior.png", dpi=110)
    plt.close(fig)
    return result


def main(quick: bool = False, outdir: Path = OUTPUT) -> dict[str, float]:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    n = 500 if quick else 10_000
    rho = 0.95
    Sigma_Y = covariance(n, rho)
    print(
        f"AR(1) plus noise, n = {n}, ρ = {rho}, σ² = 1: {type(Sigma_Y).__name__} "
        "(symmetry detected)"
    )

    start = time.perf_counter()
    Y = ws.rwnorm(1, 0.0, Sigma_Y, random_state=np.random.default_rng(1))
    sample_time = time.perf_counter() - start
    start = time.perf_counter()
    logp = ws.dwnorm(Y, 0.0, Sigma_Y, log=True)
    logp_time = time.perf_counter() - start
    print(
        f"  drew Y in {sample_time * 1e3:.1f} ms; log density {logp:.4f} ({logp_time * 1e3:.1f} ms)"
    )

    grid = np.linspace(0.80, 0.99, 8 if quick else 39)
    start = time.perf_counter()
    # A sweep: each ρ gives a precision with the same pattern, so `refactor` reuses
    # CHOLMOD's symbolic analysis of A and of the capacitance (numeric work only).
    W = Sigma_Y
    profile = []
    for r in grid:
        W = W.refactor(A=ar1_precision(n, r))
        profile.append(ws.dwnorm(Y, 0.0, W, log=True))
    profile = np.array(profile)
    sweep_time = time.perf_counter() - start
    best = grid[np.argmax(profile)]
    print(
        f"  profile over {grid.size} values of ρ in {sweep_time:.2f} s "
        f"({sweep_time / grid.size * 1e3:.1f} ms per value); maximised at ρ ≈ {best:.3f}"
    )

    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot(Y, lw=0.4)
    ax.set(title=f"a draw of AR(1) (ρ = {rho}) plus white noise, n = {n}", xlabel="t")
    fig.tight_layout()
    fig.savefig(outdir / "ar1_noise_sample.png", dpi=100)
    plt.close(fig)

    # The same maximum with exact gradients: a handful of value-and-gradient evaluations.
    def model(theta):
        return (
            ar1_precision(n, theta[0]),
            sparse.eye_array(n),
            [ar1_precision_derivative(n, theta[0])],
            [None],
        )

    result = fit(model, [0.5], Y, transforms="correlation", names=["ρ"])
    rho_fit, rho_se = float(result.theta[0]), float(result.stderr[0])
    print(
        f"  with exact gradients: ρ = {rho_fit:.4f} ± {rho_se:.4f} in {result.nfev} evaluations "
        f"({result.seconds:.2f} s), log likelihood {result.loglik:.4f}"
    )

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(grid, profile, marker="o", ms=3)
    ax.axvspan(rho_fit - rho_se, rho_fit + rho_se, color="C2", alpha=0.2)
    ax.plot(
        rho_fit,
        result.loglik,
        "*",
        ms=12,
        color="C2",
        label=f"gradient fit ρ = {rho_fit:.3f} ± {rho_se:.3f}",
    )
    ax.axvline(rho, color="k", ls=":", label=f"true ρ = {rho}")
    ax.axvline(best, color="C3", ls="--", label=f"grid maximum ρ = {best:.3f}")
    ax.set(xlabel="ρ", ylabel="log likelihood", title="profile log likelihood")
    ax.legend(loc="lower center")
    fig.tight_layout()
    fig.savefig(outdir / "ar1_noise_profile.png", dpi=100)
    plt.close(fig)
    result = {
        "logpdf": float(logp),
        "rho_hat": float(best),
        "sweep_seconds": sweep_time,
        "rho_fit": rho_fit,
        "rho_se": rho_se,
    }
    return result | posterior_of_the_process(n, rho, 1.0, outdir, quick)


if __name__ == "__main__":
    from _cli import run_example

    run_example(main, __doc__)
