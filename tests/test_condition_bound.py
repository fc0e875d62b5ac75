"""The diagonal-dominance bound that spares the capacitance's condition estimate.

:func:`~woodbury_sparse._factor._base.dominance_rcond_bound` may replace the Hager–Higham
estimate only where it *proves* the reciprocal condition number large enough, so it must
never exceed the exact ``1 / (‖M‖₁ ‖M⁻¹‖₁)``: hypothesis draws the structure of the
matrices (kind, order, margin of dominance, spread of scales, seed) and checks that
against a dense computation. The operators' ill-conditioning warnings themselves are
tested, unchanged, in ``test_diagnostics`` and ``test_failure_modes``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from scipy import sparse

import woodbury_sparse as ws
from conftest import EPS
from woodbury_sparse import testing
from woodbury_sparse._core import N_SIDE_RCOND, RCOND_WARNING
from woodbury_sparse._factor._base import dominance_rcond_bound

KINDS = (
    "ar1",
    "ar1_plus_diagonal",
    "grid",
    "random_symmetric",
    "random_general",
    "negative_diagonal",
    "diagonal",
)


def _matrix(kind: str, n: int, margin: float, spread: float, seed: int) -> sparse.csc_array:
    """A sparse matrix of ``kind`` whose columns are dominated with relative ``margin``.

    ``margin`` may be zero or negative (not dominant); ``spread`` scales rows and columns
    by up to ``10**spread`` (``D M D``), which keeps symmetry but moves dominance.
    """
    rng = np.random.default_rng(seed)
    if kind in ("ar1", "ar1_plus_diagonal"):
        rho = 1.0 / (1.0 + abs(margin)) if margin > 0 else 1.0
        m = sparse.csc_array(testing.ar1_precision(n, rho))
        if kind == "ar1_plus_diagonal":
            m = m + sparse.diags_array(rng.uniform(0.0, 1.0, n) * margin)
    elif kind == "grid":
        side = max(2, int(np.sqrt(n)))
        m = sparse.csc_array(testing.grid_precision(side, kappa=np.sqrt(max(margin, 0.0))))
    elif kind == "diagonal":
        m = sparse.diags_array(rng.uniform(0.1, 1.0, n) * 10.0 ** rng.uniform(0, 8, n))
    else:
        off = sparse.random_array((n, n), density=min(1.0, 3.0 / n), rng=rng)
        off = off - sparse.diags_array(off.diagonal())
        if kind != "random_general":
            off = off + off.T
        off.data *= rng.choice([-1.0, 1.0], off.data.size)
        column = np.asarray(abs(off).sum(axis=0)).ravel()
        sign = -1.0 if kind == "negative_diagonal" else 1.0
        m = off + sparse.diags_array(sign * (column * (1.0 + margin) + (margin > 0) * margin))
    scale = 10.0 ** rng.uniform(-spread, spread, m.shape[0])
    out = sparse.csc_array(sparse.diags_array(scale) @ m @ sparse.diags_array(scale))
    out.sum_duplicates()
    out.sort_indices()
    return out


def _exact_rcond(m: sparse.csc_array) -> tuple[float, float]:
    """``1 / cond₁(M)`` from a dense inverse, and the relative error allowed for it."""
    d = m.toarray()
    inverse = np.linalg.inv(d)
    cond1 = np.abs(d).sum(axis=0).max() * np.abs(inverse).sum(axis=0).max()
    return 1.0 / cond1, 10.0 * d.shape[0] * EPS * cond1


@given(
    kind=st.sampled_from(KINDS),
    n=st.integers(2, 40),
    margin=st.sampled_from([-0.5, -1e-3, 0.0, 1e-12, 1e-6, 1e-2, 0.3, 2.0]),
    spread=st.sampled_from([0.0, 0.5, 3.0]),
    seed=st.integers(0, 2**16),
)
def test_bound_never_exceeds_the_exact_reciprocal_condition(kind, n, margin, spread, seed):
    """``0 ≤ bound ≤ 1/cond₁(M)``, whatever the matrix: it never claims too much."""
    m = _matrix(kind, n, margin, spread, seed)
    bound = dominance_rcond_bound(m)
    note(f"bound {bound:.3e}")
    assert bound >= 0.0
    if bound == 0.0:
        return
    exact, tolerance = _exact_rcond(m)
    note(f"exact {exact:.3e}")
    assert bound <= exact * (1.0 + tolerance)


def test_bound_is_tight_for_a_diagonal_and_close_for_ar1_plus_noise():
    """Diagonal: ``min|d| / max|d|`` itself; ``I + Q(ρ = 0.9)``: within 10 % of exact."""
    d = np.array([4.0, -0.5, 2.0, 1.0])
    bound = dominance_rcond_bound(sparse.csc_array(sparse.diags_array(d)))
    assert bound == pytest.approx(0.125, rel=1e-14) and bound <= 0.125
    o = sparse.csc_array(testing.ar1_precision(200, 0.9) + sparse.eye_array(200))
    exact, _ = _exact_rcond(o)
    assert 0.9 * exact <= dominance_rcond_bound(o) <= exact


@pytest.mark.parametrize(
    "m",
    [
        testing.ar1_precision(50, 1.0),  # a random walk's precision: singular, gap 0
        sparse.csc_array(np.array([[1.0, 1.0], [1.0, 1.0]])),  # singular, gap 0
        sparse.csc_array(np.array([[1.0, 0.0], [2.0, 3.0]])),  # dominant by rows only
        sparse.csc_array((2, 2)),  # empty
        sparse.csc_array((0, 0)),
    ],
    ids=["random_walk", "ones", "rows_only", "zero", "empty"],
)
def test_bound_proves_nothing_without_strict_dominance(m):
    assert dominance_rcond_bound(sparse.csc_array(m)) == 0.0


def _capacitances():
    n = 400
    rng = np.random.default_rng(3)
    return {
        "ar1_plus_noise": dict(A=testing.ar1_precision(n, 0.9), B=sparse.eye_array(n)),
        "two_ar1": dict(A=testing.ar1_precision(n, 0.9), B=testing.ar1_precision(n, 0.5)),
        "near_unit_root": dict(
            A=testing.ar1_precision(n, 0.99999), B=sparse.diags_array(np.full(n, 1e-9))
        ),
        "grid_plus_noise": dict(
            A=testing.grid_precision(20, 0.3), B=sparse.diags_array(np.full(n, 2.0))
        ),
        "random_spd_b": dict(
            A=sparse.diags_array(rng.uniform(1.0, 1e4, n)),
            B=testing.random_spd(n, rng, density=0.01),
        ),
    }


CAPACITANCES = _capacitances()


@pytest.mark.parametrize("name", sorted(CAPACITANCES))
def test_the_bound_and_the_estimate_agree_on_every_threshold(name):
    """Where the bound decides, the Hager–Higham estimate would have decided alike."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ws.IllConditionedWarning)  # near_unit_root warns
        state = ws.SymmetricWoodburyMatrix(**CAPACITANCES[name])._state
        estimate = state.capacitance_rcond
    assert state.O.kind == "sparse"
    for threshold in (RCOND_WARNING, N_SIDE_RCOND, 1e-2):
        assert state.capacitance_rcond_below(threshold) == (estimate < threshold)


@pytest.mark.parametrize("name", ["ar1_plus_noise", "two_ar1", "grid_plus_noise"])
def test_a_dominant_capacitance_needs_no_condition_estimate(name):
    """A log density on a GMRF plus noise runs no solve for ``O``'s condition."""
    W = ws.SymmetricWoodburyMatrix(**CAPACITANCES[name])
    ws.dwnorm(np.ones(W.shape[0]), covariance=W, log=True)
    assert W._state.O.rcond_bound >= RCOND_WARNING
    assert "inverse_one_norm" not in W._state.O.factor.__dict__


def test_an_ill_conditioned_capacitance_still_warns_through_the_estimate():
    """``O = 1e-9 I + Q(0.99999)`` is dominant, but by too little to prove anything."""
    W = ws.SymmetricWoodburyMatrix(**CAPACITANCES["near_unit_root"])
    assert 0.0 < W._state.O.rcond_bound < RCOND_WARNING
    with pytest.warns(ws.IllConditionedWarning, match="capacitance"):
        ws.dwnorm(np.ones(W.shape[0]), covariance=W, log=True)
