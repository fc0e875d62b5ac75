"""LAPACK's banded Cholesky (the SciPy fallback's factor of narrow-band blocks).

The factor is tested on every backend directly, against dense NumPy; the choice of it by
the factor layer only where it is made (the SciPy backend).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from conftest import rel_err, tol
from woodbury_sparse._factor import (
    BACKEND,
    SCREENING_TRUSTED,
    _check_rcond,
    factor_selected_inverse,
    factorize,
)
from woodbury_sparse._factor._banded import BANDED_MAX_BANDWIDTH, BandedCholesky, lower_band
from woodbury_sparse._factor._sparse import SuperLUFactor
from woodbury_sparse.testing import ar1_precision, grid_precision


def _random_walk(n: int, order: int) -> sparse.csc_array:
    """``Dᵀ D + 0.1 I`` for the ``order``-th difference ``D``: bandwidth ``order``."""
    d = sparse.eye_array(n, format="csc")
    for _ in range(order):
        d = (d[1:] - d[:-1]).tocsc()
    return sparse.csc_array(d.T @ d + 0.1 * sparse.eye_array(n))


def _banded_random(n: int, u: int, seed: int) -> sparse.csc_array:
    """A random symmetric positive definite matrix of bandwidth exactly ``u``."""
    rng = np.random.default_rng(seed)
    offsets = list(range(-u, u + 1))
    diagonals = []
    for k in offsets:
        diagonals.append(rng.uniform(-1, 1, n - abs(k)))
    m = sparse.diags_array(diagonals, offsets=offsets, shape=(n, n))
    m = 0.5 * (m + m.T) + (2 * u + 2) * sparse.eye_array(n)
    return sparse.csc_array(m)


MATRICES = {
    "ar1": lambda: ar1_precision(300, 0.9),
    "rw2": lambda: _random_walk(300, 2),
    "band7": lambda: _banded_random(200, 7, 1),
    "band16": lambda: _banded_random(120, 16, 2),
    "order1": lambda: sparse.csc_array(np.array([[4.0]])),
}


@pytest.fixture(params=sorted(MATRICES))
def banded(request):
    m = MATRICES[request.param]()
    m.sort_indices()
    return m


def _bandwidth(m) -> int:
    coo = m.tocoo()
    return int(np.max(np.abs(coo.row - coo.col), initial=0))


def test_lower_band_is_lapacks_storage(banded):
    u = _bandwidth(banded)
    ab = lower_band(banded, u)
    dense = banded.toarray()
    n = dense.shape[0]
    for k in range(u + 1):
        np.testing.assert_array_equal(ab[k, : n - k], np.diagonal(dense, -k))
        np.testing.assert_array_equal(ab[k, n - k :], 0.0)


def test_banded_cholesky_against_numpy(banded):
    dense = banded.toarray()
    n = dense.shape[0]
    f = BandedCholesky.attempt(banded, _bandwidth(banded))
    assert f is not None and f.positive_definite
    b = np.linspace(-1.0, 2.0, n)
    B = np.column_stack([b, b**2])
    # c = 10: a Cholesky solve, backward stable, n·eps·κ.
    assert rel_err(f.solve(b), np.linalg.solve(dense, b)) <= tol(dense, 10.0)
    assert rel_err(f.solve(B), np.linalg.solve(dense, B)) <= tol(dense, 10.0)
    sign, logdet = np.linalg.slogdet(dense)
    assert f.slogdet[0] == sign == 1.0
    # The log-determinant: n terms of log lᵢᵢ, each to a few eps relative (c = 10).
    assert abs(f.slogdet[1] - logdet) <= 10.0 * n * np.finfo(float).eps * max(1.0, abs(logdet))
    lower, d, perm = f.ldl_parts()
    assert d is None
    np.testing.assert_array_equal(perm, np.arange(n))
    assert rel_err((lower @ lower.T).toarray(), dense) <= tol(dense, 10.0)
    z = np.random.default_rng(0).standard_normal((n, 3))
    assert rel_err(f.sqrt_t_matmul(z), lower.T.toarray() @ z) <= 10.0 * n * np.finfo(float).eps
    assert rel_err(f.sqrt_t_matmul(f.solve_sqrt_t(z)), z) <= tol(lower.toarray(), 10.0)
    assert rel_err(f.sqrt_t_matmul(z[:, 0]), f.sqrt_t_matmul(z)[:, 0]) == 0.0


def test_selected_inverse_of_a_banded_factor(banded):
    dense = banded.toarray()
    f = BandedCholesky.attempt(banded, _bandwidth(banded))
    z = factor_selected_inverse(f).toarray()
    inverse = np.linalg.inv(dense)
    on = z != 0
    assert np.all(on[dense != 0])  # the pattern of M at least
    assert rel_err(z[on], inverse[on]) <= tol(dense, 10.0)


def test_indefinite_band_is_refused():
    m = sparse.csc_array(
        sparse.diags_array([np.ones(9), np.full(10, -1.0), np.ones(9)], offsets=[-1, 0, 1])
    )
    assert BandedCholesky.attempt(m, 1) is None


@pytest.mark.skipif(BACKEND != "scipy", reason="the SciPy backend chooses it")
def test_the_fallback_chooses_it_for_narrow_bands_only():
    assert factorize(ar1_precision(400, 0.5), "sparse", 400, True, "A").method == (
        "lapack-banded-cholesky"
    )
    grid = grid_precision(30, 0.5, 30)  # bandwidth 30 > 16: SuperLU with its ordering
    assert 30 > BANDED_MAX_BANDWIDTH
    assert factorize(grid, "sparse", 900, True, "A").method.startswith("superlu")
    indefinite = sparse.csc_array(
        sparse.diags_array([np.ones(399), np.full(400, -3.0), np.ones(399)], offsets=[-1, 0, 1])
    )
    assert factorize(indefinite, "sparse", 400, True, "A").method.startswith("superlu")


def test_operators_on_banded_blocks_match_numpy():
    n = 400
    Q = ar1_precision(n, 0.9)
    W = ws.WoodburyMatrix(Q, sparse.eye_array(n) * 2.0)
    Wd = np.linalg.inv(Q.toarray()) + np.eye(n) / 2.0
    x = np.linspace(-1.0, 1.0, n)
    assert rel_err(W.solve(x), np.linalg.solve(Wd, x)) <= tol(Wd, 10.0)
    assert abs(W.slogdet()[1] - np.linalg.slogdet(Wd)[1]) <= tol(Wd, 10.0) * n
    draws = ws.rwnorm(4000, None, W, random_state=np.random.default_rng(5))
    # The sample covariance of 4000 draws: within 5 standard errors (√(2/4000)·|W|) entrywise.
    err = np.abs(np.cov(draws.T)[:5, :5] - Wd[:5, :5])
    assert np.all(
        err <= 5 * np.sqrt(2 / 4000) * np.sqrt(np.outer(np.diag(Wd)[:5], np.diag(Wd)[:5]))
    )


def test_empty_right_hand_sides_never_reach_tbtrs():
    """SciPy's ``dtbtrs`` corrupts the heap on a right-hand side with no columns.

    A crash there shows only later (in a garbage collection), so the test runs the
    calls many times in a fresh interpreter and asserts that it exits cleanly.
    """
    script = (
        "import gc, numpy as np\n"
        "from woodbury_sparse._factor._banded import BandedCholesky\n"
        "from woodbury_sparse.testing import ar1_precision\n"
        "f = BandedCholesky.attempt(ar1_precision(5, 0.5), 1)\n"
        "for _ in range(3000):\n"
        "    for shape in [(5, 0), (5,), (5, 3)]:\n"
        "        z = np.ones(shape)\n"
        "        assert f.solve_sqrt_t(z).shape == shape\n"
        "        assert f.solve(z).shape == shape and f.sqrt_t_matmul(z).shape == shape\n"
        "gc.collect()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def test_the_pivot_ratio_screens_from_above(banded):
    """``min lⱼⱼ² / max lⱼⱼ²`` lies between ``1/cond₂`` and 1, needing no ``‖M‖₁``."""
    f = BandedCholesky.attempt(banded, _bandwidth(banded))
    eigenvalues = np.linalg.eigvalsh(banded.toarray())
    exact = eigenvalues[0] / eigenvalues[-1]
    assert not f.screening_needs_norm
    assert exact * (1.0 - 1e-12) <= f.screening_rcond(np.nan) <= 1.0


def test_a_trusted_screen_spares_the_estimate_and_a_low_one_does_not():
    """Above ``√eps`` the pivot ratio decides alone (no solve); below, the 1-norm estimate
    is computed and decides: ``Q(1 − 1e-9)``, ``cond₂ ≈ 8e11``, is nonsingular at n = 400."""
    well = sparse.csc_array(ar1_precision(400, 0.9))
    f = BandedCholesky.attempt(well, 1)
    _check_rcond(f, well, "sparse", 400, "A", rcond_bound=0.0)
    assert "inverse_one_norm" not in f.__dict__
    near = sparse.csc_array(ar1_precision(400, 1.0 - 1e-9))
    g = BandedCholesky.attempt(near, 1)
    assert g.screening_rcond(np.nan) < SCREENING_TRUSTED
    _check_rcond(g, near, "sparse", 400, "A", rcond_bound=0.0)
    assert "inverse_one_norm" in g.__dict__


def test_a_dominant_block_spares_an_expensive_screen():
    """A factor without a free screen (SuperLU's) meets the dominance bound first."""
    grid = sparse.csc_array(grid_precision(20, 0.5))
    f = SuperLUFactor.attempt(grid, True)
    assert f.screening_needs_norm
    _check_rcond(f, grid, "sparse", 400, "A")
    assert "inverse_one_norm" not in f.__dict__
    _check_rcond(f, grid, "sparse", 400, "A", rcond_bound=0.0)  # no proof: the estimate
    assert "inverse_one_norm" in f.__dict__
