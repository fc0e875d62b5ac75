"""Condition estimates, the ill-conditioning warning, iterative refinement, explicit shift.

``capacitance_rcond`` is LAPACK's ``pocon``/``gecon`` for a dense capacitance ``O`` and
the Hager–Higham estimate of ``‖O⁻¹‖₁`` (a few solves with the cached factor) for a sparse
one, whatever factorised it (CHOLMOD, SuperLU, a bordered extension). Both estimate
``‖O⁻¹‖₁`` from below, so the reciprocal estimate is never below the exact ``1/cond₁(O)``
and "almost invariably" within a factor 3 of it (Higham, *Accuracy and Stability*, §15.3);
measured: within 1.4 over the small catalogue, within 1.17 over the sparse one below.
CHOLMOD's pivot ratio ``min dᵢ / max dᵢ``, used before for a sparse ``O``, was 1,598
times optimistic on the near-unit-root probe below and hid its ill-conditioning.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from conftest import CATALOGUE, EPS, NAMES, dense, rel_err
from woodbury_sparse import testing
from woodbury_sparse._factor import BACKEND
from woodbury_sparse._operators import RCOND_WARNING


def _ill_conditioned_capacitance(n: int = 20, spread: float = 10.0, seed: int = 0):
    """``W = A⁻¹ + I`` with ``A`` SPD of eigenvalues ``1 … 10^spread`` (dense, rotated).

    ``W`` has eigenvalues in ``[1, 2]``: perfectly conditioned. ``O = I + A`` has
    ``cond(O) ≈ 10^spread / 2``: below ``√eps`` in reciprocal for ``spread ≥ 8``. The
    solve ``x = A b − A O⁻¹ A b`` cancels terms of size ``10^spread`` to an ``x`` of size
    1: a backward error of about ``eps · cond(O)``.
    """
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * np.logspace(0, spread, n)) @ q.T
    a = (a + a.T) / 2
    return ws.WoodburyMatrix(a, np.eye(n), symmetric=True), rng.standard_normal(n)


# -- condition estimates -------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_capacitance_rcond_matches_lapack_condition(name):
    W = CATALOGUE[name].build()
    if W.p == 0:
        assert W.capacitance_rcond() == 1.0
        return
    o = dense(W.capacitance)
    exact = 1.0 / np.linalg.cond(o, 1)
    assert exact / 10 <= W.capacitance_rcond() <= 10 * exact


def test_capacitance_rcond_of_ill_conditioned_o():
    W, _ = _ill_conditioned_capacitance(spread=10.0)
    exact = 1.0 / np.linalg.cond(dense(W.capacitance), 1)
    assert exact < RCOND_WARNING
    assert exact / 10 <= W.capacitance_rcond() <= 10 * exact


def _sparse_capacitances() -> dict[str, dict]:
    """Problems whose capacitance ``O`` (400×400) stays sparse: CHOLMOD or SuperLU."""
    rng = np.random.default_rng(0)
    n = 400
    return {
        "ar1_plus_noise": dict(A=testing.ar1_precision(n, 0.95), B=sparse.eye_array(n)),
        "near_unit_root": dict(
            A=testing.ar1_precision(n, 0.99999), B=sparse.diags_array(np.full(n, 1e-9))
        ),
        "grid_plus_noise": dict(
            A=testing.grid_precision(20, 0.3), B=sparse.diags_array(np.full(n, 2.0))
        ),
        "random_spd_b": dict(
            A=sparse.diags_array(rng.uniform(1.0, 1e4, n)),
            B=testing.random_spd(n, rng, density=0.005),
        ),
        "indefinite": dict(
            A=testing.random_symmetric_indefinite(n, rng, density=0.005),
            B=sparse.diags_array(np.full(n, 0.5)),
        ),
        "general": dict(
            A=testing.random_sparse(n, n, 0.005, rng, diagonal=4.0),
            B=testing.random_sparse(n, n, 0.005, rng, diagonal=3.0),
        ),
        "wide_spectrum": dict(
            A=sparse.diags_array(np.logspace(0, 8, n)),
            B=1e-3 * testing.random_spd(n, rng, density=0.005),
        ),
    }


SPARSE_CAPACITANCES = _sparse_capacitances()


@pytest.mark.parametrize("name", sorted(SPARSE_CAPACITANCES))
def test_sparse_capacitance_rcond_against_dense_cond1(name):
    """Hager–Higham on the cached factor: ``1/cond₁(O) ≤ estimate ≤ 3/cond₁(O)``.

    The lower bound holds because the estimate of ``‖O⁻¹‖₁`` is a lower bound; it is
    checked up to the error of NumPy's own ``cond₁``, ``10·n·eps·cond₁(O)`` relative.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ws.IllConditionedWarning)  # near_unit_root warns
        W = ws.WoodburyMatrix(**SPARSE_CAPACITANCES[name])
        estimate = W.capacitance_rcond()
    assert W._O.kind == "sparse"
    o = dense(W.capacitance)
    cond1 = np.linalg.cond(o, 1)
    exact = 1.0 / cond1
    assert exact * (1.0 - 10 * o.shape[0] * EPS * cond1) <= estimate <= 3.0 * exact


def test_near_unit_root_capacitance_warns():
    """``O = 1e-9 I + Q(ρ = 0.99999)``: ``1/cond₁(O) = 1.3e-8 < √eps``, W itself κ = 1.02.

    CHOLMOD's pivot ratio said 2.0e-5 (1,598 times optimistic): no warning. The estimate
    says 1.3e-8, and the warning points at the solve whose digits it concerns.
    """
    W = ws.WoodburyMatrix(**SPARSE_CAPACITANCES["near_unit_root"])
    with pytest.warns(ws.IllConditionedWarning, match="capacitance") as record:
        W.solve(np.ones(W.n))
    assert record[0].filename == __file__
    assert W.capacitance_rcond() < RCOND_WARNING
    if BACKEND == "cholmod" and W._O.factor.handle.pivots() is not None:
        d = np.abs(W._O.factor.handle.pivots())
        assert d.min() / d.max() > 1e3 * W.capacitance_rcond()  # what the ratio said


@pytest.mark.parametrize("name", ["general", "near_unit_root"])
def test_condition_estimate_leaves_numpy_global_random_state_alone(name):
    """SciPy's ``onenormest`` with ``t ≥ 2`` draws from NumPy's global generator; ours not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ws.IllConditionedWarning)
        np.random.seed(12345)  # noqa: NPY002 - the global state is the point
        expected = np.random.random_sample(3)  # noqa: NPY002
        np.random.seed(12345)  # noqa: NPY002 - the global state is the point
        W = ws.WoodburyMatrix(**SPARSE_CAPACITANCES[name])
        first = W.capacitance_rcond()
        np.testing.assert_array_equal(np.random.random_sample(3), expected)  # noqa: NPY002
        assert ws.WoodburyMatrix(**SPARSE_CAPACITANCES[name]).capacitance_rcond() == first


def test_capacitance_rcond_without_update():
    W = ws.WoodburyMatrix(np.eye(3), np.zeros((0, 0)), X=np.zeros((3, 0)))
    assert W.capacitance_rcond() == 1.0


# -- the warning ---------------------------------------------------------------------------
def test_ill_conditioned_warning_points_at_caller_once_per_operator():
    W, b = _ill_conditioned_capacitance()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        W.solve(b)
        W.solve(b)
        W.slogdet()
        W.solve(b, refine=1)
    ours = [w for w in caught if issubclass(w.category, ws.IllConditionedWarning)]
    assert len(ours) == 1
    assert ours[0].filename == __file__
    assert [w for w in caught if w not in ours] == []
    message = str(ours[0].message)
    assert "ill-conditioned" in message and "refine=" in message
    # A new operator warns again.
    W2, _ = _ill_conditioned_capacitance()
    with pytest.warns(ws.IllConditionedWarning, match="capacitance") as record:
        W2.slogdet()
    assert record[0].filename == __file__
    assert issubclass(ws.IllConditionedWarning, ws.WoodburyWarning)
    assert issubclass(ws.WoodburyWarning, UserWarning)


def test_ill_conditioned_warning_from_inverse_operator():
    W, b = _ill_conditioned_capacitance()
    with pytest.warns(ws.IllConditionedWarning) as record:
        W.inv() @ b
    assert record[0].filename == __file__


@pytest.mark.parametrize("name", NAMES)
def test_no_warning_for_catalogue(name, rng):
    W = CATALOGUE[name].build()
    b = rng.standard_normal(W.n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        W.solve(b)
        W.slogdet()
        W @ b
        W.solve(b, refine=1)
        assert W.capacitance_rcond() >= RCOND_WARNING


# -- iterative refinement ------------------------------------------------------------------
def _backward_error(Wd, x, b) -> float:
    return float(np.linalg.norm(b - Wd @ x) / (np.linalg.norm(Wd, 2) * np.linalg.norm(x)))


def test_refinement_restores_backward_stability():
    # Measured (n = 20, cond(O) = 5e9, cond(W) = 2): backward error 1.8e-7 without
    # refinement, 9e-14 after one step, 1.2e-16 after two: each step multiplies the error
    # by about eps·cond(O) = 1e-6.
    W, b = _ill_conditioned_capacitance(spread=10.0)
    Wd = W.toarray()
    assert np.linalg.cond(Wd) <= 3
    with pytest.warns(ws.IllConditionedWarning):
        x0 = W.solve(b)
    x2 = W.solve(b, refine=2)
    before, after = _backward_error(Wd, x0, b), _backward_error(Wd, x2, b)
    assert before >= 1e4 * W.n * EPS  # the unrefined solve really has lost digits
    assert after <= 10 * W.n * EPS
    assert after <= 1e-6 * before
    exact = np.linalg.solve(Wd, b)  # W is well conditioned: a fine reference
    assert rel_err(x2, exact) <= 10 * W.n * EPS * np.linalg.cond(Wd)


def test_refinement_with_several_right_hand_sides():
    W, _ = _ill_conditioned_capacitance(spread=10.0)
    B = np.random.default_rng(5).standard_normal((W.n, 3))
    with pytest.warns(ws.IllConditionedWarning):
        X = W.solve(B, refine=3)
    assert X.shape == B.shape
    assert rel_err(X, np.linalg.solve(W.toarray(), B)) <= 100 * W.n * EPS


def test_refinement_zero_steps_is_plain_solve(rng):
    W = CATALOGUE["spd_rectangular"].build()
    b = rng.standard_normal(W.n)
    np.testing.assert_array_equal(W.solve(b, refine=0), W.solve(b))
    np.testing.assert_array_equal(W.solve(b, refine=np.int64(0)), W.solve(b))


@pytest.mark.parametrize("refine", [-1, 1.0, 0.5, True, False, "2", None, [1]])
def test_refine_argument_errors(refine):
    W = CATALOGUE["spd_rectangular"].build()
    with pytest.raises(ValueError, match="`refine` must be a non-negative integer"):
        W.solve(np.ones(W.n), refine=refine)


# -- explicit shift ------------------------------------------------------------------------
def test_intrinsic_gmrf_is_refused_with_shift_hint():
    Q = testing.grid_precision(4, 0.0)  # graph Laplacian: constant vectors in its kernel
    W = ws.WoodburyMatrix(Q, sparse.eye_array(16))
    with pytest.raises(ws.SingularMatrixError, match="shift=") as info:
        W.slogdet()
    assert info.value.block == "A"
    with pytest.raises(ws.SingularMatrixError, match="shift="):
        W @ np.ones(16)


@pytest.mark.parametrize("beta", [1e-3, 0.5, 2])
@pytest.mark.parametrize("form", ["sparse", "dense"])
def test_shift_is_exactly_regularised_a(beta, form):
    Q = testing.grid_precision(4, 0.0)
    A = Q if form == "sparse" else Q.toarray()
    n = Q.shape[0]
    B = sparse.diags_array(np.full(n, 2.0))
    W = ws.WoodburyMatrix(A, B, shift=beta)
    shifted = dense(Q) + beta * np.eye(n)
    reference = testing.dense_woodbury(shifted, B)
    kappa = max(np.linalg.cond(reference), np.linalg.cond(shifted))
    bound = 10 * n * EPS * kappa
    assert rel_err(W.toarray(), reference) <= bound
    b = np.arange(n, dtype=float)
    assert rel_err(W.solve(b), np.linalg.solve(reference, b)) <= bound
    sign, logdet = W.slogdet()
    ref_sign, ref_logdet = np.linalg.slogdet(reference)
    assert sign == ref_sign
    assert abs(logdet - ref_logdet) <= bound
    # The unshifted operator is another matrix: the shift is never applied by default.
    assert not np.allclose(ws.WoodburyMatrix(A, B).solve(b), W.solve(b))


def test_shift_zero_is_no_shift(rng):
    problem = CATALOGUE["spd_identity"]
    np.testing.assert_array_equal(
        ws.WoodburyMatrix(**problem.kwargs, shift=0.0).toarray(), problem.build().toarray()
    )


@pytest.mark.parametrize(
    ("shift", "error"),
    [
        (True, TypeError),
        ("1", TypeError),
        (None, TypeError),
        (1j, TypeError),
        (math.nan, ValueError),
        (np.inf, ValueError),
        (-np.inf, ValueError),
    ],
)
def test_shift_argument_errors(shift, error):
    with pytest.raises(error, match="`shift`"):
        ws.WoodburyMatrix(np.eye(3), np.eye(3), shift=shift)
