"""The log density's quadratic form ``bᵀ W⁻¹ b`` by one pass (``bᵀ A b − rᵀ O⁻¹ r``).

Where the two terms cancel by at most ``QUADRATIC_CANCELLATION`` the one-pass form is
taken; elsewhere the refined solve. Both against a long-double reference computed by the
form without cancellation, ``(b − X β)ᵀ A (b − X β) + βᵀ B β`` with ``β = O⁻¹ Xᵀ A b``,
which is stationary in ``β`` (errors in ``β`` enter squared).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse._core import QUADRATIC_CANCELLATION

LD = np.longdouble


def _cholesky_solve(o, r):
    """``o⁻¹ r`` in long double (small ``o``), with one step of refinement."""
    p = o.shape[0]
    low = np.zeros((p, p), dtype=LD)
    for j in range(p):
        low[j, j] = np.sqrt(o[j, j] - np.sum(low[j, :j] ** 2))
        for i in range(j + 1, p):
            low[i, j] = (o[i, j] - np.sum(low[i, :j] * low[j, :j])) / low[j, j]

    def once(rhs):
        z = np.zeros(p, dtype=LD)
        for i in range(p):
            z[i] = (rhs[i] - np.sum(low[i, :i] * z[:i])) / low[i, i]
        x = np.zeros(p, dtype=LD)
        for i in reversed(range(p)):
            x[i] = (z[i] - np.sum(low[i + 1 :, i] * x[i + 1 :])) / low[i, i]
        return x

    x = once(r)
    return x + once(r - o @ x)


def _reference(a, b_block, x, y):
    """``yᵀ (A⁻¹ + X B⁻¹ Xᵀ)⁻¹ y`` in long double, for a dense symmetric ``A``."""
    a, b_block, x, y = (np.asarray(m, dtype=LD) for m in (a, b_block, x, y))
    beta = _cholesky_solve(b_block + x.T @ a @ x, x.T @ (a @ y))
    res = y - x @ beta
    return float(res @ (a @ res) + beta @ (b_block @ beta))


def _problem(n, p, sigma2, tau, kind, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p))
    signal = x @ (rng.standard_normal(p) / np.sqrt(tau))
    y = signal + noise * np.sqrt(sigma2) * rng.standard_normal(n)
    d = np.full(n, 1 / sigma2)
    if kind == "diagonal":
        a = sparse.diags_array(d)
        dense_a = np.diag(d)
    else:  # a tridiagonal precision, diagonally dominant
        off = np.full(n - 1, -0.3 / sigma2)
        a = sparse.diags_array([off, d, off], offsets=[-1, 0, 1], format="csc")
        dense_a = a.toarray()
    return ws.SymmetricWoodburyMatrix(a, tau * np.eye(p), X=x), dense_a, tau * np.eye(p), x, y


@pytest.mark.parametrize("kind", ["diagonal", "sparse"])
@pytest.mark.parametrize(
    ("sigma2", "noise", "bound"),
    [
        (1.0, 1.0, 1e-13),  # terms within a factor of about 10: the one-pass form
        (0.5, 1.0, 1e-13),  # the benchmark's regression: a factor of about 20
        (1e-4, 1.0, 1e-12),  # a factor of about 10⁵: the refined solve
        (1e-8, 1e-3, 1e-10),  # y almost in the span of X, A ≈ 10⁸: the refined solve
    ],
)
def test_quadratic_form_against_long_double(kind, sigma2, noise, bound):
    W, a, b, x, y = _problem(400, 8, sigma2, 2.0, kind, noise=noise)
    exact = _reference(a, b, x, y)
    got = ws.mahalanobis(y, cov=W)
    assert abs(got - exact) <= bound * exact
    logdet = W.logdet()
    density = ws.dwnorm(y, covariance=W, log=True)
    assert density == pytest.approx(-0.5 * (y.size * np.log(2 * np.pi) + logdet + got), rel=1e-15)


def test_rows_mix_both_forms():
    """Rows that cancel take the solve, the others the one-pass form; each as alone
    (to round-off: one row at a time takes a triangular solve and a 2-norm)."""
    W, a, b, x, y = _problem(300, 6, 1e-6, 2.0, "diagonal", noise=1e-3)
    rng = np.random.default_rng(1)
    benign = rng.standard_normal(300)  # far from the span of X: no cancellation
    rows = np.stack([y, benign, y + benign, 1e-3 * benign])
    got = ws.mahalanobis(rows, cov=W)
    for row, value in zip(rows, got, strict=True):
        exact = _reference(a, b, x, row)
        assert abs(value - exact) <= 1e-10 * exact
        assert value == pytest.approx(ws.mahalanobis(row, cov=W), rel=1e-13)


def test_one_pass_is_chosen_only_without_cancellation(monkeypatch):
    """The solve runs exactly for the rows whose terms cancel beyond the factor."""
    W, *_, y = _problem(300, 6, 0.5, 2.0, "diagonal")
    state = W._state
    calls = []
    original = type(state)._solved_quadratic

    def spy(self, dev):
        calls.append(np.shape(dev))
        return original(self, dev)

    monkeypatch.setattr(type(state), "_solved_quadratic", spy)
    d = np.full(300, 2.0)
    first = y @ (d * y)
    quad = ws.mahalanobis(y, cov=W)
    assert (first <= QUADRATIC_CANCELLATION * quad) == (calls == [])
    calls.clear()
    W2, _, _, _, y2 = _problem(300, 6, 1e-8, 2.0, "diagonal", noise=1e-3)
    ws.mahalanobis(y2, cov=W2)
    assert calls == [(300,)]


def test_non_finite_points_still_raise():
    W, *_ = _problem(50, 3, 0.5, 2.0, "diagonal")
    y = np.ones(50)
    y[7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ws.dwnorm(y, covariance=W, log=True)


def test_not_positive_definite_still_raises():
    n = 20
    a = sparse.diags_array(np.ones(n))
    x = np.ones((n, 1))
    W = ws.SymmetricWoodburyMatrix(a, -0.5 * np.eye(1), X=x)  # W = I − 2 11ᵀ: indefinite
    with pytest.raises(ws.NotPositiveDefiniteError):
        ws.dwnorm(np.ones(n), covariance=W, log=True)
