"""Maximum likelihood with exact gradients (``woodbury_sparse.fitting``).

The fit must find the optimum a derivative-free search finds, recover simulated
parameters within its standard errors (seeded draws: the same outcome on every run),
report standard errors that match the curvature of ``dwnorm`` itself, and reuse the
symbolic analyses between evaluations.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, sparse

import woodbury_sparse as ws
from woodbury_sparse.fitting import AR1, ModelDescription, Noise, Scaled, fit
from woodbury_sparse.testing import ar1_precision, ar1_precision_derivative


def ar1_model(n):
    """AR(1) latent field with precision ``τ Q_ρ`` plus noise ``σ²``; θ = (ρ, τ, σ²)."""

    def model(theta):
        rho, tau, s2 = theta
        Q = ar1_precision(n, rho)
        B = sparse.eye_array(n, format="csc") / s2
        return (
            tau * Q,
            B,
            [tau * ar1_precision_derivative(n, rho), Q, None],
            [None, None, -1 / s2**2],
        )

    return model


def regression_model(X):
    """``y = c + X β + e``, ``β ~ N(0, λ⁻¹ I)``, ``e ~ N(0, σ² I)``; θ = (σ², λ, c)."""
    n, p = X.shape

    def model(theta):
        s2, lam, c = theta
        A = sparse.eye_array(n, format="csc") / s2
        return A, lam * np.eye(p), [-1 / s2**2, None, None], [None, 1.0, None], c, [None, None, 1.0]

    return model


def loglik(model, theta, y, X=None):
    out = model(np.asarray(theta, dtype=float))
    mean = out[4] if len(out) == 6 else 0.0
    W = ws.SymmetricWoodburyMatrix(out[0], out[1], X=X)
    return float(np.sum(ws.dwnorm(y, mean, W, log=True)))


@pytest.fixture(scope="module")
def ar1_fit():
    n, truth = 3000, np.array([0.9, 2.0, 0.5])
    model = ar1_model(n)
    A, B, *_ = model(truth)
    y = ws.rwnorm(1, 0.0, ws.SymmetricWoodburyMatrix(A, B), random_state=2024)
    res = fit(
        model,
        [0.5, 1.0, 1.0],
        y,
        transforms=["correlation", "positive", "positive"],
        names=["rho", "tau", "sigma2"],
        progress=False,
    )
    return model, truth, y, res


def test_recovers_the_simulated_parameters_within_their_standard_errors(ar1_fit):
    _, truth, _, res = ar1_fit
    assert res.success, res.message
    assert np.all(np.isfinite(res.stderr)) and np.all(res.stderr > 0)
    assert np.all(np.abs(res.theta - truth) <= 3 * res.stderr), (res.theta, res.stderr)
    assert res.names == ("rho", "tau", "sigma2")
    assert "rho =" in res.summary() and "log likelihood" in res.summary()


def test_reaches_the_derivative_free_optimum_in_fewer_evaluations(ar1_fit):
    model, _, y, res = ar1_fit
    assert res.loglik == pytest.approx(loglik(model, res.theta, y), rel=1e-12)

    def negative(phi):
        return -loglik(model, [np.tanh(phi[0]), np.exp(phi[1]), np.exp(phi[2])], y)

    start = [np.arctanh(0.5), 0.0, 0.0]
    free = optimize.minimize(
        negative, start, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-9}
    )
    # The same optimum to 1e-6 in the log likelihood (the gradient-based one no lower).
    assert res.loglik >= -free.fun - 1e-6
    assert abs(res.loglik + free.fun) <= 1e-6 * max(1.0, abs(res.loglik)) + 1e-6
    assert free.nfev >= 5 * res.nfev, (free.nfev, res.nfev)
    # ... and the gradient there is zero to the optimiser's tolerance.
    assert np.all(np.abs(res.gradient * res.stderr) < 1e-3)


def test_standard_errors_match_the_curvature_of_dwnorm():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((400, 5))
    model = regression_model(X)
    truth = np.array([0.8, 0.5, 2.0])
    out = model(truth)
    y = ws.rwnorm(1, 2.0, ws.SymmetricWoodburyMatrix(out[0], out[1], X=X), random_state=rng)
    res = fit(model, [1.0, 1.0, 0.0], y, X=X, transforms=["positive", "positive", None])
    assert res.success
    assert np.all(np.abs(res.theta - truth) <= 3 * res.stderr)
    # Observed information by second differences of dwnorm (no gradient code involved);
    # h = 1e-3·|θ|: truncation O(h²) ~ 1e-6 relative, rounding ~ eps·|ℓ|/h² ~ 1e-7.
    m = truth.size
    h = 1e-3 * np.abs(res.theta)
    info = np.empty((m, m))
    for i in range(m):
        for j in range(m):
            e_i, e_j = np.eye(m)[i] * h[i], np.eye(m)[j] * h[j]
            f = [
                loglik(model, res.theta + si * e_i + sj * e_j, y, X)
                for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1))
            ]
            info[i, j] = -(f[0] - f[1] - f[2] + f[3]) / (4 * h[i] * h[j])
    stderr = np.sqrt(np.diag(np.linalg.inv(info)))
    np.testing.assert_allclose(res.stderr, stderr, rtol=1e-3)


def test_consecutive_evaluations_reuse_the_symbolic_analysis(count_factorisations):
    n = 500
    model = ar1_model(n)
    A, B, *_ = model([0.7, 1.0, 1.0])
    y = ws.rwnorm(1, 0.0, ws.SymmetricWoodburyMatrix(A, B), random_state=3)
    count_factorisations.clear()
    res = fit(model, [0.5, 1.5, 0.8], y, transforms=["correlation", "positive", "positive"])
    evaluations = res.nfev + res.nhev
    assert evaluations > 5
    if ws.backend_info()["backend"] == "cholmod":
        # A is factorised from scratch once; every later evaluation refactorises
        # numerically on the first one's analysis (B is diagonal: closed form), and the
        # capacitance O = B + A, with A's pattern, is never analysed at all: it reuses A's.
        assert count_factorisations.count("A") == 1
        assert count_factorisations.count("O") == 0
    else:  # SuperLU has no reusable analysis: one fresh factorisation per evaluation
        assert count_factorisations.count("A") == evaluations


def test_callback_and_progress(capsys):
    n = 200
    model = ar1_model(n)
    A, B, *_ = model([0.6, 1.0, 1.0])
    y = ws.rwnorm(1, 0.0, ws.SymmetricWoodburyMatrix(A, B), random_state=4)
    seen, reported = [], []
    res = fit(
        model,
        [0.3, 1.0, 1.0],
        y,
        transforms=["correlation", "positive", "positive"],
        callback=lambda theta, value: seen.append((theta, value)),
        progress=lambda done, total: reported.append((done, total)),
    )
    assert len(seen) == res.nfev + res.nhev
    assert all(np.isfinite(value) for _, value in seen)
    # the package's progress contract: (0, total) first, done increasing, (total, total)
    # last; total is the evaluation budget (L-BFGS-B's 15 000, + 2m + 1 for the errors)
    total = 15000 + 2 * 3 + 1
    assert reported[0] == (0, total) and reported[-1] == (total, total)
    assert all(t == total for _, t in reported)
    done = [d for d, _ in reported]
    assert done == sorted(set(done))
    assert done[1:-1] == list(range(1, res.nfev + res.nhev + 1))
    capsys.readouterr()
    fit(
        model, [0.3, 1.0, 1.0], y, transforms=["correlation", "positive", "positive"], progress=True
    )
    assert capsys.readouterr().err == ""  # a bar only when standard error is a terminal
    with pytest.raises(TypeError, match=r"`progress` must be None, False"):
        fit(model, [0.3, 1.0, 1.0], y, progress="yes")


def test_bounds_and_replicates():
    n = 300
    model = ar1_model(n)
    A, B, *_ = model([0.8, 1.0, 0.5])
    y = ws.rwnorm(3, 0.0, ws.SymmetricWoodburyMatrix(A, B), random_state=5)
    res = fit(
        model,
        [0.5, 1.0, 1.0],
        y,
        transforms=[None, "positive", "positive"],
        bounds=[(-0.5, 0.6), (None, None), (0.1, None)],
        standard_errors=False,
        progress=False,
    )
    assert res.theta[0] == pytest.approx(0.6)  # the bound binds: the truth is 0.8
    assert res.nhev == 0 and np.all(np.isnan(res.stderr))
    assert res.loglik == pytest.approx(loglik(model, res.theta, y), rel=1e-12)


def test_errors():
    model = ar1_model(20)
    y = np.zeros(20)
    with pytest.raises(ValueError, match=r"`transforms` must have one entry per parameter"):
        fit(model, [0.5, 1.0, 1.0], y, transforms=["positive"])
    with pytest.raises(ValueError, match=r"`transforms` entries must be one of"):
        fit(model, [0.5, 1.0, 1.0], y, transforms="log")
    with pytest.raises(ValueError, match=r"`theta0\[0\]` = 1.5 is outside the domain"):
        fit(model, [1.5, 1.0, 1.0], y, transforms=["correlation", None, None])
    with pytest.raises(ValueError, match=r"`names` must have one entry per parameter"):
        fit(model, [0.5, 1.0, 1.0], y, names=["a"])
    with pytest.raises(ValueError, match=r"`bounds` must have one \(low, high\) pair"):
        fit(model, [0.5, 1.0, 1.0], y, bounds=[(0, 1)])
    with pytest.raises(TypeError, match=r"`model` must return a tuple .* got list"):
        fit(lambda t: [1], [0.5], y)
    with pytest.raises(TypeError, match=r"`model` must return a tuple .* of length 3"):
        fit(lambda t: (1, 2, 3), [0.5], y)
    with pytest.raises(ValueError, match=r"`model` must give one derivative per parameter"):
        fit(lambda t: model([t[0], t[1], 1.0]), [0.5, 1.0], y)


def proper_car_model(n):
    """A proper CAR field on a path, precision ``D − ρ·adjacency``, plus noise ``σ²``.

    θ = (ρ, σ²). The precision is positive definite for ``|ρ| < 1`` only: at ``ρ = 1`` it
    is the path's Laplacian (singular), beyond it indefinite (``1ᵀ Q 1 = (1 − ρ)·Σ deg``).
    """
    ones = np.ones(n - 1)
    adjacency = sparse.diags_array([ones, ones], offsets=[-1, 1], format="csc")
    degree = sparse.diags_array(np.asarray(adjacency.sum(axis=0)).ravel(), format="csc")

    def model(theta):
        rho, s2 = theta
        Q = sparse.csc_array(degree - rho * adjacency)
        return Q, sparse.eye_array(n, format="csc") / s2, [-adjacency, None], [None, -1 / s2**2]

    return model


def test_backs_off_where_the_precision_is_not_positive_definite():
    # The truth ρ = 0.99 lies near the boundary ρ = 1; without a transform or a bound
    # the line search overshoots it from ρ = 0, where the precision is indefinite.
    n = 500
    model = proper_car_model(n)
    A, B, *_ = model([0.99, 0.3])
    y = ws.rwnorm(1, 0.0, ws.SymmetricWoodburyMatrix(A, B), random_state=7)
    seen = []
    free = fit(
        model,
        [0.0, 1.0],
        y,
        transforms=[None, "positive"],
        callback=lambda theta, value: seen.append(value),
    )
    bounded = fit(
        model, [0.0, 1.0], y, transforms=[None, "positive"], bounds=[(-1, 1 - 1e-9), (None, None)]
    )
    assert free.nfailed >= 1 and bounded.nfailed == 0
    assert free.success, free.message
    assert sum(value == -np.inf for value in seen) == free.nfailed  # reported as ℓ = −∞
    # Both stop within L-BFGS-B's relative tolerance on ℓ (ftol ≈ 2.2e-9): the estimates
    # agree far within their standard errors, the log likelihoods to a few ftol.
    assert np.all(np.abs(free.theta - bounded.theta) <= 0.01 * bounded.stderr)
    assert free.loglik == pytest.approx(bounded.loglik, rel=1e-8)
    assert free.loglik == pytest.approx(loglik(model, free.theta, y), rel=1e-12)
    assert free.theta[0] < 1.0
    assert f"{free.nfailed} where the model could not be evaluated" in free.summary()
    assert "could not be evaluated" not in bounded.summary()


def test_a_starting_point_that_cannot_be_evaluated_is_an_error():
    model = proper_car_model(50)
    y = np.zeros(50)
    with pytest.raises(ValueError, match=r"`theta0` = \[1\.5, 1\.0\] is not a valid starting"):
        fit(model, [1.5, 1.0], y, transforms=[None, "positive"])
    with pytest.raises(ValueError, match=r"`theta0` = \[1\.0, 1\.0\] is not a valid starting"):
        fit(model, [1.0, 1.0], y, transforms=[None, "positive"])  # singular: the Laplacian


# -- the second-order method: average information ------------------------------------------------
@pytest.fixture(scope="module")
def ai_fit(ar1_fit):
    model, _, y, _ = ar1_fit
    res = fit(
        model,
        [0.5, 1.0, 1.0],
        y,
        transforms=["correlation", "positive", "positive"],
        names=["rho", "tau", "sigma2"],
        method="average-information",
    )
    return res


def test_average_information_reaches_the_same_optimum_in_fewer_evaluations(ar1_fit, ai_fit):
    model, truth, y, lbfgsb = ar1_fit
    res = ai_fit
    assert res.success, res.message
    assert "predicted increase of the log likelihood" in res.message
    # the same optimum as L-BFGS-B (to 1e-6 in ℓ, the criterion), no lower
    assert abs(res.loglik - lbfgsb.loglik) <= 1e-6
    assert res.loglik >= lbfgsb.loglik - 1e-9
    assert res.loglik == pytest.approx(loglik(model, res.theta, y), rel=1e-12)
    assert np.all(np.abs(res.theta - truth) <= 3 * res.stderr)
    # evaluation counts are deterministic (seeded data, fixed start): measured 8 and 13
    assert res.nfev < lbfgsb.nfev, (res.nfev, lbfgsb.nfev)
    assert res.nit <= res.nfev
    np.testing.assert_allclose(res.stderr, lbfgsb.stderr, rtol=1e-3)


def test_average_information_standard_errors(ai_fit, ar1_fit):
    res = ai_fit
    info = res.information
    np.testing.assert_array_equal(info, info.T)
    assert np.all(np.linalg.eigvalsh(info) > 0)
    np.testing.assert_allclose(res.stderr_ai, np.sqrt(np.diag(np.linalg.inv(info))), rtol=1e-12)
    # well-specified simulated data: the AI is close to the observed information (the
    # standard errors' ratio is 1 + O(n^-1/2), n = 3000; measured within 6 %)
    np.testing.assert_allclose(res.stderr_ai, res.stderr, rtol=0.1)
    # L-BFGS-B (the default) computes no AI
    lbfgsb = ar1_fit[3]
    assert np.all(np.isnan(lbfgsb.information)) and np.all(np.isnan(lbfgsb.stderr_ai))


def test_average_information_on_a_regression_with_a_mean_parameter():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((400, 5))
    model = regression_model(X)
    truth = np.array([0.8, 0.5, 2.0])
    out = model(truth)
    y = ws.rwnorm(1, 2.0, ws.SymmetricWoodburyMatrix(out[0], out[1], X=X), random_state=rng)
    kwargs = {"X": X, "transforms": ["positive", "positive", None]}
    ai = fit(model, [1.0, 1.0, 0.0], y, method="average-information", **kwargs)
    lbfgsb = fit(model, [1.0, 1.0, 0.0], y, **kwargs)
    assert ai.success and abs(ai.loglik - lbfgsb.loglik) <= 1e-6
    assert ai.nfev < lbfgsb.nfev  # measured 7 and 18
    np.testing.assert_allclose(ai.stderr, lbfgsb.stderr, rtol=1e-3)


def test_average_information_respects_bounds_and_replicates():
    n = 300
    model = ar1_model(n)
    A, B, *_ = model([0.8, 1.0, 0.5])
    y = ws.rwnorm(3, 0.0, ws.SymmetricWoodburyMatrix(A, B), random_state=5)
    kwargs = {
        "transforms": [None, "positive", "positive"],
        "bounds": [(-0.5, 0.6), (None, None), (0.1, None)],
        "standard_errors": False,
    }
    res = fit(model, [0.5, 1.0, 1.0], y, method="average-information", **kwargs)
    assert res.success, res.message
    assert res.theta[0] == 0.6  # held at the bound: the truth is 0.8
    lbfgsb = fit(model, [0.5, 1.0, 1.0], y, **kwargs)
    assert abs(res.loglik - lbfgsb.loglik) <= 1e-6
    assert res.loglik == pytest.approx(loglik(model, res.theta, y), rel=1e-12)


def test_average_information_backs_off_where_the_model_cannot_be_evaluated():
    n = 500
    model = proper_car_model(n)
    A, B, *_ = model([0.99, 0.3])
    y = ws.rwnorm(1, 0.0, ws.SymmetricWoodburyMatrix(A, B), random_state=7)
    bounded = fit(
        model, [0.0, 1.0], y, transforms=[None, "positive"], bounds=[(-1, 1 - 1e-9), (None, None)]
    )
    for bounds in (None, [(-1, 1 - 1e-9), (None, None)]):
        res = fit(
            model,
            [0.0, 1.0],
            y,
            transforms=[None, "positive"],
            bounds=bounds,
            method="average-information",
        )
        assert res.success, res.message
        assert abs(res.loglik - bounded.loglik) <= 1e-6
        assert np.all(np.abs(res.theta - bounded.theta) <= 0.01 * bounded.stderr)


def test_scipy_hessian_methods_get_the_average_information(ar1_fit):
    model, _, y, lbfgsb = ar1_fit
    res = fit(
        model,
        [0.5, 1.0, 1.0],
        y,
        transforms=["correlation", "positive", "positive"],
        method="trust-exact",
        standard_errors=False,
    )
    assert res.success, res.message
    assert abs(res.loglik - lbfgsb.loglik) <= 1e-6
    assert np.all(np.isfinite(res.stderr_ai))


def test_average_information_options_and_progress():
    n = 200
    model = ar1_model(n)
    A, B, *_ = model([0.6, 1.0, 1.0])
    y = ws.rwnorm(1, 0.0, ws.SymmetricWoodburyMatrix(A, B), random_state=4)
    kwargs = {
        "transforms": ["correlation", "positive", "positive"],
        "method": "average-information",
    }
    reported = []
    res = fit(model, [0.3, 1.0, 1.0], y, progress=lambda d, t: reported.append((d, t)), **kwargs)
    total = 200 + 2 * 3 + 1  # maxfev's default, + 2m + 1 for the standard errors
    assert reported[0] == (0, total) and reported[-1] == (total, total)
    assert [d for d, _ in reported][1:-1] == list(range(1, res.nfev + res.nhev + 1))
    short = fit(model, [0.3, 1.0, 1.0], y, options={"maxiter": 2}, **kwargs)
    assert not short.success and short.nit == 2
    assert short.message == "the maximum number of iterations (2) was reached"
    capped = fit(model, [0.3, 1.0, 1.0], y, options={"maxfev": 3}, **kwargs)
    assert not capped.success and capped.nfev == 3
    assert capped.message == "the maximum number of evaluations (3) was reached"
    loose = fit(model, [0.3, 1.0, 1.0], y, options={"tol": 1e-2}, **kwargs)
    assert loose.success and loose.nfev < res.nfev
    assert res.loglik - loose.loglik < 0.1  # stopped within a few tol of the optimum
    with pytest.raises(ValueError, match=r"`options` of method 'average-information' are"):
        fit(model, [0.3, 1.0, 1.0], y, options={"ftol": 1e-3}, **kwargs)


# -- the declarative model description ------------------------------------------------------------
def as_dense(d, n):
    if d is None:
        return np.zeros((n, n))
    if np.ndim(d) == 0:
        return d * np.eye(n)
    return d.toarray() if sparse.issparse(d) else np.asarray(d)


def test_a_description_builds_the_hand_written_model():
    n = 50
    described = ModelDescription(A=AR1(n, rho="rho", scale="tau"), B=Noise(n, "sigma2"))
    assert described.names == ("rho", "tau", "sigma2")
    assert described.transforms == ("correlation", "positive", "positive")
    theta = np.array([0.7, 1.5, 0.4])
    for ours, theirs in zip(described(theta), ar1_model(n)(theta), strict=True):
        if isinstance(ours, list):
            for d1, d2 in zip(ours, theirs, strict=True):
                np.testing.assert_array_equal(as_dense(d1, n), as_dense(d2, n))
        else:
            np.testing.assert_array_equal(as_dense(ours, n), as_dense(theirs, n))
    assert "AR1(n=50, rho='rho', scale='tau')" in repr(described)


def test_a_description_differentiates_shared_parameters():
    """A parameter in several terms (and blocks) is one parameter: its derivatives add.
    Checked against central differences of the blocks (linear or quadratic in θ except
    1/σ²: h = 1e-6 gives 1e-10 relative)."""
    rng = np.random.default_rng(3)
    n = 30
    weights = rng.uniform(0.5, 2.0, n)
    off = -np.ones(n - 1)
    L = sparse.diags_array([off, 2 * np.ones(n), off], offsets=[-1, 0, 1], format="csc")
    described = ModelDescription(
        A=[Noise(n, "s2"), Scaled("lam", weights)],
        B=[AR1(n, rho="rho", scale="lam"), Scaled("kappa", L), Scaled("lam", np.eye(n))],
    )
    assert described.names == ("s2", "lam", "rho", "kappa")
    theta = np.array([0.5, 1.3, 0.6, 0.2])
    _, _, dA, dB = described(theta)
    for k in range(theta.size):
        h = 1e-6 * theta[k]
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        for block, derivative in ((0, dA[k]), (1, dB[k])):
            fd = (as_dense(described(up)[block], n) - as_dense(described(down)[block], n)) / (2 * h)
            np.testing.assert_allclose(as_dense(derivative, n), fd, rtol=1e-8, atol=1e-8)
    assert dA[2] is None and dA[3] is None  # A does not depend on ρ or κ


def test_fit_reads_names_and_transforms_from_a_description(ai_fit, ar1_fit):
    y = ar1_fit[2]
    described = ModelDescription(A=AR1(y.size, rho="rho", scale="tau"), B=Noise(y.size, "sigma2"))
    res = fit(described, [0.5, 1.0, 1.0], y, method="average-information")
    assert res.names == ("rho", "tau", "sigma2")
    np.testing.assert_array_equal(res.theta, ai_fit.theta)  # the same model, the same steps
    assert res.nfev == ai_fit.nfev and res.loglik == ai_fit.loglik


def test_description_errors():
    with pytest.raises(ValueError, match=r"parameter 'r' is named as 'correlation' and as"):
        ModelDescription(A=AR1(5, rho="r"), B=Scaled("r", np.ones(5)))
    with pytest.raises(ValueError, match=r"`A` must have at least one term"):
        ModelDescription(A=[], B=Noise(5, "s"))
    with pytest.raises(TypeError, match=r"`B` must be a term \(Scaled, AR1, Noise\) or a list"):
        ModelDescription(A=Noise(5, "s"), B=np.eye(5))


def test_restricted_likelihood_fit():
    """fit(fixed=F): REML, the trend's coefficients integrated out. The maximum agrees with
    L-BFGS-B's, its value with the dense REML formula, and no nearby point is higher."""
    n = 400
    model = ar1_model(n)
    A, B, *_ = model([0.7, 1.0, 0.5])
    F = np.column_stack([np.ones(n), np.linspace(-1.0, 1.0, n)])
    y = ws.rwnorm(1, 0.0, ws.SymmetricWoodburyMatrix(A, B), random_state=8) + F @ [5.0, 2.0]
    kwargs = {"fixed": F, "transforms": ["correlation", "positive", "positive"]}
    ai = fit(model, [0.5, 1.5, 1.0], y, method="average-information", **kwargs)
    lbfgsb = fit(model, [0.5, 1.5, 1.0], y, **kwargs)
    assert ai.success and lbfgsb.success
    assert abs(ai.loglik - lbfgsb.loglik) <= 1e-6 and ai.nfev < lbfgsb.nfev

    def dense_reml(theta):
        a, b, *_ = model(theta)
        W = np.linalg.inv(a.toarray()) + np.linalg.inv(b.toarray())
        Wi = np.linalg.inv(W)
        G = F.T @ Wi @ F
        dev = y - F @ np.linalg.solve(G, F.T @ Wi @ y)
        return -0.5 * (
            (n - 2) * np.log(2 * np.pi)
            + np.linalg.slogdet(W)[1]
            + dev @ Wi @ dev
            + np.linalg.slogdet(G)[1]
        )

    assert ai.loglik == pytest.approx(dense_reml(ai.theta), rel=1e-12)
    for k in range(3):  # a maximum: a tenth of a standard error either way is lower
        for sign in (1, -1):
            moved = ai.theta.copy()
            moved[k] += sign * 0.1 * ai.stderr[k]
            assert dense_reml(moved) < ai.loglik
    # without F the trend is left in the residual: another likelihood, another maximum
    plain = fit(model, [0.5, 1.5, 1.0], y, transforms=kwargs["transforms"], standard_errors=False)
    assert plain.theta[0] != pytest.approx(ai.theta[0], rel=1e-3)
