"""SciPy interoperability: Krylov solvers, preconditioning and ``scipy.stats``.

A Woodbury matrix is a ``scipy.sparse.linalg.LinearOperator``, so SciPy's iterative
solvers take it as it is, and its inverse ``W.inv()`` (another ``LinearOperator``, applied
with the factorisations of ``A``, ``B`` and the capacitance) is a preconditioner. Here
``W = Q_ρ⁻¹ + X Xᵀ`` — a stationary AR(1) process (ρ = 0.95, tridiagonal precision
``Q_ρ``) plus ``p = 10`` random regression directions — on n = 2000 points:

* ``cg`` and ``minres`` on ``W`` without a preconditioner, with ``W(ρ = 0.9).inv()`` (the
  factorisations left over from a neighbouring parameter value, as in a likelihood sweep)
  and with the exact ``W.inv()``; iteration counts and residual histories are printed and
  plotted;
* ``gmres`` on a general (non-symmetric) ``W = A⁻¹ + U B⁻¹ V``, with and without
  ``W.inv()``;
* ``W.as_covariance()`` in ``scipy.stats.multivariate_normal``: its ``logpdf`` against
  :class:`woodbury_sparse.WoodburyNormal` and against a dense Cholesky of ``W``, and
  ``rvs`` whose Mahalanobis distances follow the χ²ₙ distribution.

Run with ``python examples/scipy_interop.py`` (``--quick`` for small sizes). Figures go
to ``examples/output/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import linalg, sparse, stats
from scipy.sparse import linalg as splinalg

import woodbury_sparse as ws
from woodbury_sparse.testing import ar1_precision, random_sparse

OUTPUT = Path(__file__).resolve().parent / "output"


def covariance(n: int, rho: float, X: np.ndarray) -> ws.SymmetricWoodburyMatrix:
    """``Q_ρ⁻¹ + X Xᵀ``: ``A = Q_ρ`` (sparse), ``B = I``."""
    return ws.WoodburyMatrix(ar1_precision(n, rho), sparse.eye_array(X.shape[1]), X=X)


def _krylov(solver, op, b, M=None, **kwargs):
    """Run ``solver``; return (solution, true relative residual history, seconds)."""
    norm_b = np.linalg.norm(b)
    history = [1.0]

    def record(xk):
        history.append(np.linalg.norm(b - op @ xk) / norm_b)

    start = time.perf_counter()
    x, info = solver(op, b, M=M, callback=record, **kwargs)
    seconds = time.perf_counter() - start
    if info != 0:
        print(f"    ({solver.__name__} stopped with info = {info})")
    return x, np.array(history), seconds


def _gmres(op, b, M=None, rtol=1e-10):
    """GMRES with its (preconditioned) relative residual recorded at every inner step."""
    history = [1.0]
    start = time.perf_counter()
    x, info = splinalg.gmres(
        op,
        b,
        M=M,
        rtol=rtol,
        restart=200,
        maxiter=20,
        callback=history.append,
        callback_type="pr_norm",
    )
    seconds = time.perf_counter() - start
    if info != 0:
        print(f"    (gmres stopped with info = {info})")
    return x, np.array(history), seconds


def _dense_logpdf(dense: np.ndarray, mean: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The reference: log density through a dense Cholesky factorisation of ``W``.

    (``scipy.stats.multivariate_normal(mean, dense)`` gives the same numbers but goes
    through a symmetric eigendecomposition, several times slower for large ``n``.)
    """
    chol = linalg.cho_factor(dense, lower=True)
    dev = (points - mean).T
    quad = np.einsum("ij,ij->j", dev, linalg.cho_solve(chol, dev))
    logdet = 2.0 * np.sum(np.log(np.diag(chol[0])))
    return -0.5 * (dense.shape[0] * np.log(2.0 * np.pi) + logdet + quad)


def main(quick: bool = False, outdir: Path = OUTPUT) -> dict[str, float]:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    n, p = (600, 5) if quick else (2000, 10)
    rho, rho_near = 0.95, 0.90
    rtol = 1e-10
    rng = np.random.default_rng(20240601)
    X = rng.standard_normal((n, p)) / np.sqrt(p)
    W = covariance(n, rho, X)
    b = rng.standard_normal(n)
    print(f"SciPy interoperability, n = {n}, p = {p}: W = Q_ρ⁻¹ + X Xᵀ, ρ = {rho}")
    print(f"  W = {W!r}")

    # -- Krylov solvers on the operator -----------------------------------------------------
    start = time.perf_counter()
    x_direct = W.solve(b)
    direct_time = time.perf_counter() - start
    print(f"  direct W.solve: {direct_time * 1e3:.1f} ms (factorises A, B, O on first use)")
    preconditioners = {
        "none": None,
        f"W(ρ={rho_near}).inv()": covariance(n, rho_near, X).inv(),
        "W.inv() (exact)": W.inv(),
    }
    print(
        f"  Krylov solvers to rtol = {rtol:g} (minres stops on its own estimate of the "
        "residual relative to ‖W‖‖x‖, hence its larger true residuals):"
    )
    results: dict[str, float] = {}
    histories = {}
    for solver in (splinalg.cg, splinalg.minres):
        for label, M in preconditioners.items():
            x, hist, seconds = _krylov(solver, W, b, M=M, rtol=rtol, maxiter=5 * n)
            error = np.linalg.norm(x - x_direct) / np.linalg.norm(x_direct)
            iterations = hist.size - 1
            histories[f"{solver.__name__}, M = {label}"] = hist
            print(
                f"  {solver.__name__:6s} M = {label:21s}: {iterations:4d} iterations, "
                f"{seconds * 1e3:7.1f} ms, relative residual {hist[-1]:.1e}, "
                f"error vs W.solve {error:.1e}"
            )
            key = {"none": "none", "W.inv() (exact)": "exact"}.get(label, "neighbour")
            results[f"{solver.__name__}_iterations_{key}"] = iterations

    # -- GMRES on a general (non-symmetric) Woodbury matrix -----------------------------------
    m = n // 5
    # A and B diagonally dominant in expectation and a moderate U B⁻¹ V: W stays well
    # conditioned at any n (restarted GMRES stalls on badly conditioned non-normal W)
    A_general = sparse.csc_array(
        0.5 * random_sparse(n, n, 3.0 / n, rng) + 2.0 * sparse.eye_array(n)
    )
    U = 0.5 * random_sparse(n, m, 5.0 / n, rng)
    V = 0.5 * random_sparse(m, n, 5.0 / n, rng)
    B_general = sparse.csc_array(
        0.5 * random_sparse(m, m, 3.0 / m, rng) + 2.0 * sparse.eye_array(m)
    )
    G = ws.WoodburyMatrix(A_general, B_general, U=U, V=V)
    g_direct = G.solve(b)
    print(f"  general W = A⁻¹ + U B⁻¹ V: {G!r}")
    gmres_histories = {}
    for label, M in (("none", None), ("W.inv() (exact)", G.inv())):
        x, hist, seconds = _gmres(G, b, M=M, rtol=rtol)
        error = np.linalg.norm(x - g_direct) / np.linalg.norm(g_direct)
        gmres_histories[f"gmres, M = {label} (preconditioned residual)"] = hist
        print(
            f"  gmres  M = {label:21s}: {hist.size - 1:4d} iterations, {seconds * 1e3:7.1f} ms, "
            f"error vs W.solve {error:.1e}"
        )
        results[f"gmres_iterations_{'none' if M is None else 'exact'}"] = hist.size - 1

    # -- scipy.stats.multivariate_normal with W.as_covariance() --------------------------------
    mean = np.linspace(-1.0, 1.0, n)
    start = time.perf_counter()
    cov = W.as_covariance()
    cov_time = time.perf_counter() - start
    mvn = stats.multivariate_normal(mean, cov=cov)
    points = mean + rng.standard_normal((5, n))
    start = time.perf_counter()
    logp_scipy = mvn.logpdf(points)
    scipy_time = time.perf_counter() - start
    logp_ws = ws.WoodburyNormal(mean, W).logpdf(points)
    start = time.perf_counter()
    logp_dense = _dense_logpdf(W.toarray(), mean, points)
    dense_time = time.perf_counter() - start
    diff_ws = np.max(np.abs(logp_scipy - logp_ws) / np.abs(logp_ws))
    diff_dense = np.max(np.abs(logp_scipy - logp_dense) / np.abs(logp_dense))
    print(
        f"  W.as_covariance(): {type(cov).__name__}, built in {cov_time * 1e3:.1f} ms "
        "(exact square root built on the sparse Cholesky factor of A)"
    )
    print(
        f"  multivariate_normal(mean, cov=W.as_covariance()).logpdf of 5 points: "
        f"{logp_scipy[0]:.6f}, ... ({scipy_time * 1e3:.1f} ms)"
    )
    print(
        f"    max relative difference vs WoodburyNormal.logpdf {diff_ws:.1e}, vs a dense "
        f"Cholesky of W {diff_dense:.1e} (dense: {dense_time * 1e3:.0f} ms, forms the n×n W)"
    )
    draws_count = 500 if quick else 2000
    start = time.perf_counter()
    draws = mvn.rvs(size=draws_count, random_state=np.random.default_rng(7))
    rvs_time = time.perf_counter() - start
    maha = ws.mahalanobis(draws, mean, W)
    ks = stats.kstest(maha, stats.chi2(n).cdf)
    print(
        f"  rvs: {draws_count} draws in {rvs_time * 1e3:.1f} ms; Mahalanobis distances: "
        f"mean / n = {maha.mean() / n:.4f} (expected 1 ± {np.sqrt(2 / n / draws_count):.4f}), "
        f"Kolmogorov–Smirnov vs χ²({n}): p = {ks.pvalue:.2f}"
    )

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for label, hist in {**histories, **gmres_histories}.items():
        style = "-" if label.startswith("cg") else ("--" if label.startswith("minres") else ":")
        ax1.semilogy(np.maximum(hist, 1e-17), style, label=label, lw=1.2)
    ax1.axhline(rtol, color="grey", lw=0.5)
    ax1.set(
        xlabel="iteration",
        ylabel="relative residual",
        title=f"Krylov solvers on W (n = {n})",
    )
    ax1.legend(fontsize=7, loc="upper right")
    grid = np.linspace(maha.min(), maha.max(), 200)
    ax2.hist(maha, bins=40, density=True, alpha=0.6, label="draws of rvs()")
    ax2.plot(grid, stats.chi2(n).pdf(grid), "k", label=f"χ²({n})")
    ax2.set(
        xlabel="squared Mahalanobis distance",
        title="multivariate_normal(cov=W.as_covariance()).rvs",
    )
    ax2.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(outdir / "scipy_interop.png", dpi=100)
    plt.close(fig)

    results.update(
        logpdf_rel_diff_woodbury=float(diff_ws),
        logpdf_rel_diff_dense=float(diff_dense),
        maha_mean_over_n=float(maha.mean() / n),
        ks_pvalue=float(ks.pvalue),
    )
    return results


if __name__ == "__main__":
    from _cli import run_example

    run_example(main, __doc__)
