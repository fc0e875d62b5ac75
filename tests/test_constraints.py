"""Gaussians conditioned on ``C x = e``, and sum-to-zero constraints, against dense NumPy.

The reference: ``m_c = m − Σ Cᵀ S⁻¹ (C m − e)``, ``Σ_c = Σ − Σ Cᵀ S⁻¹ C Σ`` with
``S = C Σ Cᵀ``, formed densely. Bases: a proper AR(1) and grid prior, a random sparse and a
small dense precision, and the posteriors of intrinsic fields (a first-order random walk
and an ICAR on a graph with several components and an island) observed with noise.

Tolerances: ``C_CON · n · eps · κ(Q) · κ(S)`` relative, ``C_CON = 8`` as in
``test_posterior`` (a few steps, each within ``n·eps·κ``; measured errors are below a tenth
of ``n · eps · κ(Q) · κ(S)``). Constrained draws satisfy ``C x = e`` to
``C_CON · n · eps · κ(S) · (|C| |x| + |e|)``, entry by entry.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from conftest import EPS, dense
from woodbury_sparse.testing import (
    ar1_precision,
    grid_precision,
    icar_precision,
    random_spd,
    rw1_precision,
)

#: The constant of the tolerances (see the module docstring).
C_CON = 8.0
#: Standard errors allowed in the seeded moment tests (seeded: same result every run).
Z_MOMENTS = 5.0


def _graph() -> sparse.csr_array:
    """Three components: a 5×5 grid (25 nodes), a path of 6 and a triangle; one island."""
    grid = grid_precision(5, 0.0)
    grid = sparse.csr_array((grid != 0).astype(float))
    grid.setdiag(0)
    path = sparse.diags_array([np.ones(5), np.ones(5)], offsets=[-1, 1])
    triangle = sparse.csr_array(np.ones((3, 3)) - np.eye(3))
    island = sparse.csr_array((1, 1))
    adjacency = sparse.block_diag([grid, path, triangle, island], format="csr")
    adjacency.eliminate_zeros()
    perm = np.random.default_rng(0).permutation(adjacency.shape[0])  # components interleave
    return sparse.csr_array(adjacency[perm][:, perm])


def _icar_posterior():
    adjacency = _graph()
    n = adjacency.shape[0]
    W = ws.WoodburyMatrix(np.eye(n) / 0.3, 2.0 * icar_precision(adjacency), symmetric=True)
    y = np.random.default_rng(1).standard_normal(n)
    latent = ws.latent_posterior(W, y).latent
    return latent, ws.sum_to_zero(adjacency), 0.0


def _rw1_posterior():
    n = 80
    W = ws.WoodburyMatrix(np.eye(n) / 0.5, 10.0 * rw1_precision(n), symmetric=True)
    y = np.cos(np.linspace(0, 4, n)) + 2.0
    return ws.latent_posterior(W, y).latent, np.ones((1, n)), 0.0


def _bases():
    rng = np.random.default_rng(3)
    return {
        "ar1_sum_to_zero": lambda: (
            ws.PrecisionNormal(rng.standard_normal(300), ar1_precision(300, 0.9)),
            np.ones(300),
            0.0,
        ),
        "grid_three_dense_rows": lambda: (
            ws.PrecisionNormal(1.0, grid_precision(17, 0.4)),
            rng.standard_normal((3, 289)),
            rng.standard_normal(3),
        ),
        "random_sparse_sparse_rows": lambda: (
            ws.PrecisionNormal(None, random_spd(200, rng, density=0.02)),
            sparse.random_array((4, 200), density=0.1, rng=rng) + sparse.eye_array(4, 200),
            np.arange(4.0),
        ),
        "dense_small": lambda: (
            ws.PrecisionNormal(rng.standard_normal(12), random_spd(12, rng, dense=True)),
            rng.standard_normal((2, 12)),
            np.array([1.0, -1.0]),
        ),
        "icar_posterior": _icar_posterior,
        "rw1_posterior": _rw1_posterior,
    }


BASES = _bases()


class Reference:
    def __init__(self, base, C, e) -> None:
        q = dense(base.precision)
        self.cov0 = np.linalg.inv(q)
        c = dense(C) if sparse.issparse(C) else np.atleast_2d(np.asarray(C, float))
        e = np.broadcast_to(np.asarray(e, float), (c.shape[0],))
        s = c @ self.cov0 @ c.T
        gain = self.cov0 @ c.T @ np.linalg.inv(s)
        self.mean = base.mean - gain @ (c @ base.mean - e)
        self.cov = self.cov0 - gain @ c @ self.cov0
        self.c, self.e, self.s = c, e, s
        self.n = q.shape[0]
        self.kappa_s = np.linalg.cond(s)
        self.tol = C_CON * self.n * EPS * np.linalg.cond(q) * self.kappa_s


def _rel(actual, expected) -> float:
    return float(np.abs(np.asarray(actual) - expected).max() / np.abs(expected).max())


@pytest.fixture(params=sorted(BASES))
def constrained(request):
    base, C, e = BASES[request.param]()
    return base, C, e, Reference(base, C, e), base.condition(C, e)


def test_conditional_mean_variances_and_entries(constrained):
    base, _, _, ref, dist = constrained
    assert _rel(dist.mean, ref.mean) <= ref.tol
    var = dist.var()
    assert _rel(var, np.diag(ref.cov)) <= ref.tol
    assert np.all(var >= 0) and np.all(var <= base.var() * (1 + ref.tol))
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, ref.n, 50), rng.integers(0, ref.n, 50)
    assert _rel(dist.cov_entries(i, j), ref.cov[i, j]) <= ref.tol
    assert isinstance(dist.cov_entries(0, 1), float)
    b = rng.standard_normal((ref.n, 2))
    assert _rel(dist.cov @ b, ref.cov @ b) <= ref.tol
    assert np.allclose(dist.std() ** 2, var, rtol=4 * EPS, atol=0)


def test_the_mean_satisfies_the_constraints(constrained):
    _, _, _, ref, dist = constrained
    scale = np.abs(ref.c) @ np.abs(dist.mean) + np.abs(ref.e)
    assert np.all(np.abs(ref.c @ dist.mean - ref.e) <= C_CON * ref.n * EPS * ref.kappa_s * scale)


def test_draws_satisfy_the_constraints_to_roundoff(constrained):
    _, _, _, ref, dist = constrained
    draws = dist.rvs(size=50, random_state=8)
    residual = np.abs(draws @ ref.c.T - ref.e)
    scale = np.abs(draws) @ np.abs(ref.c).T + np.abs(ref.e)
    assert np.all(residual <= C_CON * ref.n * EPS * ref.kappa_s * scale)


def test_colouring_reproduces_the_conditional_covariance(constrained):
    _, _, _, ref, dist = constrained
    g = dist.colorize(np.eye(dist.white_dim))
    assert _rel(g.T @ g, ref.cov) <= ref.tol
    z = np.random.default_rng(4).standard_normal((3, dist.white_dim))
    assert _rel(dist.rvs(size=3, random_state=4), dist.mean + dist.colorize(z)) <= ref.tol


def test_logpdf_is_the_density_on_the_constraint_set(constrained):
    """Against ``−½ ((n−k) log 2π + log pdet Σ_c + dᵀ Σ_c⁺ d)`` (Lebesgue on the set)."""
    _, _, _, ref, dist = constrained
    k = ref.c.shape[0]
    values, vectors = np.linalg.eigh(ref.cov)
    values, vectors = values[k:], vectors[:, k:]  # rank n − k
    x = dist.rvs(size=3, random_state=2)
    dev = (x - ref.mean) @ vectors
    expected = -0.5 * (
        (ref.n - k) * np.log(2 * np.pi) + np.sum(np.log(values)) + np.sum(dev**2 / values, axis=1)
    )
    got = dist.logpdf(x)
    assert np.abs(got - expected).max() <= ref.tol * np.abs(expected).max()
    assert dist.logpdf(x[0]) == pytest.approx(expected[0], rel=ref.tol)
    assert dist.logpdf(x[0] + ref.c[0]) == -np.inf  # off the set


def test_conditioning_twice_stacks_the_constraints():
    base, C, e = BASES["grid_three_dense_rows"]()
    once = base.condition(C, e)
    twice = base.condition(C[:1], e[:1]).condition(C[1:], e[1:])
    ref = Reference(base, C, e)
    assert twice.base is base and twice.constraints.shape == (3, base.dim)
    assert _rel(twice.mean, once.mean) <= ref.tol
    assert _rel(twice.var(), once.var()) <= ref.tol
    direct = ws.ConstrainedNormal(base.condition(C[:2], e[:2]), C[2], e[2])
    assert _rel(direct.mean, once.mean) <= ref.tol


def test_seeded_moments_of_constrained_draws():
    base = ws.PrecisionNormal(np.linspace(0, 1, 6), ar1_precision(6, 0.6))
    C = np.array([np.ones(6), np.arange(6.0)])
    ref = Reference(base, C, [1.0, 2.0])
    draws = base.condition(C, [1.0, 2.0]).rvs(size=20000, random_state=5)
    count = draws.shape[0]
    sd = np.sqrt(np.diag(ref.cov))
    assert np.all(np.abs(draws.mean(axis=0) - ref.mean) <= Z_MOMENTS * sd / np.sqrt(count))
    se = np.sqrt((np.outer(sd**2, sd**2) + ref.cov**2) / count)
    assert np.all(np.abs(np.cov(draws, rowvar=False) - ref.cov) <= Z_MOMENTS * se + 1e-15)


def test_a_batch_is_conditioned_column_by_column():
    q = ar1_precision(40, 0.8)
    means = np.random.default_rng(0).standard_normal((40, 3))
    batch = ws.PrecisionNormal(means, q).condition(np.ones(40), [[0.0, 1.0, 2.0]])
    for k in range(3):
        one = ws.PrecisionNormal(means[:, k], q).condition(np.ones(40), float(k))
        assert np.allclose(batch.mean[:, k], one.mean, rtol=0, atol=40 * EPS * 100)
        assert batch.logpdf(batch.mean)[k] == pytest.approx(one.logpdf(one.mean), rel=1e-12)
    draws = batch.rvs(size=4, random_state=0)
    assert draws.shape == (4, 40, 3)
    assert np.allclose(draws.sum(axis=1), [0.0, 1.0, 2.0], rtol=0, atol=1e-12)
    shared = ws.PrecisionNormal(means, q).condition(np.ones(40), 0.5)  # e broadcast
    assert np.allclose(shared.mean.sum(axis=0), 0.5, rtol=0, atol=1e-12)


def test_icar_posterior_sums_to_zero_per_component():
    latent, C, _ = _icar_posterior()
    field = latent.condition(C)
    draws = field.rvs(size=10, random_state=0)
    assert np.allclose(draws @ C.T.toarray(), 0.0, rtol=0, atol=1e-12)
    island = np.flatnonzero(np.asarray(C.sum(axis=1)).ravel() == 1)
    node = C[island].indices
    assert field.var()[node] == pytest.approx(0.0, abs=1e-14)  # an island is held at 0


def test_sum_to_zero():
    adjacency = _graph()
    C = ws.sum_to_zero(adjacency)
    assert C.shape == (4, adjacency.shape[0])
    assert sorted(np.asarray(C.sum(axis=1)).ravel()) == [1, 3, 6, 25]
    assert np.array_equal(np.asarray(C.sum(axis=0)).ravel(), np.ones(adjacency.shape[0]))
    first = [C.indices[C.indptr[r]] for r in range(C.shape[0])]
    assert first == sorted(first)  # ordered by lowest node
    # the null space of the ICAR precision is spanned by C's rows
    assert np.abs(icar_precision(adjacency) @ C.T.toarray()).max() == 0.0
    assert np.array_equal(ws.sum_to_zero(icar_precision(adjacency)).toarray(), C.toarray())
    dense_c = ws.sum_to_zero(np.array([[0, 1], [1, 0]]))
    assert dense_c.toarray().tolist() == [[1.0, 1.0]]


# -- errors -------------------------------------------------------------------------------
def test_constraint_errors():
    base = ws.PrecisionNormal(None, ar1_precision(5, 0.5))
    with pytest.raises(TypeError, match="`base` must be a PrecisionNormal or ConstrainedNormal"):
        ws.ConstrainedNormal(np.eye(5), np.ones(5))
    with pytest.raises(ValueError, match=r"`C` must have 5 columns \(one per variable\)"):
        base.condition(np.ones((1, 4)))
    with pytest.raises(ValueError, match="`C` must have between 1 and 5 rows"):
        base.condition(np.ones((0, 5)))
    with pytest.raises(ValueError, match="`C` must have between 1 and 5 rows"):
        base.condition(np.eye(6, 5))
    with pytest.raises(ValueError, match=r"`C` must be 1-D .* or 2-D"):
        base.condition(np.ones((1, 1, 5)))
    with pytest.raises(ValueError, match="`C` contains NaN"):
        base.condition(np.full(5, np.nan))
    with pytest.raises(ValueError, match="`C` contains NaN"):
        base.condition(sparse.csr_array(np.full((1, 5), np.inf)))
    with pytest.raises(TypeError, match="`C` must hold real numbers"):
        base.condition(np.array(["a"] * 5))
    with pytest.raises(ValueError, match="the rows of `C` must be linearly independent"):
        base.condition(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"`e` must be a scalar or have shape \(1,\)"):
        base.condition(np.ones(5), [0.0, 1.0])
    with pytest.raises(ValueError, match="`e` contains NaN"):
        base.condition(np.ones(5), np.nan)
    with pytest.raises(TypeError, match="`e` must hold real numbers"):
        base.condition(np.ones(5), "zero")
    with pytest.raises(ValueError, match=r"`adjacency` must be square"):
        ws.sum_to_zero(np.ones((2, 3)))
