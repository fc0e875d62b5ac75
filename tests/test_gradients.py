"""Exact gradients of the log density (``woodbury_sparse.gradients``).

Two independent checks:

* against the dense formula ``½ tr(W⁻¹ ∂W) ...`` with NumPy inverses, for every positive
  definite problem of the catalogue and random derivatives on (and off) the blocks'
  patterns, to ``c·n·eps·κ`` of the terms' magnitudes;
* against central finite differences of :func:`woodbury_sparse.dwnorm` (a separate code
  path) on the statisticians' models, AR(1) + noise at n = 10⁵ included.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from conftest import CATALOGUE, EPS, case, dense
from woodbury_sparse._blocks import Block
from woodbury_sparse._factor import SelectedInverse
from woodbury_sparse.testing import (
    ar1_precision,
    ar1_precision_derivative,
    grid_precision,
)

PD = sorted(name for name, pr in CATALOGUE.items() if "pd" in pr.tags)


# -- the dense reference ----------------------------------------------------------------------
def dense_gradient(A, B, X, dev, dA, dB, dmu):
    """``∂ℓ/∂θₖ = −½ tr(W⁻¹ ∂W) + ½ rᵀ ∂W r + ∂μᵀ r`` with dense inverses, and the sum of
    the terms' magnitudes (the scale of the rounding errors)."""
    Ai, Bi = np.linalg.inv(A), np.linalg.inv(B)
    Wi = np.linalg.inv(Ai + X @ Bi @ X.T)
    r = Wi @ dev
    grad, scale = [], []
    for a, b, m in zip(dA, dB, dmu, strict=True):
        dW = -Ai @ a @ Ai - X @ Bi @ b @ Bi @ X.T
        terms = (-0.5 * np.trace(Wi @ dW), 0.5 * r @ dW @ r, m @ r)
        grad.append(sum(terms))
        scale.append(sum(abs(t) for t in terms) + abs(np.trace(Ai @ a)) + abs(np.trace(Bi @ b)))
    return np.array(grad), np.array(scale)


def on_pattern(m, rng):
    """A random symmetric matrix on the pattern of ``m`` (dense: everywhere)."""
    if sparse.issparse(m):
        m = sparse.csc_array(m)
        if m.nnz == m.shape[0] and np.all(m.diagonal() != 0):  # diagonal
            return rng.standard_normal(m.shape[0])
        pattern = sparse.csc_array((rng.standard_normal(m.nnz), m.indices, m.indptr), m.shape)
        return sparse.csc_array(pattern + pattern.T)
    m = dense(m)
    if np.count_nonzero(m - np.diag(np.diagonal(m))) == 0:
        return rng.standard_normal(m.shape[0])
    g = rng.standard_normal(m.shape)
    return g + g.T


def as_dense_derivative(d, n):
    if d is None:
        return np.zeros((n, n))
    if np.ndim(d) == 0:
        return d * np.eye(n)
    if np.ndim(d) == 1:
        return np.diag(d)
    return dense(d)


@pytest.mark.parametrize("name", PD)
def test_matches_the_dense_formula_across_the_catalogue(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    c = case(name)
    W = c.build()
    n, p = W.n, W.p
    Ad, Bd = dense(W.A), dense(W.B) if p else np.zeros((0, 0))
    Xd = dense(W.U) if p else np.zeros((n, 0))
    dA = [on_pattern(W.A, rng), 0.7, None, None]
    dB = [None, None, (on_pattern(W.B, rng) if p else None), (-1.3 if p else None)]
    dmean = [None, None, None, rng.standard_normal(n)]
    x = rng.standard_normal((2, n))
    mu = rng.standard_normal(n)
    value, grad = ws.log_density_gradient(x, mu, W, dA=dA, dB=dB, dmean=dmean)
    assert grad.shape == (2, 4)
    np.testing.assert_allclose(value, ws.dwnorm(x, mu, W, log=True), rtol=c.tol(), atol=0)
    dAd = [as_dense_derivative(d, n) for d in dA]
    dBd = [as_dense_derivative(d, p) for d in dB]
    dmd = [np.zeros(n) if d is None else d for d in dmean]
    for row in range(2):
        ref, scale = dense_gradient(Ad, Bd, Xd, x[row] - mu, dAd, dBd, dmd)
        # κ enters squared: r = W⁻¹ dev is followed by solves with A and B; c = 100.
        bound = 100 * max(n, p, 1) * EPS * c.kappa**2 * scale
        assert np.all(np.abs(grad[row] - ref) <= bound), (grad[row], ref, bound)


@pytest.mark.parametrize("name", ["ar1_plus_noise", "grid_gmrf_plus_noise", "spd_identity"])
def test_derivatives_off_the_pattern_are_exact_too(name):
    """Entries outside the factor's pattern come from solves with the cached factors."""
    rng = np.random.default_rng(3)
    W = case(name).build()
    n = W.n
    off = np.zeros((n, n))
    off[0, n - 1] = off[n - 1, 0] = 0.5  # far off any banded or grid pattern
    off[1, n - 3] = off[n - 3, 1] = -0.25
    off[np.diag_indices(n)] = rng.standard_normal(n)
    x = rng.standard_normal(n)
    for dA, dB in ((sparse.csc_array(off), None), (None, off)):
        _, grad = ws.log_density_gradient(x, 0.0, W, dA=[dA], dB=[dB])
        ref, scale = dense_gradient(
            dense(W.A),
            dense(W.B),
            np.eye(n),
            x,
            [as_dense_derivative(dA, n)],
            [as_dense_derivative(dB, n)],
            [np.zeros(n)],
        )
        bound = 100 * n * EPS * case(name).kappa ** 2 * scale
        assert np.all(np.abs(grad - ref) <= bound)


def test_several_points_equal_one_at_a_time():
    rng = np.random.default_rng(5)
    n = 40
    W = ws.SymmetricWoodburyMatrix(ar1_precision(n, 0.7), sparse.eye_array(n) * 2.0)
    dA = [ar1_precision_derivative(n, 0.7), None]
    dB = [None, 1.0]
    x = rng.standard_normal((3, n))
    value, grad = ws.log_density_gradient(x, 0.5, W, dA=dA, dB=dB, dmean=[None, 1.0])
    for k in range(3):
        v1, g1 = ws.log_density_gradient(x[k], 0.5, W, dA=dA, dB=dB, dmean=[None, 1.0])
        assert isinstance(v1, float)
        assert v1 == pytest.approx(value[k], rel=1e-14)
        np.testing.assert_allclose(g1, grad[k], rtol=1e-13)


# -- finite differences on the statisticians' models ------------------------------------------
def ar1_noise(theta, n):
    """AR(1) latent field (precision ``τ Q_ρ``) plus noise ``σ²``; θ = (ρ, τ, σ²)."""
    rho, tau, s2 = theta
    Q = ar1_precision(n, rho)
    A = tau * Q
    B = sparse.eye_array(n, format="csc") / s2
    dA = [tau * ar1_precision_derivative(n, rho), Q, None]
    dB = [None, None, -1.0 / s2**2]
    return ws.SymmetricWoodburyMatrix(A, B), 0.0, dA, dB, None


def regression(theta, X):
    """Bayesian regression ``y = c + X β + e``, ``β ~ N(0, λ⁻¹ I)``; θ = (σ², λ, c)."""
    s2, lam, _ = theta
    n, p = X.shape
    W = ws.SymmetricWoodburyMatrix(np.full(n, 1 / s2) * sparse.eye_array(n), lam * np.eye(p), X=X)
    return W, theta[2], [-1 / s2**2, None, None], [None, 1.0, None], [None, None, 1.0]


def grid_noise(theta, m):
    """GMRF on an m×m grid, precision ``τ (κ² I + L)``, plus noise σ²; θ = (κ, τ, σ²)."""
    kappa, tau, s2 = theta
    Q = grid_precision(m, kappa)
    n = m * m
    W = ws.SymmetricWoodburyMatrix(tau * Q, sparse.eye_array(n, format="csc") / s2)
    return W, 0.0, [2 * kappa * tau, Q, None], [None, None, -1.0 / s2**2], None


def several_terms(theta, Z):
    """Noise σ² plus an AR(1) over time (τ Q_ρ) plus group effects (λ I):
    ``W = σ² I + Q⁻¹ + Z λ⁻¹ Zᵀ``; θ = (ρ, τ, λ, σ²)."""
    rho, tau, lam, s2 = theta
    n, g = Z.shape
    Q = ar1_precision(n, rho)
    W = ws.SymmetricWoodburyMatrix(
        sparse.eye_array(n, format="csc") / s2,
        [tau * Q, lam * sparse.eye_array(g, format="csc")],
        X=[sparse.eye_array(n, format="csc"), Z],
    )
    zero_g = sparse.csc_array((g, g))
    zero_n = sparse.csc_array((n, n))
    dB = [
        sparse.block_diag([tau * ar1_precision_derivative(n, rho), zero_g], format="csc"),
        sparse.block_diag([Q, zero_g], format="csc"),
        sparse.block_diag([zero_n, sparse.eye_array(g)], format="csc"),
        None,
    ]
    return W, 0.0, [None, None, None, -1 / s2**2], dB, None


def log_density(build, theta, x) -> float:
    W, mean, *_ = build(theta)
    return float(np.sum(ws.dwnorm(x, mean, W, log=True)))


def finite_difference(build, theta, k, x, h):
    """Richardson-extrapolated central difference (error O(h⁴)) of ``dwnorm`` in θₖ."""

    def central(step):
        up, down = np.array(theta, dtype=float), np.array(theta, dtype=float)
        up[k] += step
        down[k] -= step
        return (log_density(build, up, x) - log_density(build, down, x)) / (2 * step)

    return (4 * central(h / 2) - central(h)) / 3


def check_against_finite_differences(build, theta, x):
    W, mean, dA, dB, dmean = build(theta)
    value, grad = ws.log_density_gradient(x, mean, W, dA=dA, dB=dB, dmean=dmean)
    value, grad = np.sum(value), grad.reshape(-1, len(theta)).sum(axis=0)
    assert value == pytest.approx(log_density(build, theta, x), rel=1e-12)
    for k, t in enumerate(theta):
        h = 1e-3 * abs(t)
        fd = finite_difference(build, theta, k, x, h)
        # Relative agreement 1e-6. (The worst-case rounding bound of the differences,
        # n·eps·(|ℓ| + n) per log density times 3/h for the extrapolation, is looser,
        # up to 2e-3 relative at n = 10⁵; the observed disagreement is below 1e-8 on
        # every model here, so the 1e-6 is what is asserted.)
        assert abs(grad[k] - fd) <= 1e-6 * abs(grad[k]), (k, grad[k], fd)
    return grad


def test_ar1_plus_noise_matches_finite_differences():
    n, theta = 2000, (0.9, 2.0, 0.5)
    W, *_ = ar1_noise(theta, n)
    x = ws.rwnorm(1, 0.0, W, random_state=11)
    check_against_finite_differences(lambda t: ar1_noise(t, n), theta, x)


def test_regression_matches_finite_differences():
    rng = np.random.default_rng(12)
    X = rng.standard_normal((300, 6))
    theta = (0.7, 0.3, 1.5)
    W, *_ = regression(theta, X)
    x = ws.rwnorm(2, 1.5, W, random_state=rng)  # two replicates: log likelihoods add
    check_against_finite_differences(lambda t: regression(t, X), theta, x)


def test_grid_gmrf_plus_noise_matches_finite_differences():
    m, theta = 30, (0.4, 1.5, 0.3)
    W, *_ = grid_noise(theta, m)
    x = ws.rwnorm(1, 0.0, W, random_state=13)
    check_against_finite_differences(lambda t: grid_noise(t, m), theta, x)


def test_several_terms_match_finite_differences():
    rng = np.random.default_rng(14)
    n, g = 500, 12
    groups = rng.integers(0, g, n)
    Z = sparse.csc_array((np.ones(n), (np.arange(n), groups)), shape=(n, g))
    theta = (0.8, 3.0, 0.5, 0.2)
    W, *_ = several_terms(theta, Z)
    x = ws.rwnorm(1, 0.0, W, random_state=rng)
    check_against_finite_differences(lambda t: several_terms(t, Z), theta, x)


def test_ar1_plus_noise_at_n_1e5_matches_finite_differences():
    n, theta = 100_000, (0.95, 1.0, 0.5)
    W, *_ = ar1_noise(theta, n)
    x = ws.rwnorm(1, 0.0, W, random_state=15)
    check_against_finite_differences(lambda t: ar1_noise(t, n), theta, x)


# -- work shared, nothing refactorised, inputs untouched -------------------------------------
def test_uses_the_cached_factorisations(count_factorisations):
    n = 300
    W, mean, dA, dB, _ = ar1_noise((0.8, 1.0, 0.5), n)
    x = ws.rwnorm(2, 0.0, W, random_state=1)
    ws.log_density_gradient(x, mean, W, dA=dA, dB=dB)
    first = sorted(count_factorisations)
    assert first == sorted(set(first))  # each block factorised at most once
    count_factorisations.clear()
    ws.log_density_gradient(x, mean, W, dA=dA, dB=dB)
    assert count_factorisations == []  # the second call factorises nothing


def test_inputs_are_not_modified():
    rng = np.random.default_rng(2)
    n = 50
    W = ws.SymmetricWoodburyMatrix(ar1_precision(n, 0.5), sparse.eye_array(n))
    dA = ar1_precision_derivative(n, 0.5)
    dB = rng.standard_normal(n)
    dmu = rng.standard_normal(n)
    x = rng.standard_normal(n)
    copies = [dA.copy(), dB.copy(), dmu.copy(), x.copy()]
    ws.log_density_gradient(x, dmu, W, dA=[dA], dB=[dB], dmean=[dmu])
    assert (dA != copies[0]).nnz == 0
    for after, before in zip([dB, dmu, x], copies[1:], strict=True):
        np.testing.assert_array_equal(after, before)


def test_a_block_no_derivative_touches_is_not_inverted():
    """With derivatives of ``B`` only, ``A``'s selected inverse is never computed: the cost
    is what the derivatives need (checked through the value, which stays exact)."""
    n = 100
    W = ws.SymmetricWoodburyMatrix(ar1_precision(n, 0.5), sparse.eye_array(n))
    x = np.linspace(-1, 1, n)
    _, grad = ws.log_density_gradient(x, 0.0, W, dB=[1.0])
    _, both = ws.log_density_gradient(x, 0.0, W, dA=[None], dB=[1.0])
    np.testing.assert_allclose(grad, both, rtol=1e-14)


# -- errors ------------------------------------------------------------------------------------
@pytest.fixture
def small():
    n = 6
    return ws.SymmetricWoodburyMatrix(ar1_precision(n, 0.5), sparse.eye_array(n)), n


def test_cov_must_be_a_symmetric_woodbury_matrix(small):
    _, n = small
    with pytest.raises(TypeError, match="`cov` is required"):
        ws.log_density_gradient(np.zeros(n), 0.0, None, dA=[1.0])
    general = ws.WoodburyMatrix(np.eye(n), np.eye(n), symmetric=False)
    with pytest.raises(ValueError, match="`cov` must be a SymmetricWoodburyMatrix"):
        ws.log_density_gradient(np.zeros(n), 0.0, general, dA=[1.0])


def test_derivative_lists_are_required_and_of_one_length(small):
    W, n = small
    with pytest.raises(TypeError, match="at least one of `dA`, `dB` and `dmean`"):
        ws.log_density_gradient(np.zeros(n), 0.0, W)
    with pytest.raises(TypeError, match="`dA` must be a list with one derivative per parameter"):
        ws.log_density_gradient(np.zeros(n), 0.0, W, dA=1.0)
    with pytest.raises(TypeError, match="`dmean` must be a list"):
        ws.log_density_gradient(np.zeros(n), 0.0, W, dA=[1.0], dmean=np.ones(n))
    with pytest.raises(ValueError, match="`dA` has 2, `dB` has 1"):
        ws.log_density_gradient(np.zeros(n), 0.0, W, dA=[1.0, None], dB=[None])


def test_derivative_shapes_and_values_are_checked(small):
    W, n = small
    x = np.zeros(n)
    with pytest.raises(ValueError, match=r"`dA\[0\]` must be a scalar .* got shape \(3,\)"):
        ws.log_density_gradient(x, 0.0, W, dA=[np.ones(3)])
    with pytest.raises(ValueError, match=rf"`dB\[1\]` must have shape \({n}, {n}\), got"):
        ws.log_density_gradient(x, 0.0, W, dB=[None, sparse.eye_array(n + 1)])
    with pytest.raises(ValueError, match=r"`dA\[0\]` contains NaN or infinite values"):
        ws.log_density_gradient(x, 0.0, W, dA=[np.full(n, np.nan)])
    with pytest.raises(ValueError, match=r"`dA\[0\]` contains NaN or infinite values"):
        ws.log_density_gradient(x, 0.0, W, dA=[sparse.diags_array(np.full(n, np.inf))])
    with pytest.raises(TypeError, match=r"`dB\[0\]` must hold real numbers"):
        ws.log_density_gradient(x, 0.0, W, dB=[1j])
    with pytest.raises(TypeError, match=r"`dA\[0\]` must be a scalar, a vector or a matrix"):
        ws.log_density_gradient(x, 0.0, W, dA=[[1, [2]]])
    with pytest.raises(ValueError, match=r"`dmean\[0\]` must be a scalar or have shape"):
        ws.log_density_gradient(x, 0.0, W, dmean=[np.ones(n + 1)])
    with pytest.raises(ValueError, match=r"`x` must have shape"):
        ws.log_density_gradient(np.zeros(n + 1), 0.0, W, dA=[1.0])


def test_blocks_must_be_positive_definite():
    n = 5
    A = np.diag([1.0, 2.0, -1.0, 3.0, 4.0])
    W = ws.SymmetricWoodburyMatrix(A, 10 * np.eye(n) + np.ones((n, n)))
    with pytest.raises(ws.NotPositiveDefiniteError, match="needs `A` positive definite"):
        ws.log_density_gradient(np.zeros(n), 0.0, W, dA=[1.0])


# -- the factor layer's entries of M⁻¹ --------------------------------------------------------
@pytest.mark.parametrize(
    "matrix",
    [
        sparse.diags_array(np.linspace(1, 3, 30), format="csc"),
        ar1_precision(40, 0.8),
        grid_precision(7, 0.4),
        np.eye(12) * 4 + np.ones((12, 12)),
    ],
    ids=["diagonal", "ar1", "grid", "dense"],
)
def test_inverse_entries_match_the_dense_inverse(matrix):
    rng = np.random.default_rng(9)
    M = dense(matrix)
    n = M.shape[0]
    kind = "diagonal" if sparse.issparse(matrix) and matrix.nnz == n else None
    block = (
        Block("diagonal", (n, n), np.diagonal(M).copy(), True)
        if kind
        else Block.from_matrix(matrix, symmetric=True)
    )
    inverse = np.linalg.inv(M)
    entries = SelectedInverse(block.factor, "M")
    bound = 100 * n * EPS * np.linalg.cond(M) * np.abs(inverse).max()
    np.testing.assert_allclose(entries.diagonal(), np.diagonal(inverse), rtol=0, atol=bound)
    rows, cols = rng.integers(0, n, 200), rng.integers(0, n, 200)
    keep = np.unique(rows * n + cols)  # distinct entries, as a matrix's pattern has
    rows, cols = keep // n, keep % n
    values, found = entries.entries(rows, cols)
    np.testing.assert_allclose(values[found], inverse[rows, cols][found], rtol=0, atol=bound)
    assert np.all(np.isnan(values[~found]))
    # every entry on M's own pattern is found
    pattern_rows, pattern_cols = np.nonzero(M)
    _, on_pattern = entries.entries(pattern_rows, pattern_cols)
    assert np.all(on_pattern)


def test_the_capacitance_shares_the_positions_of_a_with_an_identity_x():
    # X = I, B diagonal: O = B + A has A's pattern, and the factor orders both alike, so
    # the positions found in A's selected inverse read O's (checked against O⁻¹). n = 300:
    # large enough for a sparse capacitance (a small one is held dense).
    n, rho = 300, 0.7
    A = ar1_precision(n, rho)
    W = ws.SymmetricWoodburyMatrix(A, 2.0 * sparse.eye_array(n, format="csc"))
    state = W._state
    inv_a = SelectedInverse(state.parts.A.factor, "A")
    inv_o = SelectedInverse(state.O.factor, "O")
    assert inv_a.is_sparse and inv_o.is_sparse and inv_a.same_pattern(inv_o)
    rows, cols = np.nonzero(dense(A))
    positions = inv_a.positions(rows, cols)
    assert np.all(positions >= 0)
    capacitance = dense(A) + 2.0 * np.eye(n)
    inverse = np.linalg.inv(capacitance)
    values, found = inv_o.gather(positions)
    bound = 100 * n * EPS * np.linalg.cond(capacitance) * np.abs(inverse).max()
    np.testing.assert_allclose(values, inverse[rows, cols], rtol=0, atol=bound)
    assert np.all(found)
    # a different pattern (a grid) is not the same
    other = SelectedInverse(Block.from_matrix(grid_precision(8, 0.4), symmetric=True).factor)
    assert not inv_a.same_pattern(other) and not other.same_pattern(inv_a)


# -- the average information --------------------------------------------------------------------
def dense_information(A, B, X, dev, dA, dB, dmu):
    """``AIₖₗ = ½ vₖᵀ W⁻¹ vₗ + ∂ₖμᵀ W⁻¹ ∂ₗμ``, ``vₖ = ∂ₖW W⁻¹ dev``, with dense inverses,
    and the entries' scale ``½ ‖vₖ‖ ‖W⁻¹ vₗ‖ + ‖∂ₖμ‖ ‖W⁻¹ ∂ₗμ‖`` (of the rounding errors)."""
    Ai = np.linalg.inv(A)
    Bi = np.linalg.inv(B) if B.size else B
    Wi = np.linalg.inv(Ai + X @ Bi @ X.T)
    r = Wi @ dev
    dW = [-Ai @ a @ Ai - X @ Bi @ b @ Bi @ X.T for a, b in zip(dA, dB, strict=True)]
    v = np.column_stack([d @ r for d in dW])
    mu = np.column_stack(dmu)
    info = 0.5 * v.T @ Wi @ v + mu.T @ Wi @ mu
    norm = np.linalg.norm
    scale = 0.5 * np.outer(norm(v, axis=0), norm(Wi @ v, axis=0)) + np.outer(
        norm(mu, axis=0), norm(Wi @ mu, axis=0)
    )
    return info, scale


@pytest.mark.parametrize("name", PD)
def test_information_matches_the_dense_formula_across_the_catalogue(name):
    rng = np.random.default_rng(sum(map(ord, name)) + 1)
    c = case(name)
    W = c.build()
    n, p = W.n, W.p
    Ad, Bd = dense(W.A), dense(W.B) if p else np.zeros((0, 0))
    Xd = dense(W.U) if p else np.zeros((n, 0))
    dA = [on_pattern(W.A, rng), 0.7, None, None]
    dB = [None, None, (on_pattern(W.B, rng) if p else None), (-1.3 if p else None)]
    dmean = [None, rng.standard_normal(n), None, rng.standard_normal(n)]
    x = rng.standard_normal((2, n))
    mu = rng.standard_normal(n)
    out = ws.log_density_gradient(x, mu, W, dA=dA, dB=dB, dmean=dmean, information=True)
    assert isinstance(out, ws.gradients.LogDensityInformation)
    assert out.information.shape == (2, 4, 4)
    plain = ws.log_density_gradient(x, mu, W, dA=dA, dB=dB, dmean=dmean)
    np.testing.assert_array_equal(out.value, plain.value)  # the same work, shared
    np.testing.assert_array_equal(out.gradient, plain.gradient)
    dAd = [as_dense_derivative(d, n) for d in dA]
    dBd = [as_dense_derivative(d, p) for d in dB]
    dmd = [np.zeros(n) if d is None else d for d in dmean]
    for row in range(2):
        info = out.information[row]
        ref, scale = dense_information(Ad, Bd, Xd, x[row] - mu, dAd, dBd, dmd)
        # r = W⁻¹ dev, then solves with A or B, then with W: κ three times; c = 100.
        bound = 100 * max(n, p, 1) * EPS * c.kappa**3 * scale
        assert np.all(np.abs(info - ref) <= bound), (info, ref, bound)
        np.testing.assert_array_equal(info, info.T)  # symmetric, exactly
        # positive semidefinite: a Gram matrix; eigenvalues ≥ −(the entries' error)
        assert np.linalg.eigvalsh(info).min() >= -np.abs(bound).sum()
        one = ws.log_density_gradient(x[row], mu, W, dA=dA, dB=dB, dmean=dmean, information=True)
        np.testing.assert_allclose(one.information, info, rtol=1e-13, atol=1e-13 * scale.max())


def linear_models():
    """``W`` linear in θ (variances, not precisions): ``W = θ₀ A₀⁻¹ + θ₁ X B₀⁻¹ Xᵀ`` and a
    linear mean ``θ₂ f``: the catalogue's four families, as (name, build(θ), θ)."""
    rng = np.random.default_rng(21)
    n = 150
    f = rng.standard_normal(n)

    def variances(A0, B0, X=None):
        fa = f[: A0.shape[0]]

        def build(theta):
            s, t, c = theta
            W = ws.SymmetricWoodburyMatrix(A0 / s, B0 / t, X=X)
            return W, c * fa, [-A0 / s**2, None, None], [None, -B0 / t**2, None], [None, None, fa]

        return build

    eye = sparse.eye_array(n, format="csc")
    X = rng.standard_normal((n, 6))
    g = 10
    Z = sparse.csc_array((np.ones(n), (np.arange(n), rng.integers(0, g, n))), shape=(n, g))
    several = sparse.hstack([eye, Z], format="csc")
    return [
        ("ar1_plus_noise", variances(eye, ar1_precision(n, 0.8))),
        ("regression", variances(eye, np.eye(6) + 0.3, X)),
        ("grid_plus_noise", variances(grid_precision(12, 0.5), eye[:144, :144])),
        (
            "several_terms",
            variances(eye, sparse.block_diag([ar1_precision(n, 0.6), eye[:g, :g]], "csc"), several),
        ),
    ]


@pytest.mark.parametrize("name, build", linear_models(), ids=[m[0] for m in linear_models()])
def test_information_is_the_average_of_observed_and_expected(name, build):
    """For ``W`` and ``μ`` linear in θ: ``AI = ½ (observed + expected information)`` on the
    covariance parameters, ``= Fisher`` on the mean's, and 0 between them (the observed
    information's cross terms ``∂ₗμᵀ W⁻¹ ∂ₖW r`` have expectation zero and are left out).
    The observed information is the central difference of the exact gradient (checked
    against dwnorm above); the expected one is ``½ tr(W⁻¹ ∂ₖW W⁻¹ ∂ₗW)``, densely."""
    theta = np.array([0.7, 1.6, 0.4])
    W, mean, dA, dB, dmean = build(theta)
    x = ws.rwnorm(1, mean, W, random_state=22)
    out = ws.log_density_gradient(x, mean, W, dA=dA, dB=dB, dmean=dmean, information=True)
    h = 1e-4 * theta
    observed = np.empty((3, 3))
    for k in range(3):
        up, down = theta.copy(), theta.copy()
        up[k] += h[k]
        down[k] -= h[k]
        grads = []
        for point in (up, down):
            Wp, mp, a, b, m = build(point)
            grads.append(ws.log_density_gradient(x, mp, Wp, dA=a, dB=b, dmean=m).gradient)
        observed[:, k] = -(grads[0] - grads[1]) / (2 * h[k])
    observed = 0.5 * (observed + observed.T)
    Wd = W.toarray()
    Wi = np.linalg.inv(Wd)
    # W = θ₀ A₀⁻¹ + θ₁ X B₀⁻¹ Xᵀ: each derivative is its term divided by its θ
    noise = np.linalg.inv(dense(W.A))
    dW = [noise / theta[0], (Wd - noise) / theta[1]]
    f = dmean[2]
    expected = np.zeros((3, 3))
    for k in range(2):
        for j in range(2):
            expected[k, j] = 0.5 * np.trace(Wi @ dW[k] @ Wi @ dW[j])
    expected[2, 2] = f @ Wi @ f
    r = Wi @ (x - mean)
    cross = np.array([f @ Wi @ dW[k] @ r for k in range(2)])  # the observed cross terms
    average = 0.5 * (observed + expected)
    average[:2, 2] -= 0.5 * cross
    average[2, :2] -= 0.5 * cross
    # central differences with h = 1e-4 θ: truncation h²·ℓ''' ~ 1e-8 relative
    scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    np.testing.assert_allclose(out.information, average, rtol=0, atol=1e-6 * scale.max())
    assert np.all(np.abs(out.information - average) <= 1e-6 * scale + 1e-10 * scale.max())
    np.testing.assert_array_equal(out.information[:2, 2], 0.0)


# -- the restricted (REML) likelihood: fixed effects integrated out -----------------------------
def dense_restricted(W, F, x):
    """``log N(x − F β̂; 0, W) + (c/2) log 2π − ½ log det(Fᵀ W⁻¹ F)``, densely."""
    n, c = F.shape
    Wi = np.linalg.inv(W)
    G = F.T @ Wi @ F
    dev = x - F @ np.linalg.solve(G, F.T @ Wi @ x)
    return float(
        -0.5 * ((n - c) * np.log(2 * np.pi) + np.linalg.slogdet(W)[1] + dev @ Wi @ dev)
        - 0.5 * np.linalg.slogdet(G)[1]
    )


@pytest.mark.parametrize("name", ["ar1_noise", "regression", "several_terms"])
def test_restricted_likelihood_value_gradient_and_information(name):
    rng = np.random.default_rng(31)
    n = 120
    F = np.column_stack([np.ones(n), np.linspace(-1, 1, n)])
    if name == "ar1_noise":
        build, theta = (lambda t: ar1_noise(t, n)), (0.8, 2.0, 0.5)
    elif name == "regression":
        X = rng.standard_normal((n, 4))
        build, theta = (lambda t: regression(t, X)), (0.7, 0.3, 1.5)
    else:
        Z = sparse.csc_array((np.ones(n), (np.arange(n), rng.integers(0, 6, n))), shape=(n, 6))
        build, theta = (lambda t: several_terms(t, Z)), (0.8, 3.0, 0.5, 0.2)
    W, mean, dA, dB, dmean = build(theta)
    x = ws.rwnorm(2, 0.0, W, random_state=rng) + F @ [3.0, -1.0]
    out = ws.log_density_gradient(x, mean, W, dA=dA, dB=dB, dmean=dmean, fixed=F, information=True)
    mu = np.broadcast_to(mean, (n,))
    for row in range(2):
        ref = dense_restricted(W.toarray(), F, x[row] - mu)
        assert out.value[row] == pytest.approx(ref, rel=1e-11)

    def restricted(t):
        Wt, mt, *_ = build(t)
        return sum(
            dense_restricted(Wt.toarray(), F, x[j] - np.broadcast_to(mt, (n,))) for j in (0, 1)
        )

    for k, t in enumerate(theta):  # Richardson-extrapolated central differences, O(h⁴)
        h = 1e-3 * abs(t)

        def central(step, k=k):
            up, down = np.array(theta, dtype=float), np.array(theta, dtype=float)
            up[k] += step
            down[k] -= step
            return (restricted(up) - restricted(down)) / (2 * step)

        fd = (4 * central(h / 2) - central(h)) / 3
        total = out.gradient[:, k].sum()
        # 1e-6 relative as above; + 1e-9 for a mean parameter in F's span (the regression's
        # intercept), whose restricted derivative is zero: computed 2e-13
        assert abs(total - fd) <= 1e-6 * abs(total) + 1e-9, (k, total, fd)
    # AI with P = W⁻¹ − W⁻¹F (Fᵀ W⁻¹ F)⁻¹ FᵀW⁻¹ in place of W⁻¹ (dense reference)
    Wd = W.toarray()
    Wi = np.linalg.inv(Wd)
    P = Wi - Wi @ F @ np.linalg.solve(F.T @ Wi @ F, F.T @ Wi)
    Ai = np.linalg.inv(dense(W.A))
    Bi = np.linalg.inv(dense(W.B))
    Xd = dense(W.U)
    m = len(theta)
    dW = [
        -Ai @ as_dense_derivative(a, n) @ Ai - Xd @ Bi @ as_dense_derivative(b, W.p) @ Bi @ Xd.T
        for a, b in zip(dA or [None] * m, dB or [None] * m, strict=True)
    ]
    dmu = np.column_stack(
        [np.zeros(n) if d is None else np.broadcast_to(d, (n,)) for d in (dmean or [None] * m)]
    )
    for row in range(2):
        r = P @ (x[row] - mu)
        v = np.column_stack([d @ r for d in dW])
        ref = 0.5 * v.T @ P @ v + dmu.T @ P @ dmu
        np.testing.assert_allclose(
            out.information[row], ref, rtol=1e-8, atol=1e-10 * np.abs(ref).max()
        )


def test_fixed_is_checked():
    n = 6
    W = ws.SymmetricWoodburyMatrix(ar1_precision(n, 0.5), sparse.eye_array(n))
    x = np.zeros(n)
    with pytest.raises(ValueError, match=r"`fixed` must have shape \(6, c\) with c ≥ 1, got"):
        ws.log_density_gradient(x, 0.0, W, dA=[1.0], fixed=np.ones((5, 1)))
    with pytest.raises(ValueError, match=r"`fixed` must have fewer columns than rows \(6\)"):
        ws.log_density_gradient(x, 0.0, W, dA=[1.0], fixed=np.eye(6))
    with pytest.raises(ValueError, match=r"`fixed` contains NaN or infinite values"):
        ws.log_density_gradient(x, 0.0, W, dA=[1.0], fixed=np.full(6, np.nan))
    with pytest.raises(ValueError, match=r"`fixed` must have linearly independent columns"):
        ws.log_density_gradient(x, 0.0, W, dA=[1.0], fixed=np.ones((6, 2)))
    with pytest.raises(TypeError, match=r"`fixed` must hold real numbers"):
        ws.log_density_gradient(x, 0.0, W, dA=[1.0], fixed=np.ones(6) * 1j)


def test_fixed_numerically_dependent_columns_are_refused():
    n = 6
    W = ws.SymmetricWoodburyMatrix(ar1_precision(n, 0.5), sparse.eye_array(n))
    F = np.column_stack([np.ones(n), np.ones(n) * (1 + 1e-17)])  # equal after rounding
    F2 = np.column_stack([np.linspace(0, 1, n), 3 * np.linspace(0, 1, n) + 1e-15])
    for design in (F, F2):
        with pytest.raises(ValueError, match=r"`fixed` must have linearly independent columns"):
            ws.log_density_gradient(np.zeros(n), 0.0, W, dA=[1.0], fixed=design)
