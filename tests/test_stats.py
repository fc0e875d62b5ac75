"""Gaussian statistics on Woodbury covariances, checked against dense SciPy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse, stats

import woodbury_sparse as ws
from woodbury_sparse import testing
from woodbury_sparse._factor import factorize

CATALOGUE = testing.catalogue(seed=3)
PD = [name for name, pr in CATALOGUE.items() if "pd" in pr.tags]
EPS = np.finfo(np.float64).eps


def _tol(dense: np.ndarray) -> float:
    """Relative tolerance from n · eps · cond(W)."""
    return max(1e-12, 50 * dense.shape[0] * EPS * np.linalg.cond(dense))


@pytest.fixture(params=PD)
def pd_problem(request):
    problem = CATALOGUE[request.param]
    return problem.build(), problem.dense()


def _points(n: int, k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((k, n))


# -- R's known values -------------------------------------------------------------------
def test_r_known_value_one_point():
    W = ws.WoodburyMatrix(sparse.eye_array(2), sparse.eye_array(2))  # W = 2 I
    expected = -np.log(2 * np.pi) - np.log(2.0) - 0.5  # −n/2 log 2π − ½ log 4 − ½ · 1
    assert ws.dwnorm(np.ones(2), covariance=W, log=True) == pytest.approx(expected, rel=1e-14)
    assert ws.dwnorm(np.ones(2), 0, W) == pytest.approx(np.exp(expected), rel=1e-14)
    assert expected == pytest.approx(-3.0310242469692907, rel=1e-15)


def test_r_known_value_two_rows():
    W = ws.WoodburyMatrix(sparse.eye_array(2), sparse.eye_array(2))
    x = np.array([[1.0, 1.0], [2.0, 0.0]])
    got = ws.dwnorm(x, covariance=W, log=True)
    maha = np.array([1.0, 2.0])
    np.testing.assert_allclose(got, -np.log(2 * np.pi) - np.log(2.0) - 0.5 * maha, rtol=1e-14)
    # the centre is subtracted from every row (R subtracts it along columns)
    np.testing.assert_allclose(ws.mahalanobis(x + np.array([3.0, -1.0]), [3.0, -1.0], W), maha)


# -- every function against dense SciPy over the catalogue ---------------------------------
def test_functions_match_dense_scipy(pd_problem):
    W, dense = pd_problem
    n = W.n
    mean = np.linspace(-1, 1, n)
    ref = stats.multivariate_normal(mean, dense)
    x = _points(n, 5) + mean
    rtol = _tol(dense)
    np.testing.assert_allclose(ws.dwnorm(x, mean, W, log=True), ref.logpdf(x), rtol=rtol)
    np.testing.assert_allclose(ws.dwnorm(x[0], mean, W), ref.pdf(x[0]), rtol=rtol * n)
    maha_ref = np.einsum("ij,ij->i", x - mean, np.linalg.solve(dense, (x - mean).T).T)
    np.testing.assert_allclose(ws.mahalanobis(x, mean, W), maha_ref, rtol=rtol)
    dist = ws.WoodburyNormal(mean, W)
    np.testing.assert_allclose(dist.logpdf(x), ref.logpdf(x), rtol=rtol)
    np.testing.assert_allclose(dist.pdf(x), ref.pdf(x), rtol=rtol * n)
    np.testing.assert_allclose(dist.mahalanobis(x), maha_ref, rtol=rtol)
    assert dist.entropy() == pytest.approx(ref.entropy(), rel=rtol)
    assert dist.dim == n
    np.testing.assert_array_equal(dist.mean, mean)
    assert dist.cov is W


def test_sampler_map_reproduces_w(pd_problem):
    W, dense = pd_problem
    G = W._state.colour(np.eye(W.n + W.p))  # the map rwnorm draws with
    np.testing.assert_allclose(G @ G.T, dense, rtol=0, atol=_tol(dense) * np.abs(dense).max())


def test_as_covariance_matches_scipy(pd_problem):
    W, dense = pd_problem
    cov = W.as_covariance()
    assert isinstance(cov, stats.Covariance)
    assert W.as_covariance() is cov
    n = W.n
    rtol = _tol(dense)
    atol = rtol * np.abs(dense).max()
    # colouring map applied to the identity: rows of Lᵀ, and L Lᵀ = W exactly
    C = cov.colorize(np.eye(n))
    np.testing.assert_allclose(C.T @ C, dense, rtol=0, atol=atol)
    np.testing.assert_allclose(cov.whiten(C), np.eye(n), rtol=0, atol=rtol)
    np.testing.assert_allclose(cov.covariance, dense, rtol=0, atol=atol)
    assert cov.rank == n and cov.shape == (n, n)
    assert cov.log_pdet == pytest.approx(np.linalg.slogdet(dense)[1], rel=rtol, abs=rtol)
    mean = np.linspace(-1, 1, n)
    ours = stats.multivariate_normal(mean, cov=cov)
    ref = stats.multivariate_normal(mean, dense)
    x = _points(n, 4) + mean
    np.testing.assert_allclose(ours.logpdf(x), ref.logpdf(x), rtol=rtol)
    assert ours.entropy() == pytest.approx(ref.entropy(), rel=rtol)
    draws = ours.rvs(size=(2, 3), random_state=1)
    assert draws.shape == (2, 3, n)


def test_as_covariance_diagonal_a_general_x():
    rng = np.random.default_rng(5)
    n, p = 40, 6
    a = rng.uniform(0.5, 3.0, n)
    X = rng.standard_normal((n, p))
    B = testing.random_spd(p, rng, dense=True)
    W = ws.WoodburyMatrix(sparse.diags_array(a), B, X=X)
    dense = W.toarray()
    cov = W.as_covariance()
    C = cov.colorize(np.eye(n))
    np.testing.assert_allclose(C.T @ C, dense, atol=1e-12 * np.abs(dense).max())
    x = rng.standard_normal((3, n))
    ref = stats.multivariate_normal(np.zeros(n), dense)
    np.testing.assert_allclose(
        stats.multivariate_normal(cov=cov).logpdf(x), ref.logpdf(x), rtol=1e-12
    )


# -- square roots of every factorisation backend ---------------------------------------------
@pytest.mark.parametrize(
    "matrix",
    [
        testing.random_spd(40, np.random.default_rng(0)),
        testing.ar1_precision(50, 0.9),
        testing.grid_precision(7, 0.3),
        testing.random_spd(200, np.random.default_rng(1), density=0.03),
    ],
    ids=["random", "ar1", "grid", "random200"],
)
def test_factor_square_root_sparse(matrix):
    m = sparse.csc_array(matrix)
    n = m.shape[0]
    factor = factorize(m, "sparse", n, True, "A")
    assert factor.positive_definite
    root = factor.solve_sqrt_t(np.eye(n))  # R⁻ᵀ, with R⁻ᵀ R⁻¹ = M⁻¹
    inverse = np.linalg.inv(m.toarray())
    np.testing.assert_allclose(root @ root.T, inverse, atol=1e-12 * np.abs(inverse).max())
    np.testing.assert_allclose(factor.solve_sqrt_t(np.eye(n)[:, 3]), root[:, 3], atol=1e-14)


@pytest.mark.parametrize("kind", ["dense", "diagonal", "identity"])
def test_factor_square_root_closed_form_and_dense(kind):
    rng = np.random.default_rng(2)
    n = 12
    if kind == "dense":
        m, dense = (d := testing.random_spd(n, rng, dense=True)), d
    elif kind == "diagonal":
        m = rng.uniform(0.5, 2, n)
        dense = np.diag(m)
    else:
        m, dense = None, np.eye(n)
    factor = factorize(m, kind, n, True, "A")
    root = factor.solve_sqrt_t(np.eye(n))
    np.testing.assert_allclose(root @ root.T, np.linalg.inv(dense), atol=1e-12)
    _check_sqrt_t_matmul(factor, dense)


def _check_sqrt_t_matmul(factor, dense: np.ndarray) -> None:
    """``Rᵀ`` from ``sqrt_t_matmul``: ``R Rᵀ = M`` and ``R⁻ᵀ (Rᵀ x) = x``."""
    n = dense.shape[0]
    scale = np.abs(dense).max()
    rt = factor.sqrt_t_matmul(np.eye(n))  # Rᵀ
    np.testing.assert_allclose(rt.T @ rt, dense, rtol=0, atol=1e-13 * n * scale)
    x = np.random.default_rng(4).standard_normal((n, 3))
    back = factor.solve_sqrt_t(factor.sqrt_t_matmul(x))
    np.testing.assert_allclose(back, x, rtol=0, atol=1e-12 * np.linalg.cond(dense))
    np.testing.assert_allclose(
        factor.sqrt_t_matmul(x[:, 0]), rt @ x[:, 0], rtol=1e-12, atol=1e-12 * scale
    )


SQRT_MATRICES = {
    "random": testing.random_spd(40, np.random.default_rng(0)),
    "ar1": testing.ar1_precision(50, 0.9),
    "grid": testing.grid_precision(7, 0.3),
    "random200": testing.random_spd(200, np.random.default_rng(1), density=0.03),
    "grid900": testing.grid_precision(30, 0.24),  # large enough for a supernodal CHOLMOD
}


@pytest.mark.parametrize("backend", ["cholmod", "cholmod-simplicial", "superlu"])
@pytest.mark.parametrize("name", sorted(SQRT_MATRICES))
def test_factor_sqrt_t_matmul_sparse(backend, name):
    from woodbury_sparse._factor import _sksparse
    from woodbury_sparse._factor._sparse import CholmodFactor, SuperLUFactor

    m = sparse.csc_array(SQRT_MATRICES[name])
    if backend == "superlu":
        factor = SuperLUFactor.attempt(m, symmetric=True)
    else:
        if not _sksparse.AVAILABLE:
            pytest.skip("scikit-sparse is not installed (SciPy fallback environment)")
        handle = _sksparse.CholmodHandle.factorize(
            m, ldl=False, simplicial=backend == "cholmod-simplicial"
        )
        factor = CholmodFactor(handle, m.shape[0])
    assert factor.positive_definite
    solved_before = factor.solve(np.ones(m.shape[0]))
    factor.sqrt_t_matmul(np.ones(m.shape[0]))
    # the factor's own solves are unaffected by extracting L (0.4 converts on a copy)
    np.testing.assert_array_equal(factor.solve(np.ones(m.shape[0])), solved_before)
    _check_sqrt_t_matmul(factor, m.toarray())
    if backend != "superlu":
        assert factor.handle._llt_parts is factor.handle._llt_parts  # computed once


def test_sqrt_t_matmul_needs_positive_definite():
    W = CATALOGUE["symmetric_indefinite_identity"].build()
    factor = W._parts.A.factor
    with pytest.raises(NotImplementedError, match="square root"):
        factor.sqrt_t_matmul(np.ones(W.n))


# -- sampling: moments and the distribution of the Mahalanobis distance -----------------------
def _sampling_problem():
    rng = np.random.default_rng(11)
    n, p = 6, 2
    return ws.WoodburyMatrix(testing.ar1_precision(n, 0.7), np.eye(p) * 2.0, X=rng.random((n, p)))


def test_sample_moments():
    W = _sampling_problem()
    dense = W.toarray()
    mean = np.arange(W.n, dtype=float)
    k = 20_000
    draws = ws.rwnorm(k, mean, W, random_state=np.random.default_rng(2024))
    assert draws.shape == (k, W.n)
    sd = np.sqrt(np.diag(dense))
    # 5 standard errors of the sample mean and of each sample covariance entry
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 5 * sd / np.sqrt(k))
    se_cov = np.sqrt((dense**2 + np.outer(sd**2, sd**2)) / k)
    assert np.all(np.abs(np.cov(draws, rowvar=False) - dense) < 5 * se_cov)


def test_mahalanobis_of_draws_is_chi_square():
    W = _sampling_problem()
    dist = ws.WoodburyNormal(1.5, W, seed=7)
    k = 4000
    d2 = dist.mahalanobis(dist.rvs(size=k))
    assert abs(d2.mean() - W.n) < 5 * np.sqrt(2 * W.n / k)
    assert stats.kstest(d2, stats.chi2(W.n).cdf).pvalue > 1e-3


def test_reproducible_draws():
    W = _sampling_problem()
    a = ws.rwnorm(3, None, W, random_state=42)
    np.testing.assert_array_equal(a, ws.rwnorm(3, None, W, random_state=42))
    np.testing.assert_array_equal(a, ws.rwnorm(3, None, W, random_state=np.random.default_rng(42)))
    legacy = ws.rwnorm(3, None, W, random_state=np.random.RandomState(0))
    assert legacy.shape == (3, W.n)
    d1, d2 = ws.WoodburyNormal(cov=W, seed=9), ws.WoodburyNormal(cov=W, seed=9)
    np.testing.assert_array_equal(d1.rvs(size=5), d2.rvs(size=5))
    assert not np.array_equal(d1.rvs(), d1.rvs())  # the frozen generator advances


# -- shapes ------------------------------------------------------------------------------------
def test_shapes():
    W = _sampling_problem()
    n = W.n
    dist = ws.WoodburyNormal(cov=W)
    assert isinstance(dist.logpdf(np.zeros(n)), float)
    assert isinstance(ws.mahalanobis(np.zeros(n), cov=W), float)
    assert isinstance(ws.dwnorm(np.zeros(n), covariance=W), float)
    for k in (0, 1, 4):
        x = np.zeros((k, n))
        assert dist.logpdf(x).shape == (k,)
        assert dist.pdf(x).shape == (k,)
        assert dist.mahalanobis(x).shape == (k,)
        assert ws.dwnorm(x, covariance=W, log=True).shape == (k,)
    assert dist.rvs().shape == (n,)
    assert dist.rvs(size=3).shape == (3, n)
    assert dist.rvs(size=(2, 3)).shape == (2, 3, n)
    assert dist.rvs(size=0).shape == (0, n)
    assert ws.rwnorm(1, 0.0, W).shape == (n,)
    assert ws.rwnorm(4, 0.0, W).shape == (4, n)
    assert ws.rwnorm(0, 0.0, W).shape == (0, n)


def test_mean_forms():
    W = _sampling_problem()
    n = W.n
    x = np.ones(n)
    base = ws.dwnorm(x, np.full(n, 0.5), W, log=True)
    assert ws.dwnorm(x, 0.5, W, log=True) == pytest.approx(base)
    assert ws.dwnorm(x, np.full((n, 1), 0.5), W, log=True) == pytest.approx(base)
    assert ws.dwnorm(x - 0.5, covariance=W, log=True) == pytest.approx(base)


# -- positive definiteness ---------------------------------------------------------------------
def test_pd_w_with_indefinite_b_has_a_density():
    X = np.ones((3, 1))
    W = ws.WoodburyMatrix(np.eye(3), -np.eye(1) * 4.0, X=X)  # I − XXᵀ/4: PD
    dense = W.toarray()
    x = np.array([0.3, -0.2, 1.0])
    ref = stats.multivariate_normal(np.zeros(3), dense)
    assert ws.dwnorm(x, covariance=W, log=True) == pytest.approx(ref.logpdf(x), rel=1e-12)


@pytest.mark.parametrize(
    "name", ["symmetric_indefinite_identity", "symmetric_indefinite_rectangular"]
)
def test_indefinite_w_has_no_density(name):
    W = CATALOGUE[name].build()
    assert np.linalg.eigvalsh(W.toarray()).min() < 0
    with pytest.raises(ws.NotPositiveDefiniteError, match="not positive definite") as info:
        ws.dwnorm(np.zeros(W.n), covariance=W, log=True)
    assert info.value.block == "W"
    with pytest.raises(ws.NotPositiveDefiniteError, match="no density"):
        ws.WoodburyNormal(cov=W).entropy()
    ws.mahalanobis(np.ones(W.n), cov=W)  # only needs a nonsingular W


def test_small_indefinite_w_detected():
    W = ws.WoodburyMatrix(np.eye(3), -np.eye(1), X=np.ones((3, 1)))  # I − XXᵀ: indefinite
    with pytest.raises(ws.NotPositiveDefiniteError, match=r"1 of its eigenvalues are ≤ 0"):
        ws.WoodburyNormal(cov=W).logpdf(np.zeros(3))


def test_sampling_needs_pd_blocks():
    W = ws.WoodburyMatrix(np.eye(3), -np.eye(1) * 4.0, X=np.ones((3, 1)))
    with pytest.raises(ws.NotPositiveDefiniteError, match="needs `B` positive definite") as info:
        ws.rwnorm(2, 0, W)
    assert info.value.block == "B"
    W = CATALOGUE["symmetric_indefinite_identity"].build()
    with pytest.raises(ws.NotPositiveDefiniteError, match="needs `A` positive definite"):
        ws.WoodburyNormal(cov=W).rvs()


def test_as_covariance_errors():
    W = ws.WoodburyMatrix(np.eye(3), -np.eye(1), X=np.ones((3, 1)))
    with pytest.raises(ws.NotPositiveDefiniteError, match="no covariance"):
        W.as_covariance()
    W = ws.WoodburyMatrix(np.diag([1.0, -1.0, 2.0]), np.eye(3))
    with pytest.raises(ws.NotPositiveDefiniteError, match="needs `A` positive definite"):
        W.as_covariance()
    # a sparse indefinite A (LDLᵀ): no Cholesky factor, hence no exact square root
    W = CATALOGUE["symmetric_indefinite_rectangular"].build()
    assert W._parts.A.kind == "sparse" and not W._parts.A.factor.positive_definite
    with pytest.raises(ws.NotPositiveDefiniteError, match="no other exact square root") as info:
        W.as_covariance()
    assert info.value.block == "A"


def test_as_covariance_sparse_a_large_selection():
    """Sparse A (AR(1) precision) with a sparse selection X: logpdf and colouring exact."""
    rng = np.random.default_rng(8)
    n, p = 400, 60
    rows = np.sort(rng.choice(n, p, replace=False))
    X = sparse.csc_array((np.ones(p), (rows, np.arange(p))), shape=(n, p))
    W = ws.WoodburyMatrix(testing.ar1_precision(n, 0.9), sparse.eye_array(p) * 0.5, X=X)
    assert W._parts.A.kind == "sparse"
    dense = W.toarray()
    cov = W.as_covariance()
    C = cov.colorize(np.eye(n))
    np.testing.assert_allclose(C.T @ C, dense, atol=1e-11 * np.abs(dense).max())
    x = rng.standard_normal((3, n))
    np.testing.assert_allclose(cov.whiten(cov.colorize(x)), x, atol=1e-11)
    ref = stats.multivariate_normal(np.zeros(n), dense)
    got = stats.multivariate_normal(cov=cov).logpdf(x)
    np.testing.assert_allclose(got, ref.logpdf(x), rtol=1e-10)
    np.testing.assert_allclose(got, ws.dwnorm(x, 0.0, W, log=True), rtol=1e-10)


# -- argument errors and warnings --------------------------------------------------------------
def test_argument_errors():
    W = _sampling_problem()
    n = W.n
    with pytest.raises(TypeError, match="`cov` is required"):
        ws.mahalanobis(np.zeros(n))
    with pytest.raises(TypeError, match="`covariance` must be a SymmetricWoodburyMatrix"):
        ws.dwnorm(np.zeros(n), 0, np.eye(n))
    general = ws.WoodburyMatrix(np.eye(2), np.eye(1), U=np.ones((2, 1)), V=np.ones((1, 2)))
    with pytest.raises(ValueError, match="got a general WoodburyMatrix"):
        ws.WoodburyNormal(cov=general)
    with pytest.raises(ValueError, match=rf"`x` must have shape \({n},\).*got shape \({n}, 3\)"):
        ws.dwnorm(np.zeros((n, 3)), covariance=W)
    with pytest.raises(ValueError, match="`x` contains NaN"):
        ws.mahalanobis(np.full(n, np.nan), cov=W)
    with pytest.raises(TypeError, match="`x` must hold real numbers"):
        ws.mahalanobis(np.full(n, "a"), cov=W)
    with pytest.raises(ValueError, match=rf"`mean` must be a scalar or have shape \({n},\)"):
        ws.rwnorm(2, np.zeros(n + 1), W)
    with pytest.raises(ValueError, match="`center` contains NaN"):
        ws.mahalanobis(np.zeros(n), np.full(n, np.inf), W)
    with pytest.raises(TypeError, match="`mean` must hold real numbers"):
        ws.WoodburyNormal(np.full(n, 1j), W)
    with pytest.raises(ValueError, match="`n` must be a non-negative integer"):
        ws.rwnorm(-1, 0, W)
    with pytest.raises(TypeError, match="`n` must be a non-negative integer"):
        ws.rwnorm(2.5, 0, W)
    with pytest.raises(ValueError, match="`size` must be non-negative"):
        ws.WoodburyNormal(cov=W).rvs(size=-2)


def test_pdf_underflow_warns():
    n = 2000
    W = ws.WoodburyMatrix(sparse.eye_array(n), sparse.eye_array(n))
    x = np.full(n, 3.0)
    logp = ws.dwnorm(x, covariance=W, log=True)
    assert np.isfinite(logp) and logp < -745
    with pytest.warns(ws.WoodburyWarning, match="underflows to 0"):
        assert ws.dwnorm(x, covariance=W) == 0.0
    with pytest.warns(ws.WoodburyWarning, match=r"use the log density \(`logpdf`"):
        ws.WoodburyNormal(cov=W).pdf(x[None, :])


def test_pdf_overflow_warns():
    n = 400
    W = ws.WoodburyMatrix(sparse.eye_array(n) * 1e6, sparse.eye_array(n) * 1e6)  # tiny cov
    with pytest.warns(ws.WoodburyWarning, match="overflows to inf"):
        ws.dwnorm(np.zeros(n), covariance=W)


def test_repr():
    W = _sampling_problem()
    assert repr(ws.WoodburyNormal(cov=W)).startswith("WoodburyNormal(dim=6, cov=<6×6")


def test_log_density_reads_a_read_only_point_without_a_mean():
    """Without a mean the point itself is solved with (no copy): it must stay unwritten."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 3))
    W = ws.SymmetricWoodburyMatrix(np.diag(rng.uniform(1, 2, 30)), np.eye(3), X=X)
    x = rng.standard_normal(30)
    x.flags.writeable = False
    dense = W.toarray()
    expected = -0.5 * (
        30 * np.log(2 * np.pi) + np.linalg.slogdet(dense)[1] + x @ np.linalg.solve(dense, x)
    )
    # κ(W) ≈ 10 and n = 30: n·eps·κ ≈ 1e-13 leaves room under 1e-12
    assert ws.dwnorm(x, covariance=W, log=True) == pytest.approx(expected, rel=1e-12)
    assert ws.mahalanobis(x[None, :], cov=W)[0] == pytest.approx(x @ np.linalg.solve(dense, x))
