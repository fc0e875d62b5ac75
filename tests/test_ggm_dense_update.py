"""The dense gene update's probed path: ``Θ`` checked inside the product ``Θ [X Z]``.

``ggm.updated_precision_dense`` takes a dense ``Θ`` that a three-column random probe finds
symmetric to round-off as it is, and sends everything else (not finite, not symmetric,
symmetric only to more than round-off, an ``X`` it cannot use, a result that cancelled or
overflowed) down the exact path of the lazy operator, with that path's errors, warnings
and refinement. Each behaviour is checked against the notebook's formula or a dense
inverse, with tolerances ``c·n·eps·κ``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import sparse

from conftest import rel_err, tol
from woodbury_sparse import ggm
from woodbury_sparse._blocks import dense_asymmetry
from woodbury_sparse._exceptions import (
    AsymmetryWarning,
    IllConditionedWarning,
    SingularMatrixError,
)
from woodbury_sparse._validation import SYMMETRY_RTOL, symmetry_roundoff


def notebook_problem(n: int, d: int = 5, seed: int = 42):
    """The notebook's data: ``Σ = F Fᵀ + diag(ψ)``, ``Θ = inv(Σ)`` as it comes, ``X``."""
    rng = np.random.default_rng(seed)
    loadings = rng.standard_normal((n, 10)) * 0.1
    sigma = loadings @ loadings.T + np.diag(rng.uniform(0.01, 0.05, n))
    return sigma, np.linalg.inv(sigma), rng.standard_normal((n, d)) * 0.05


def notebook_update(theta: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The notebook's four lines."""
    theta_x = theta @ X
    middle = np.eye(X.shape[1]) + X.T @ theta_x
    return theta - theta_x @ np.linalg.inv(middle) @ theta_x.T


def probe(theta: np.ndarray) -> float:
    z = ggm._probe_vectors(theta.shape[0])
    product = theta @ z
    return ggm._probed_asymmetry(z.T @ product, np.sum(product * product, axis=0))


# -- the probe ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 10, 100, 600])
def test_probe_of_a_symmetric_matrix_reads_its_own_rounding(n):
    g = np.random.default_rng(n).standard_normal((n, n))
    # Measured 0.1–0.2 √n·eps: the tolerance is 64 √n·eps.
    assert probe(g + g.T) <= ggm._probe_tolerance(n) / 16


@pytest.mark.parametrize("n", [3, 50, 400])
@pytest.mark.parametrize("size", [1e-12, 1e-6, 1.0])
def test_probe_estimates_the_relative_asymmetry(n, size):
    rng = np.random.default_rng(n)
    g = rng.standard_normal((n, n))
    skew = rng.standard_normal((n, n))
    theta = g + g.T + size * (skew - skew.T)
    exact = dense_asymmetry(theta)
    # Three pairs: the estimate is within a factor 4 of the exact value with these seeds
    # (its spread is that of a χ² of 3 degrees of freedom).
    assert exact / 4 <= probe(theta) <= 4 * exact


@pytest.mark.parametrize("where", [(0, 1), (0, -1), (-1, -2), (7, 3)])
def test_probe_sees_a_single_asymmetric_pair_anywhere(where):
    n = 300
    g = np.random.default_rng(1).standard_normal((n, n))
    theta = g + g.T
    theta[where] += 1e-6 * np.linalg.norm(theta)
    assert probe(theta) > dense_asymmetry(theta) / 4 > ggm._probe_tolerance(n)


def test_probe_of_non_finite_or_extreme_products_is_nan():
    for theta in (np.full((4, 4), np.nan), np.full((4, 4), 1e200), np.full((4, 4), 1e-120)):
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            assert np.isnan(probe(theta))


def test_probe_vectors_are_fixed_nonzero_and_read_only():
    z = ggm._probe_vectors(1000)
    assert z.shape == (1000, ggm._SYMMETRY_PROBES) and np.all(z != 0)
    np.testing.assert_array_equal(z, ggm._probe_vectors.__wrapped__(1000))
    assert not z.flags.writeable


# -- the probed path -------------------------------------------------------------------------
@pytest.mark.parametrize("n", [40, 800])
def test_notebook_inverse_is_taken_as_it_is(n):
    sigma, theta, X = notebook_problem(n)
    # at N = 800 above the exact check's round-off (it would warn), below the probe's
    # tolerance: taken as it is, without a warning
    assert dense_asymmetry(theta) > symmetry_roundoff(n) or n < 800
    assert probe(theta) <= ggm._probe_tolerance(n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = ggm.updated_precision_dense(theta, X)
    reference = np.linalg.inv(sigma + X @ X.T)
    bound = tol(sigma, 10.0, sigma + X @ X.T)
    assert rel_err(got, reference) <= bound
    assert rel_err(got, notebook_update(theta, X)) <= bound


def test_the_lazy_operator_still_checks_exactly():
    n = 800
    _, theta, X = notebook_problem(n)
    assert dense_asymmetry(theta) > symmetry_roundoff(n)
    with pytest.warns(AsymmetryWarning, match="`theta` is symmetric only"):
        ggm.updated_precision(theta, X)


def test_probed_path_with_b_and_one_pathway():
    sigma, theta, X = notebook_problem(200, 2)
    B = np.array([[2.0, 0.3], [0.3, 0.5]])
    reference = np.linalg.inv(sigma + X @ np.linalg.solve(B, X.T))
    got = ggm.updated_precision_dense(theta, X, B)
    assert rel_err(got, reference) <= tol(sigma, 10.0, sigma + X @ np.linalg.solve(B, X.T), B)
    one = ggm.updated_precision_dense(theta, X[:, :1])
    reference = np.linalg.inv(sigma + X[:, :1] @ X[:, :1].T)
    assert rel_err(one, reference) <= tol(sigma, 10.0, sigma + X[:, :1] @ X[:, :1].T)


def test_probed_path_never_modifies_its_inputs_and_returns_its_own_array():
    _, theta, X = notebook_problem(100)
    theta_before, x_before = theta.copy(), X.copy()
    got = ggm.updated_precision_dense(theta, X)
    np.testing.assert_array_equal(theta, theta_before)
    np.testing.assert_array_equal(X, x_before)
    assert not np.shares_memory(got, theta) and got.flags.writeable and got.flags.c_contiguous


# -- what goes down the exact path, with its errors and warnings -------------------------------
@pytest.mark.parametrize("where", [(0, 1), (0, -1), (-1, 0), (17, 3)])
def test_asymmetry_beyond_sqrt_eps_is_refused_wherever_it_is(where):
    _, theta, X = notebook_problem(200)
    bad = theta.copy()
    bad[where] += 4 * SYMMETRY_RTOL * np.linalg.norm(theta)
    with pytest.raises(ValueError, match=r"`theta` is not symmetric \(‖M − Mᵀ‖/‖M‖ = "):
        ggm.updated_precision_dense(bad, X)


def test_asymmetry_between_round_off_and_sqrt_eps_is_symmetrised_with_a_warning():
    _, theta, X = notebook_problem(200)
    rough = theta + 1e-10 * np.linalg.norm(theta) * np.triu(np.ones_like(theta), 1) / 200
    with pytest.warns(AsymmetryWarning, match="`theta` is symmetric only") as record:
        got = ggm.updated_precision_dense(rough, X)
    assert len(record) == 1
    sym = 0.5 * (rough + rough.T)
    assert rel_err(got, notebook_update(sym, X)) <= tol(sym, 10.0)


@pytest.mark.parametrize(
    "entries",
    [{(0, 0): np.nan}, {(5, 199): np.inf}, {(199, 5): -np.inf}, {(3, 4): np.inf, (3, 9): -np.inf}],
    ids=["nan", "inf", "-inf", "inf-and-minus-inf"],
)
def test_non_finite_theta_is_refused(entries):
    _, theta, X = notebook_problem(200)
    bad = theta.copy()
    for where, value in entries.items():
        bad[where] = value
    with pytest.raises(ValueError, match="`theta` contains NaN or infinite values"):
        ggm.updated_precision_dense(bad, X)


def test_theta_errors_come_before_those_of_x():
    _, theta, X = notebook_problem(50)
    skew = theta.copy()
    skew[0, 1] += 1.0
    bad_x = X.copy()
    bad_x[0, 0] = np.nan
    with pytest.raises(ValueError, match="`theta` is not symmetric"):
        ggm.updated_precision_dense(skew, bad_x)
    with pytest.raises(ValueError, match="`X` contains NaN or infinite values"):
        ggm.updated_precision_dense(theta, bad_x)
    with pytest.raises(TypeError, match="`X` is complex"):
        ggm.updated_precision_dense(theta, X * 1j)


def test_sparse_or_empty_x_take_the_exact_path():
    sigma, theta, X = notebook_problem(60)
    got = ggm.updated_precision_dense(theta, sparse.csc_array(X))
    assert rel_err(got, np.linalg.inv(sigma + X @ X.T)) <= tol(sigma, 10.0, sigma + X @ X.T)
    # the exact check: Θ = inv(Σ) is symmetrised (silently: its asymmetry is round-off)
    none = ggm.updated_precision_dense(theta, np.zeros((60, 0)), np.zeros((0, 0)))
    np.testing.assert_array_equal(none, 0.5 * (theta + theta.T))


def test_a_singular_capacitance_is_reported_as_before():
    theta = np.array([[1.0, 0.1, 0.0], [0.1, -1.0, 0.0], [0.0, 0.0, 2.0]])
    X = np.array([[0.0], [1.0], [0.0]])  # O = 1 + Θ₁₁ = 0
    with pytest.raises(SingularMatrixError, match="capacitance O = B \\+ V A U is singular"):
        ggm.updated_precision_dense(theta, X)


def test_an_indefinite_theta_is_updated_as_before():
    theta = np.array([[1.0, 0.2, 0.0], [0.2, -1.0, 0.3], [0.0, 0.3, 2.0]])
    X = np.array([[1.0], [0.5], [0.2]])
    reference = np.linalg.inv(np.linalg.inv(theta) + X @ X.T)
    got = ggm.updated_precision_dense(theta, X)
    assert rel_err(got, reference) <= tol(reference, 10.0, theta)


def test_a_cancelled_column_is_refined_by_the_operator():
    n = 80
    g = np.random.default_rng(3).standard_normal((n, n))
    theta = np.eye(n) + 0.01 * (g + g.T)
    X = np.zeros((n, 1))
    X[0, 0] = 1e4  # (Θ⁻¹ + X Xᵀ)⁻¹ has a tiny first row and column: Θ₀₀ − ... cancels
    reference = np.linalg.inv(np.linalg.inv(theta) + X @ X.T)
    got = ggm.updated_precision_dense(theta, X)
    left, right = theta @ X, np.linalg.solve(1 + X.T @ theta @ X, X.T @ theta)
    assert ggm._may_cancel(theta - left @ right, left, right)
    column = np.abs(got[:, 0] - reference[:, 0]).max() / np.abs(reference[:, 0]).max()
    assert column <= tol(reference, 10.0, theta)


def test_a_product_that_could_overflow_is_left_to_the_operator():
    theta = np.eye(3) + 0.1
    right = np.full((1, 3), 1e160)
    assert ggm._may_cancel(theta, np.full((3, 1), 1e150), right)  # |L R| up to 1e310
    assert ggm._may_cancel(theta, np.full((3, 1), np.nan), right)
    assert not ggm._may_cancel(theta, np.full((3, 1), 1e-170), right)  # |L R| ≈ 1e-10


def test_an_ill_conditioned_capacitance_warns_as_before():
    sigma, theta, X = notebook_problem(100, 1)
    x = 1e5 * X[:, 0]
    twins = np.column_stack([x, x + 1e-6 * X[::-1, 0]])  # C = I + Xᵀ Θ X: condition ~1e11
    with pytest.warns(IllConditionedWarning, match="capacitance O = B \\+ V A U is ill-cond"):
        got = ggm.updated_precision_dense(theta, twins)
    reference = np.linalg.inv(sigma + twins @ twins.T)
    assert rel_err(got, reference) <= tol(sigma, 10.0, sigma + twins @ twins.T)
