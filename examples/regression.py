"""Bayesian linear regression: the marginal log density of Y via a Woodbury covariance.

``Y | β ~ N(Xβ, σ² I)`` and ``β ~ N(μ_β, Q_β⁻¹)`` give ``Y ~ N(X μ_β, σ² I + X Q_β⁻¹ Xᵀ)``:
a Woodbury matrix with ``A = σ⁻² I``, ``B = Q_β`` and ``X``. With n = 2000, p = 20,
σ² = 1 and Q_β = I (the R vignette's example 1), the log density of a draw is computed
through the operator and directly with the dense n×n matrix, and the two are compared.

Run with ``python examples/regression.py`` (``--quick`` for small sizes). Figures go to
``examples/output/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import linalg, sparse

import woodbury_sparse as ws

OUTPUT = Path(__file__).resolve().parent / "output"


def _timed(fn, repeat: int = 1):
    best, value = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return value, best


def main(quick: bool = False, outdir: Path = OUTPUT) -> dict[str, float]:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    n, p = (300, 5) if quick else (2000, 20)
    sigma2 = 1.0
    rng = np.random.default_rng(20200721)
    X = rng.standard_normal((n, p))
    mu_beta = np.zeros(p)
    Sigma_Y = ws.WoodburyMatrix(sparse.eye_array(n) / sigma2, sparse.eye_array(p), X=X)
    mean = X @ mu_beta
    Y = ws.rwnorm(1, mean, Sigma_Y, random_state=rng)

    # first call (factorises A, B and O), then the cached repeat
    _, first = _timed(
        lambda: ws.dwnorm(
            Y, mean, ws.WoodburyMatrix(sparse.eye_array(n), sparse.eye_array(p), X=X), log=True
        )
    )
    logp, woodbury_time = _timed(lambda: ws.dwnorm(Y, mean, Sigma_Y, log=True), repeat=5)

    def direct() -> float:
        dense = sigma2 * np.eye(n) + X @ X.T
        chol = linalg.cho_factor(dense, lower=True)
        r = Y - mean
        quad = r @ linalg.cho_solve(chol, r)
        logdet = 2 * np.sum(np.log(np.diag(chol[0])))
        return -0.5 * (n * np.log(2 * np.pi) + logdet + quad)

    logp_direct, direct_time = _timed(direct, repeat=2)
    dense_bytes = n * n * 8
    print(f"Bayesian linear regression, n = {n}, p = {p}, σ² = {sigma2}, Q_β = I")
    print(f"  Σ_Y = {Sigma_Y!r}")
    print(
        f"  log density via Woodbury : {logp:.6f}   ({woodbury_time * 1e3:.2f} ms cached, "
        f"{first * 1e3:.2f} ms first call on a fresh operator)"
    )
    print(f"  log density, dense direct: {logp_direct:.6f}   ({direct_time * 1e3:.2f} ms)")
    print(
        f"  |difference| = {abs(logp - logp_direct):.2e}; "
        f"direct / Woodbury time = {direct_time / woodbury_time:.0f}×"
    )
    print(
        f"  memory: operator {Sigma_Y.nbytes:,} bytes vs dense {dense_bytes:,} bytes "
        f"({dense_bytes / Sigma_Y.nbytes:.0f}× smaller)"
    )

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    axes[0].plot(Y, lw=0.6)
    axes[0].set(title="a draw of Y ~ N(Xμ_β, σ²I + XXᵀ)", xlabel="observation")
    axes[1].bar(["Woodbury", "dense"], [woodbury_time * 1e3, direct_time * 1e3])
    axes[1].set(title=f"log density time (n={n}, p={p})", ylabel="ms", yscale="log")
    fig.tight_layout()
    fig.savefig(outdir / "regression.png", dpi=100)
    plt.close(fig)
    return {
        "logpdf": float(logp),
        "logpdf_direct": float(logp_direct),
        "woodbury_seconds": woodbury_time,
        "direct_seconds": direct_time,
        "operator_bytes": float(Sigma_Y.nbytes),
        "dense_bytes": float(dense_bytes),
    }


if __name__ == "__main__":
    from _cli import run_example

    run_example(main, __doc__)
