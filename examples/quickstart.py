"""Quickstart: the two headline uses of a Woodbury matrix, checked against dense NumPy.

1. Bayesian linear regression, ``Y ~ N(0, σ² I + X Q⁻¹ Xᵀ)`` with n = 2000, p = 20.
2. AR(1) plus white noise, ``Y ~ N(0, Q₁⁻¹ + Q₂⁻¹)`` with n = 10 000, ρ = 0.95.

Run with ``python examples/quickstart.py``; prints its results and writes no figures.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse.testing import ar1_precision

OUTPUT = Path(__file__).resolve().parent / "output"


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def regression(n: int, p: int, rng: np.random.Generator) -> None:
    X = rng.standard_normal((n, p))
    W = ws.WoodburyMatrix(sparse.eye_array(n), np.eye(p), X=X)  # σ² = 1, Q_β = I
    y = rng.standard_normal(n)
    (x, logdet), seconds = _timed(lambda: (W.solve(y), W.logdet()))
    dense = np.eye(n) + X @ X.T
    (x_ref, logdet_ref), dense_seconds = _timed(
        lambda: (np.linalg.solve(dense, y), np.linalg.slogdet(dense)[1])
    )
    print(f"regression  n={n} p={p}: {W!r}")
    print(f"  solve + logdet: {seconds * 1e3:8.2f} ms   dense: {dense_seconds * 1e3:8.2f} ms")
    print(
        f"  max |x − x_dense| = {np.max(np.abs(x - x_ref)):.2e}, "
        f"|logdet − dense| = {abs(logdet - logdet_ref):.2e}"
    )
    print(f"  memory: operator {W.nbytes / 1e6:.2f} MB vs dense {dense.nbytes / 1e6:.1f} MB")


def ar1_plus_noise(n: int, rho: float, rng: np.random.Generator) -> None:
    W = ws.WoodburyMatrix(ar1_precision(n, rho), sparse.eye_array(n))
    y = rng.standard_normal(n)
    (x, logdet), seconds = _timed(lambda: (W.solve(y), W.logdet()))
    residual = np.linalg.norm(W @ x - y) / np.linalg.norm(y)
    print(f"AR(1)+noise n={n} rho={rho}: {type(W).__name__} (symmetry detected)")
    print(
        f"  solve + logdet: {seconds * 1e3:8.2f} ms, logdet = {logdet:.6f}, "
        f"relative residual ‖W x − y‖/‖y‖ = {residual:.1e}"
    )
    small = ws.WoodburyMatrix(ar1_precision(300, rho), sparse.eye_array(300))
    dense = small.toarray()
    error = abs(small.logdet() - np.linalg.slogdet(dense)[1])
    print(f"  check at n=300: |logdet − dense| = {error:.2e}")


def main(quick: bool = False, outdir: Path = OUTPUT) -> None:
    rng = np.random.default_rng(20200721)
    print(f"woodbury_sparse {ws.__version__}, backend {ws.backend_info()}")
    regression(200 if quick else 2000, 20, rng)
    ar1_plus_noise(1000 if quick else 10_000, 0.95, rng)


if __name__ == "__main__":
    main()
