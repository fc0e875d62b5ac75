"""The posterior of the latent components, and ``PrecisionNormal``, against dense NumPy.

The model ``y = μ + e + X z`` with ``e ~ N(0, A⁻¹)``, ``z ~ N(0, B⁻¹)`` has the dense
reference ``O = B + Xᵀ A X``, ``z | y ~ N(O⁻¹ Xᵀ A (y − μ), O⁻¹)``,
``e | y ~ N(y − μ − X E[z | y], X O⁻¹ Xᵀ)``, checked over every positive definite symmetric
problem of the catalogue and over problems large enough that ``O`` stays sparse (the
selected-inverse route): AR(1) plus noise, a 2-D grid, a random sparse precision, a
selection ``X`` as in the Mauna Loa example, Bayesian regression with a dense ``X``.

Tolerances: ``C_POST · d · eps · κ(O)`` relative (``d`` the larger dimension), with
``C_POST = 8``: every number is a few steps (a product, a solve, a recursion), each within
``d·eps·κ``; measured errors are below ``0.1 · d · eps · κ(O)`` on the catalogue and reach
``1.5 · eps`` on a ``1×1`` problem, and a wrong term gives errors of order one.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse, stats

import woodbury_sparse as ws
from conftest import EPS, dense
from woodbury_sparse import testing
from woodbury_sparse.testing import ar1_precision, grid_precision, random_spd, rw1_precision

#: The constant of the tolerances ``C_POST · d · eps · κ(O)`` (see the module docstring).
C_POST = 8.0

#: Standard errors allowed in the seeded moment tests: a seeded draw, so the test passes
#: or fails the same way every run; 5 standard errors is a 1-in-10⁶ event per entry.
Z_MOMENTS = 5.0


def _dense_parts(W):
    a, b, x = (dense(m) if not isinstance(m, np.ndarray) else m for m in (W.A, W.B, W.U))
    return dense(a), dense(b), dense(x)


class Reference:
    """The dense posterior of ``y = μ + e + X z`` for one operator ``W``."""

    def __init__(self, W, y, mu) -> None:
        a, b, x = _dense_parts(W)
        self.o = b + x.T @ a @ x
        self.cov = np.linalg.inv(self.o) if self.o.size else self.o
        resid = y - (mu if y.ndim == 1 else mu[:, None])
        self.mean = self.cov @ (x.T @ (a @ resid))
        self.noise_mean = resid - x @ self.mean
        self.noise_cov = x @ self.cov @ x.T
        self.kappa = np.linalg.cond(self.o) if self.o.size else 1.0
        self.d = max(W.n, W.p, 1)

    def tol(self, c: float = C_POST) -> float:
        return c * self.d * EPS * self.kappa


def _rel(actual, expected) -> float:
    scale = max(np.abs(expected).max(initial=0.0), np.finfo(float).tiny)
    return float(np.abs(np.asarray(actual) - expected).max(initial=0.0) / scale)


# -- the problems ----------------------------------------------------------------------------
def _selection(n_all: int, rng) -> sparse.csr_array:
    keep = np.sort(rng.choice(n_all, size=int(0.7 * n_all), replace=False))
    return sparse.eye_array(n_all, format="csr")[keep]


def _large_problems():
    """Problems with ``p > 256``: the capacitance stays sparse (selected inverse route)."""
    rng = np.random.default_rng(7)
    s = _selection(400, rng)
    return {
        "ar1_noise_sparse": ws.WoodburyMatrix(
            sparse.diags_array(np.full(400, 1 / 0.3)), ar1_precision(400, 0.95), symmetric=True
        ),
        "grid_noise_sparse": ws.WoodburyMatrix(
            sparse.diags_array(np.full(324, 2.0)), grid_precision(18, 0.3), symmetric=True
        ),
        "random_spd_sparse": ws.WoodburyMatrix(
            random_spd(300, rng, density=0.01), random_spd(300, rng, density=0.01), symmetric=True
        ),
        "mauna_loa_selection": ws.WoodburyMatrix(
            sparse.diags_array(np.full(s.shape[0], 4.0)), ar1_precision(400, 0.9), X=s
        ),
        "sparse_x_rows": ws.WoodburyMatrix(
            sparse.diags_array(np.full(300, 2.0)),
            ar1_precision(300, 0.8),
            X=testing.random_sparse(300, 300, 0.005, rng) + sparse.eye_array(300),
        ),
        "bayesian_regression": ws.WoodburyMatrix(
            np.eye(500) / 0.5**2, np.eye(6) / 10.0, X=rng.standard_normal((500, 6))
        ),
    }


LARGE = _large_problems()
SMALL = {
    name: pr
    for name, pr in testing.catalogue(seed=3).items()
    if "pd" in pr.tags and pr.symmetric and name != "float32"
}
ALL = sorted(SMALL) + sorted(LARGE)


def _operator(name):
    return LARGE[name] if name in LARGE else SMALL[name].build()


@pytest.fixture(params=ALL)
def model(request):
    W = _operator(request.param)
    rng = np.random.default_rng(11)
    y = rng.standard_normal(W.n)
    mu = 0.3
    return W, y, Reference(W, y, np.full(W.n, mu)), ws.latent_posterior(W, y, mu)


def test_latent_mean_and_variances(model):
    W, _, ref, post = model
    if W.p == 0:
        assert post.latent.mean.shape == (0,) and post.latent.var().shape == (0,)
        return
    assert _rel(post.latent.mean, ref.mean) <= ref.tol()
    assert _rel(post.latent.var(), np.diag(ref.cov)) <= ref.tol()
    assert np.allclose(post.latent.std() ** 2, post.latent.var(), rtol=4 * EPS, atol=0)


def test_noise_mean_and_variances(model):
    W, y, ref, post = model
    assert _rel(post.noise.mean, ref.noise_mean) <= ref.tol()
    if W.p:
        assert _rel(post.noise.var(), np.diag(ref.noise_cov)) <= ref.tol()
    # e + X z = y − μ at the means.
    x = dense(W.U) if not isinstance(W.U, np.ndarray) else W.U
    assert _rel(post.noise.mean + x @ post.latent.mean, y - 0.3) <= ref.tol()


def test_mean_agrees_with_the_kriging_formula(model):
    """``E[z | y] = B⁻¹ Xᵀ W⁻¹ (y − μ)``: the other route to the same number."""
    W, y, ref, post = model
    if W.p == 0:
        return
    a, b, x = _dense_parts(W)
    w = np.linalg.inv(a) + x @ np.linalg.solve(b, x.T)
    kriging = np.linalg.solve(b, x.T @ np.linalg.solve(w, y - 0.3))
    assert _rel(post.latent.mean, kriging) <= ref.tol() * np.linalg.cond(w)


def test_selected_covariance_entries(model):
    W, _, ref, post = model
    if W.p == 0:
        return
    rng = np.random.default_rng(5)
    p = W.p
    i = np.r_[np.arange(p), rng.integers(0, p, 40), np.arange(p - 1)]
    j = np.r_[np.arange(p), rng.integers(0, p, 40), np.arange(1, p)]  # diag, random, lag 1
    assert _rel(post.latent.cov_entries(i, j), ref.cov[i, j]) <= ref.tol()
    n = W.n
    i2, j2 = rng.integers(0, n, 30), rng.integers(0, n, 30)
    assert _rel(post.noise.cov_entries(i2, j2), ref.noise_cov[i2, j2]) <= ref.tol()
    assert isinstance(post.latent.cov_entries(0, 0), float)
    assert post.latent.cov_entries(np.zeros((2, 3), int), 0).shape == (2, 3)
    assert post.latent.cov_entries(-1, -1) == pytest.approx(ref.cov[-1, -1], rel=ref.tol())


def test_covariance_operators(model):
    W, _, ref, post = model
    if W.p == 0:
        return
    rng = np.random.default_rng(2)
    b = rng.standard_normal((W.p, 3))
    assert _rel(post.latent.cov @ b, ref.cov @ b) <= ref.tol()
    c = rng.standard_normal((W.n, 2))
    assert _rel(post.noise.cov @ c, ref.noise_cov @ c) <= ref.tol()


def test_colouring_reproduces_the_covariance(model):
    """The exact linear map behind ``rvs``: ``G Gᵀ = Σ`` (``G`` applied to the identity)."""
    W, _, ref, post = model
    if W.p == 0:
        return
    g = post.latent.colorize(np.eye(post.latent.white_dim))  # rows: Gᵀ
    assert _rel(g.T @ g, ref.cov) <= ref.tol()
    h = post.noise.colorize(np.eye(post.noise.white_dim))
    assert _rel(h.T @ h, ref.noise_cov) <= ref.tol()
    # rvs is the mean plus that map applied to the generator's standard normals
    z = np.random.default_rng(9).standard_normal((4, W.p))
    draws = post.latent.rvs(size=4, random_state=9)
    assert _rel(draws, post.latent.mean + post.latent.colorize(z)) <= ref.tol()
    noise_draws = post.noise.rvs(size=4, random_state=9)
    assert _rel(noise_draws, post.noise.mean + post.noise.colorize(z)) <= ref.tol()


def test_logpdf_matches_scipy(model):
    W, _, ref, post = model
    if W.p == 0 or W.p > 400:
        return
    x = np.random.default_rng(4).standard_normal((3, W.p)) + post.latent.mean
    expected = stats.multivariate_normal(post.latent.mean, ref.cov).logpdf(x)
    got = post.latent.logpdf(x)
    assert np.abs(got - expected).max() <= ref.tol() * np.abs(expected).max()
    assert post.latent.logpdf(x[0]) == pytest.approx(expected[0], rel=ref.tol())


def test_several_observations_at_once(model):
    W, y, ref, _ = model
    ys = np.column_stack([y, 2 * y + 1, -y])
    many = ws.latent_posterior(W, ys, 0.3)
    assert many.latent.mean.shape == (W.p, 3) and many.noise.mean.shape == (W.n, 3)
    for k in range(3):
        one = ws.latent_posterior(W, ys[:, k], 0.3)
        assert _rel(many.latent.mean[:, k], one.latent.mean) <= ref.tol()
        assert _rel(many.noise.mean[:, k], one.noise.mean) <= ref.tol()
    assert many.latent.var().shape == (W.p,)
    draws = many.latent.rvs(size=2, random_state=0)
    assert draws.shape == (2, W.p, 3)
    assert many.latent.rvs(random_state=0).shape == (W.p, 3)
    if W.p:
        logp = many.latent.logpdf(many.latent.mean)
        assert logp.shape == (3,) and np.ptp(logp) <= ref.tol() * np.abs(logp).max()


def test_frozen_spelling_is_the_same(model):
    W, y, _, post = model
    other = ws.WoodburyNormal(0.3, W).posterior(y)
    assert np.array_equal(other.latent.mean, post.latent.mean)
    assert np.array_equal(other.noise.mean, post.noise.mean)


# -- reuse: nothing is factorised again -----------------------------------------------------
def test_the_cached_capacitance_factor_is_reused(count_factorisations):
    W = LARGE["ar1_noise_sparse"]
    W = ws.WoodburyMatrix(W.A, W.B, symmetric=True)  # a fresh operator: cold caches
    y = np.ones(W.n)
    W.solve(y)  # factorises O (only)
    assert count_factorisations == ["O"]
    count_factorisations.clear()
    post = ws.latent_posterior(W, y)
    post.latent.var()
    post.latent.rvs(size=3, random_state=0)
    post.noise.var()
    post.latent.condition(np.ones(W.p)).var()
    assert count_factorisations == []  # never W, A or B; O not again


def test_the_posterior_factorises_only_o(count_factorisations):
    W = ws.WoodburyMatrix(np.eye(50) * 2, ar1_precision(50, 0.5), symmetric=True)
    ws.latent_posterior(W, np.ones(50)).latent.rvs(random_state=0)
    assert count_factorisations == ["O"]


# -- draws: seeded moments and reproducibility ---------------------------------------------
def _check_moments(draws, mean, cov):
    count = draws.shape[0]
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(draws.mean(axis=0) - mean) <= Z_MOMENTS * sd / np.sqrt(count))
    sample = np.cov(draws, rowvar=False)
    # var(Ŝᵢⱼ) ≈ (Σᵢᵢ Σⱼⱼ + Σᵢⱼ²) / N for Gaussian draws
    se = np.sqrt((np.outer(sd**2, sd**2) + cov**2) / count)
    assert np.all(np.abs(sample - cov) <= Z_MOMENTS * se)


def test_draws_have_the_posterior_moments():
    W = ws.WoodburyMatrix(np.eye(8) / 0.5, ar1_precision(8, 0.9), symmetric=True)
    y = np.linspace(-1, 1, 8)
    ref = Reference(W, y, np.zeros(8))
    post = ws.latent_posterior(W, y)
    _check_moments(post.latent.rvs(size=20000, random_state=123), ref.mean, ref.cov)
    _check_moments(post.noise.rvs(size=20000, random_state=321), ref.noise_mean, ref.noise_cov)


def test_draws_are_reproducible_from_a_seed_or_generator():
    post = ws.latent_posterior(LARGE["mauna_loa_selection"], np.ones(280))
    a = post.latent.rvs(size=3, random_state=42)
    b = post.latent.rvs(size=3, random_state=np.random.default_rng(42))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, post.latent.rvs(size=3, random_state=43))
    assert post.latent.rvs(size=(2, 3), random_state=1).shape == (2, 3, 400)
    assert post.latent.rvs(size=0, random_state=1).shape == (0, 400)
    assert post.noise.rvs(random_state=1).shape == (280,)
    # rng= (SPEC 7) reads the seed as default_rng does: the same draws as random_state=
    assert np.array_equal(post.latent.rvs(size=3, rng=42), a)
    assert np.array_equal(post.noise.rvs(rng=np.random.default_rng(7)), post.noise.rvs(rng=7))
    constrained = post.latent.condition(np.ones(400))
    assert np.array_equal(constrained.rvs(rng=3), constrained.rvs(random_state=3))


# -- PrecisionNormal on its own --------------------------------------------------------------
@pytest.mark.parametrize(
    "kind", ["sparse_ar1", "sparse_grid", "sparse_random", "dense", "diagonal", "identity"]
)
def test_precision_normal_against_dense(kind):
    rng = np.random.default_rng(1)
    q = {
        "sparse_ar1": ar1_precision(300, 0.7),
        "sparse_grid": grid_precision(17, 0.4),
        "sparse_random": random_spd(300, rng, density=0.01),
        "dense": random_spd(40, rng, dense=True),
        "diagonal": sparse.diags_array(rng.uniform(0.5, 2.0, 30)),
        "identity": np.eye(20),
    }[kind]
    qd = dense(q)
    d = qd.shape[0]
    cov = np.linalg.inv(qd)
    tol = C_POST * d * EPS * np.linalg.cond(qd)
    mean = rng.standard_normal(d)
    dist = ws.PrecisionNormal(mean, q)
    assert dist.dim == d and dist.batch is None and dist.white_dim == d
    assert np.array_equal(dist.mean, mean) and not dist.mean.flags.writeable
    assert _rel(dense(dist.precision), qd) == 0.0
    assert _rel(dist.var(), np.diag(cov)) <= tol
    i, j = np.triu_indices(d)
    assert _rel(dist.cov_entries(i, j), cov[i, j]) <= tol
    # repeated pairs, both orders of a pair, and pairs off the factor's pattern at once
    i2 = np.array([0, 0, 1, d - 1, 0, d - 1, 0])
    j2 = np.array([1, 1, 0, 0, d - 1, d - 1, 1])
    assert _rel(dist.cov_entries(i2, j2), cov[i2, j2]) <= tol
    g = dist.colorize(np.eye(d))
    assert _rel(g.T @ g, cov) <= tol
    x = rng.standard_normal((2, d))
    expected = stats.multivariate_normal(mean, cov).logpdf(x)
    assert np.abs(dist.logpdf(x) - expected).max() <= tol * np.abs(expected).max()
    assert repr(dist).startswith("PrecisionNormal(dim=")


def test_precision_normal_leaves_its_inputs_alone():
    q = ar1_precision(20, 0.5)
    before = q.toarray()
    mean = np.ones(20)
    dist = ws.PrecisionNormal(mean, q)
    dist.precision.data[:] = 0.0  # a copy
    assert np.array_equal(q.toarray(), before) and np.array_equal(dist.mean, mean)
    mean[0] = 5.0
    assert dist.mean[0] == 1.0


# -- intrinsic fields -------------------------------------------------------------------
def test_an_intrinsic_prior_is_refused_naming_the_precision():
    with pytest.raises(
        (ws.SingularMatrixError, ws.NotPositiveDefiniteError), match=r"`precision`.*intrinsic"
    ) as info:
        ws.PrecisionNormal(None, rw1_precision(50))
    assert info.value.block == "precision"


def test_a_random_walk_observed_with_noise_has_a_proper_posterior():
    """RW1 prior (singular ``B``) plus noise: ``O = B + A`` is positive definite."""
    n = 60
    W = ws.WoodburyMatrix(np.eye(n) / 0.2, 4.0 * rw1_precision(n), symmetric=True)
    y = np.sin(np.linspace(0, 3, n))
    post = ws.latent_posterior(W, y)
    o = 4.0 * dense(rw1_precision(n)) + np.eye(n) / 0.2
    cov = np.linalg.inv(o)
    tol = C_POST * n * EPS * np.linalg.cond(o)
    assert _rel(post.latent.mean, cov @ (y / 0.2)) <= tol
    assert _rel(post.latent.var(), np.diag(cov)) <= tol


# -- errors -------------------------------------------------------------------------------
def test_latent_posterior_errors():
    W = ws.WoodburyMatrix(np.eye(4), np.eye(2), X=np.ones((4, 2)))
    with pytest.raises(TypeError, match="`W` must be a SymmetricWoodburyMatrix"):
        ws.latent_posterior(np.eye(4), np.ones(4))
    with pytest.raises(TypeError, match="`W` is required"):
        ws.latent_posterior(None, np.ones(4))
    with pytest.raises(ValueError, match="`W` must be a SymmetricWoodburyMatrix"):
        ws.latent_posterior(ws.WoodburyMatrix(np.eye(4), np.eye(4) + np.eye(4, k=1)), np.ones(4))
    with pytest.raises(ValueError, match="`y` has length 3 but the matrix is 4×4"):
        ws.latent_posterior(W, np.ones(3))
    with pytest.raises(ValueError, match="`y` contains NaN"):
        ws.latent_posterior(W, np.array([1.0, np.nan, 0, 0]))
    with pytest.raises(TypeError, match="`y` must hold real numbers"):
        ws.latent_posterior(W, np.ones(4) * 1j)
    with pytest.raises(ValueError, match=r"`mean` must be a scalar or have shape \(4,\)"):
        ws.latent_posterior(W, np.ones(4), np.ones(3))
    indefinite = ws.WoodburyMatrix(-np.eye(4), np.eye(2), X=np.ones((4, 2)))
    with pytest.raises(
        ws.NotPositiveDefiniteError, match=r"`O` is not positive definite.*A and B must be"
    ) as e:
        ws.latent_posterior(indefinite, np.ones(4))
    assert e.value.block == "O"
    # an RW1 prior on 6 points observed on the first 3 only...
    identified = ws.WoodburyMatrix(
        np.eye(3), rw1_precision(6), X=np.hstack([np.eye(3), np.zeros((3, 3))])
    )
    # ...is identified (the walk links the points); a second walk never observed is not
    two_walks = sparse.block_diag([rw1_precision(3), rw1_precision(3)])
    with pytest.raises(ws.SingularMatrixError, match="the data must identify every direction"):
        ws.latent_posterior(
            ws.WoodburyMatrix(np.eye(3), two_walks, X=np.hstack([np.eye(3), np.zeros((3, 3))])),
            np.ones(3),
        )
    assert ws.latent_posterior(identified, np.ones(3)).latent.var().shape == (6,)


def test_precision_normal_errors():
    with pytest.raises(ValueError, match=r"`precision` must be square, got shape \(2, 3\)"):
        ws.PrecisionNormal(None, np.ones((2, 3)))
    with pytest.raises(ValueError, match="`precision` is not symmetric"):
        ws.PrecisionNormal(None, np.array([[2.0, 1.0], [0.0, 2.0]]))
    with pytest.raises(ws.NotPositiveDefiniteError, match="`precision` is not positive definite"):
        ws.PrecisionNormal(None, np.diag([1.0, -1.0]) + 0.1)
    with pytest.raises(ws.SingularMatrixError, match="`precision` is singular"):
        ws.PrecisionNormal(None, np.diag([1.0, 0.0]))
    with pytest.raises(TypeError, match="`precision` is complex"):
        ws.PrecisionNormal(None, np.eye(2) * 1j)
    with pytest.raises(ValueError, match=r"`mean` must be a scalar or have shape \(2,\)"):
        ws.PrecisionNormal(np.ones(3), np.eye(2))
    with pytest.raises(ValueError, match="`mean` contains NaN"):
        ws.PrecisionNormal([np.inf, 0.0], np.eye(2))
    with pytest.raises(TypeError, match="`mean` must hold real numbers"):
        ws.PrecisionNormal(["a", "b"], np.eye(2))


def test_method_argument_errors():
    dist = ws.PrecisionNormal(None, ar1_precision(5, 0.5))
    with pytest.raises(TypeError, match="`i` must hold integers"):
        dist.cov_entries(0.5, 1)
    with pytest.raises(IndexError, match=r"`j` holds 5, outside \[-5, 5\)"):
        dist.cov_entries(0, 5)
    with pytest.raises(ValueError, match=r"`z` must have shape \(5,\) or \(m, 5\)"):
        dist.colorize(np.ones(4))
    with pytest.raises(TypeError, match="`z` must hold real numbers"):
        dist.colorize(np.array(["a"] * 5))
    with pytest.raises(ValueError, match=r"`x` must have shape \(5,\) for one point"):
        dist.logpdf(np.ones(4))
    with pytest.raises(ValueError, match="`x` contains NaN"):
        dist.logpdf(np.full(5, np.nan))
    with pytest.raises(TypeError, match="`size` must be an int or a tuple of ints"):
        dist.rvs(size=1.5)
    with pytest.raises(ValueError, match="`size` must be non-negative"):
        dist.rvs(size=-1)
    with pytest.raises(TypeError, match="`random_state` must be None"):
        dist.rvs(random_state="seed")
    with pytest.raises(TypeError, match="`rng` must be None"):
        dist.rvs(rng="seed")
    with pytest.raises(TypeError, match=r"rvs\(\) got both `rng` and `random_state`"):
        dist.rvs(rng=1, random_state=1)
    batch = ws.PrecisionNormal(np.ones((5, 2)), ar1_precision(5, 0.5))
    with pytest.raises(ValueError, match=r"`x` must have shape \(5, 2\) \(one point per member"):
        batch.logpdf(np.ones(5))


# -- structure drawn by hypothesis ----------------------------------------------------------
@st.composite
def _models(draw):
    """A positive definite model: sizes, the kind of ``X``, densities, spreads and a seed."""
    n = draw(st.integers(1, 40))
    p = draw(st.integers(1, 45))
    x_kind = draw(st.sampled_from(["identity", "selection", "dense", "sparse"]))
    density = draw(st.floats(0.05, 0.5))
    spread = draw(st.floats(0.0, 3.0))  # log10 of the range of the noise precisions
    seed = draw(st.integers(0, 2**32 - 1))
    batch = draw(st.sampled_from([None, 2]))
    rng = np.random.default_rng(seed)
    if x_kind == "identity":
        p = n
        x = sparse.eye_array(n)
    elif x_kind == "selection":
        p = max(p, n)
        x = sparse.eye_array(p, format="csr")[np.sort(rng.choice(p, n, replace=False))]
    elif x_kind == "dense":
        x = rng.standard_normal((n, p))
    else:
        x = testing.random_sparse(n, p, density, rng)
    a = sparse.diags_array(10.0 ** rng.uniform(0, spread, n))
    b = random_spd(p, rng, density=density)
    y = rng.standard_normal(n if batch is None else (n, batch))
    return ws.WoodburyMatrix(a, b, X=x), y


@given(_models())
def test_posterior_properties(model):
    W, y = model
    mu = np.zeros(W.n)
    ref = Reference(W, y, mu)
    post = ws.latent_posterior(W, y)
    assert _rel(post.latent.mean, ref.mean) <= ref.tol()
    assert _rel(post.latent.var(), np.diag(ref.cov)) <= ref.tol()
    assert _rel(post.noise.mean, ref.noise_mean) <= ref.tol()
    if np.abs(ref.noise_cov).max() > 0:
        assert _rel(post.noise.var(), np.diag(ref.noise_cov)) <= ref.tol()
    g = post.latent.colorize(np.eye(W.p))
    assert _rel(g.T @ g, ref.cov) <= ref.tol()
    constrained = post.latent.condition(np.ones(W.p))
    draw = constrained.rvs(random_state=0)
    # |Σ x| at round-off of the unconstrained draw it corrects (size Σ |x| + Σ sd)
    scale = np.abs(draw).sum(axis=0) + post.latent.std().sum()
    assert np.all(np.abs(draw.sum(axis=0)) <= ref.tol() * scale)


# -- the noise posterior under linear constraints ------------------------------------------
def _constrained_reference(ref, C, c):
    """``e | y, C e = c`` by the dense formulas: the conditional Gaussian of ``e | y``."""
    cov = ref.noise_cov
    s = C @ cov @ C.T
    gain = np.linalg.solve(s, C @ cov).T  # Σ Cᵀ S⁻¹
    gap = C @ ref.noise_mean - c
    return ref.noise_mean - gain @ gap, cov - gain @ C @ cov, np.linalg.cond(s)


def test_noise_condition_against_dense(model):
    """Mean, variances, covariance entries and the colouring of ``e | y, C e = c``.

    Tolerance ``C_POST · d · eps · κ(O) · κ(C Σ Cᵀ)`` relative to the unconstrained
    covariance (the correction subtracts from it), and to ``|E[e | y]| + |c|`` for means.
    """
    W, _, ref, post = model
    if W.p < 2:
        return
    rng = np.random.default_rng(4)
    C = rng.standard_normal((2, W.n))
    c = rng.standard_normal(2)
    held = post.noise.condition(C, c)
    mean, cov, kappa_s = _constrained_reference(ref, C, c)
    tol = ref.tol() * kappa_s
    cov_scale = np.abs(ref.noise_cov).max()
    mean_scale = np.abs(ref.noise_mean).max() + np.abs(c).max()
    assert np.abs(held.mean - mean).max() <= tol * mean_scale
    assert np.abs(C @ held.mean - c).max() <= tol * mean_scale * np.abs(C).sum(axis=1).max()
    assert np.abs(held.var() - np.diag(cov)).max() <= tol * cov_scale
    i, j = rng.integers(0, W.n, 20), rng.integers(0, W.n, 20)
    assert np.abs(held.cov_entries(i, j) - cov[i, j]).max() <= tol * cov_scale
    g = held.colorize(np.eye(held.white_dim))  # rows: Gᵀ
    assert np.abs(g.T @ g - cov).max() <= tol * cov_scale
    draws = held.rvs(size=3, random_state=1)
    scale = np.abs(C) @ np.abs(draws.T) + np.abs(c)[:, None]
    assert np.all(np.abs(C @ draws.T - c[:, None]) <= 64 * W.n * EPS * scale)


@pytest.mark.parametrize("name", ["ar1_noise_sparse", "mauna_loa_selection"])
def test_noise_condition_sum_to_zero_sparse_and_batched(name):
    """A sparse 1-row ``C`` (sum to zero), several ``y`` with their own ``c``, repeated."""
    W = LARGE[name]
    rng = np.random.default_rng(6)
    y = rng.standard_normal((W.n, 2))
    post = ws.latent_posterior(W, y, 0.1)
    ref = Reference(W, y, np.full(W.n, 0.1))
    C = sparse.csr_array(np.ones((1, W.n)))
    c = np.array([[0.5, -1.0]])
    held = post.noise.condition(C, c)
    assert held.mean.shape == (W.n, 2)
    for col in range(2):
        one = Reference.__new__(Reference)
        one.noise_mean, one.noise_cov = ref.noise_mean[:, col], ref.noise_cov
        mean, cov, kappa_s = _constrained_reference(one, C.toarray(), c[:, col])
        tol = ref.tol() * kappa_s
        assert np.abs(held.mean[:, col] - mean).max() <= tol * np.abs(one.noise_mean).max()
        assert np.abs(held.var() - np.diag(cov)).max() <= tol * np.abs(ref.noise_cov).max()
    draws = held.rvs(size=2, random_state=np.random.default_rng(3))  # (2, n, 2)
    np.testing.assert_allclose(draws.sum(axis=1), np.broadcast_to(c, (2, 2)), atol=1e-9)
    # Twice in a row is once with both constraints (the latent constraints accumulate).
    D = np.zeros((1, W.n))
    D[0, :5] = 1.0
    twice = held.condition(D, 0.0)
    once = post.noise.condition(np.vstack([C.toarray(), D]), np.vstack([c, [[0.0, 0.0]]]))
    np.testing.assert_allclose(twice.mean, once.mean, rtol=0, atol=1e-10)
    np.testing.assert_allclose(twice.var(), once.var(), rtol=0, atol=1e-10)
    assert "constraints=2" in repr(twice)


def test_noise_condition_errors():
    W = ws.WoodburyMatrix(np.eye(4), np.eye(2), X=np.array([[1.0, 0], [1, 0], [0, 1], [0, 1]]))
    noise = ws.latent_posterior(W, [1.0, 2.0, 3.0, 4.0]).noise
    with pytest.raises(ValueError, match=r"`C` must have 4 columns"):
        noise.condition(np.ones((1, 3)))
    with pytest.raises(ValueError, match="`C` contains NaN or infinite values"):
        noise.condition(np.array([[1.0, np.nan, 0, 0]]))
    with pytest.raises(ValueError, match=r"`e` must be a scalar or have shape \(1,\)"):
        noise.condition(np.ones(4), [0.0, 1.0])
    with pytest.raises(ValueError, match="`e` contains NaN or infinite values"):
        noise.condition(np.ones(4), np.inf)
    with pytest.raises(TypeError, match="`C`"):
        noise.condition(np.ones(4) * 1j)
    # e₀ − e₁ = (y₀ − y₁) − (z₀ − z₀): fixed given y, so C X = 0.
    with pytest.raises(ValueError, match="`C X` must have linearly independent rows"):
        noise.condition(np.array([1.0, -1.0, 0, 0]))
    with pytest.raises(ValueError, match="`C X` must have linearly independent rows"):
        noise.condition(np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))  # both rows ↦ z₀
    with pytest.raises(ValueError, match="more constraints than latent dimensions, 2"):
        noise.condition(np.eye(4)[:3])
