"""The selected inverse (Takahashi recursions) against dense ``numpy.linalg.inv``.

Tolerance: the recursion is a backward-stable use of the factor, so each computed entry
has an error of a few ``n·eps·κ(Q)`` relative to ``max|Q⁻¹|`` (as a triangular solve with
the factor would); the dense reference makes errors of the same size. ``tol(Q)`` of
conftest is ``c·n·eps·κ`` with ``c = C_DEFAULT = 10``, which covers both.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from conftest import dense, tol
from woodbury_sparse import _factor, testing
from woodbury_sparse._factor import _selinv, _sksparse
from woodbury_sparse._factor._sparse import CholmodFactor, SuperLUFactor

CHOLMOD = _factor.BACKEND == "cholmod"
needs_cholmod = pytest.mark.skipif(not CHOLMOD, reason="CHOLMOD backend not in use")


def _catalogue() -> dict[str, object]:
    rng = np.random.default_rng(7)
    dense_spd = testing.random_spd(9, rng, density=0.6, dense=True)
    return {
        "ar1": testing.ar1_precision(60, 0.9),
        "ar1-strong": testing.ar1_precision(40, 0.999),
        "grid": testing.grid_precision(9, kappa=0.5, k=7),
        "grid-intrinsic-ish": testing.grid_precision(8, kappa=0.05),
        "random-spd": testing.random_spd(70, rng, density=0.08),
        "random-spd-denser": testing.random_spd(40, rng, density=0.3),
        "dense-small": dense_spd,
        "dense-small-as-sparse": sparse.csc_array(dense_spd),
        "diagonal": sparse.diags_array(rng.uniform(0.5, 3.0, 25), format="csr"),
        "diagonal-dense": np.diag(rng.uniform(0.5, 3.0, 6)),
        "identity": sparse.eye_array(5, format="csc"),
        "one-by-one": np.array([[4.0]]),
        "block-diagonal": sparse.block_diag(
            [testing.ar1_precision(10, 0.5), testing.grid_precision(3)], format="coo"
        ),
    }


CATALOGUE = _catalogue()


def _check_against_dense(S, Q, c: float = 10.0) -> None:
    """Every stored entry of ``S`` equals ``inv(Q)`` within ``c·n·eps·κ·max|Q⁻¹|``."""
    reference = np.linalg.inv(dense(Q))
    coo = sparse.coo_array(S)
    err = np.abs(coo.data - reference[coo.row, coo.col])
    scale = np.abs(reference).max()
    assert err.max(initial=0.0) <= tol(Q, c) * scale, (err.max(), tol(Q, c) * scale)


def _pattern(m) -> set[tuple[int, int]]:
    coo = sparse.coo_array(m)
    return set(zip(coo.row.tolist(), coo.col.tolist(), strict=True))


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_entries_match_dense_inverse(name):
    Q = CATALOGUE[name]
    S = ws.selected_inverse(Q)
    assert isinstance(S, sparse.csc_array)
    assert S.shape == Q.shape
    _check_against_dense(S, Q)


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_pattern_holds_diagonal_and_q(name):
    Q = CATALOGUE[name]
    S = ws.selected_inverse(Q)
    pattern = _pattern(S)
    n = Q.shape[0]
    assert {(i, i) for i in range(n)} <= pattern
    q_pattern = {(i, j) for i, j in _pattern(sparse.csc_array(Q)) if dense(Q)[i, j] != 0}
    assert q_pattern <= pattern
    assert pattern == {(j, i) for i, j in pattern}  # symmetric pattern
    values = dense(S)
    np.testing.assert_array_equal(values, values.T)  # symmetric values, exactly


@pytest.mark.parametrize("name", ["ar1", "grid", "random-spd", "block-diagonal"])
def test_indices_sorted_and_canonical(name):
    S = ws.selected_inverse(CATALOGUE[name])
    again = sparse.csc_array(S, copy=True)
    again.has_sorted_indices = False
    again.sort_indices()
    np.testing.assert_array_equal(S.indices, again.indices)
    np.testing.assert_array_equal(S.data, again.data)
    assert S.indptr[-1] == S.nnz


@pytest.mark.parametrize("name", ["ar1", "grid", "random-spd", "dense-small-as-sparse"])
def test_pattern_is_factor_pattern(name):
    """``nnz = 2·nnz(L) − n``: exactly ``Pᵀ (L + Lᵀ) P``, nothing more."""
    Q = sparse.csc_array(CATALOGUE[name])
    factor = _factor.factorize(Q, "sparse", Q.shape[0], True, "Q")
    lower, _, _ = factor.ldl_parts()
    S = _factor.factor_selected_inverse(factor, "Q")
    assert S.nnz == 2 * lower.nnz - Q.shape[0]


def test_ar1_closed_form():
    """Stationary AR(1): ``Cov(Y_t, Y_{t+h}) = ρ^h / (1 − ρ²)``; the pattern holds lag 1."""
    rho = 0.8
    S = ws.selected_inverse(testing.ar1_precision(500, rho))
    variance = 1 / (1 - rho**2)
    c = 10.0  # tol constant, as above; κ(Q) ≤ ((1 + ρ)/(1 − ρ))² for this precision
    bound = c * 500 * _factor.EPS * ((1 + rho) / (1 - rho)) ** 2 * variance
    np.testing.assert_allclose(S.diagonal(), variance, rtol=0, atol=bound)
    np.testing.assert_allclose(S.diagonal(1), rho * variance, rtol=0, atol=bound)
    assert S.nnz == 3 * 500 - 2


@pytest.mark.parametrize("name", ["ar1", "grid", "random-spd", "random-spd-denser"])
def test_numpy_kernel_matches_c_kernel(name):
    """The fallback used without a C compiler gives the same numbers."""
    Q = sparse.csc_array(CATALOGUE[name])
    factor = _factor.factorize(Q, "sparse", Q.shape[0], True, "Q")
    lower, d, _ = factor.ldl_parts()
    _, _, z_numpy = _selinv.takahashi(lower, d, kernel="numpy")
    if _selinv.KERNEL == "c":
        _, _, z_c = _selinv.takahashi(lower, d, kernel="c")
        scale = np.abs(z_c).max()
        np.testing.assert_allclose(z_numpy, z_c, rtol=0, atol=tol(Q) * scale)
    S = _selinv._symmetric_csc(*_selinv.takahashi(lower, d, kernel="numpy"), None)
    assert S.nnz == 2 * lower.nnz - Q.shape[0]


def test_c_kernel_is_installed():
    """The installation builds the extension (README commands); the fallback is a fallback."""
    assert _selinv.KERNEL == "c"


def test_superlu_factor():
    """The SciPy backend's factor: SuperLU with symmetric pivoting, ``U = D Lᵀ``."""
    for name in ("ar1", "grid", "random-spd"):
        Q = sparse.csc_array(CATALOGUE[name])
        factor = SuperLUFactor.attempt(Q, symmetric=True)
        assert factor is not None and factor.positive_definite
        S = _factor.factor_selected_inverse(factor, "Q")
        _check_against_dense(S, Q)
        assert {(i, i) for i in range(Q.shape[0])} <= _pattern(S)


@needs_cholmod
@pytest.mark.parametrize("ldl", [False, True])
@pytest.mark.parametrize("simplicial", [False, True])
def test_cholmod_modes(ldl, simplicial):
    """Simplicial and supernodal, ``LLᵀ`` and ``LDLᵀ`` CHOLMOD factors (0.4 and 0.5)."""
    Q = testing.grid_precision(40, kappa=0.3)  # n = 1600: CHOLMOD goes supernodal on auto
    handle = _sksparse.CholmodHandle.factorize(Q, ldl=ldl, simplicial=simplicial)
    factor = CholmodFactor(handle, Q.shape[0])
    assert factor.positive_definite
    S = _factor.factor_selected_inverse(factor, "Q")
    _check_against_dense(S, Q)
    q_pattern = _pattern(Q)
    assert q_pattern <= _pattern(S)


@needs_cholmod
def test_cholmod_factor_left_unchanged():
    """Reading ``L`` (which converts a 0.4 factor in place) leaves the cached factor as it was."""
    Q = testing.grid_precision(40, kappa=0.3)
    factor = _factor.factorize(Q, "sparse", Q.shape[0], True, "Q")
    raw = factor.handle._factor
    flag = getattr(raw, "is_super", None)  # 0.5 only; 0.4 does not expose it
    b = np.linspace(-1, 1, Q.shape[0])
    before = factor.solve(b)
    _factor.factor_selected_inverse(factor, "Q")
    assert getattr(raw, "is_super", None) == flag
    np.testing.assert_array_equal(factor.solve(b), before)


@needs_cholmod
def test_updated_factor():
    """A CHOLMOD rank update (an ``LDLᵀ`` factor) gives the inverse of the updated matrix."""
    Q = sparse.csc_array(testing.grid_precision(6))
    c = sparse.csc_array(np.eye(Q.shape[0])[:, [2, 7]])
    factor = _factor.factorize(Q, "sparse", Q.shape[0], True, "Q").updown(c)
    assert factor is not None
    _check_against_dense(_factor.factor_selected_inverse(factor, "Q"), Q + c @ c.T)


def test_input_not_modified():
    Q = sparse.csc_array(testing.grid_precision(6))
    copy = Q.copy()
    ws.selected_inverse(Q)
    np.testing.assert_array_equal(Q.data, copy.data)
    np.testing.assert_array_equal(Q.indices, copy.indices)
    dense_q = np.array(CATALOGUE["dense-small"])
    ws.selected_inverse(dense_q)
    np.testing.assert_array_equal(dense_q, CATALOGUE["dense-small"])


# -- errors ---------------------------------------------------------------------------------


def test_error_not_square():
    with pytest.raises(ValueError, match=r"`Q` must be square, got shape \(3, 4\)"):
        ws.selected_inverse(sparse.csc_array(np.ones((3, 4))))


def test_error_not_symmetric():
    Q = testing.grid_precision(4).tolil()
    Q[0, 1] = 5.0
    with pytest.raises(ValueError, match=r"`Q` is not symmetric .* needs a symmetric `Q`"):
        ws.selected_inverse(Q)


@pytest.mark.parametrize(
    "Q",
    [
        testing.random_symmetric_indefinite(20, np.random.default_rng(3)),
        np.array([[1.0, 2.0], [2.0, 1.0]]),
        sparse.diags_array([1.0, -2.0, 3.0]),
    ],
    ids=["sparse", "dense", "diagonal"],
)
def test_error_indefinite(Q):
    with pytest.raises(ws.NotPositiveDefiniteError, match=r"`Q` is not positive definite"):
        ws.selected_inverse(Q)


def test_error_singular():
    Q = testing.grid_precision(4, kappa=0.0)  # an intrinsic GMRF: the Laplacian
    with pytest.raises(ws.SingularMatrixError, match=r"`Q` is singular"):
        ws.selected_inverse(Q)


def test_error_complex():
    with pytest.raises(TypeError, match=r"`Q` is complex"):
        ws.selected_inverse(sparse.eye_array(3, dtype=complex) * 2)


def test_error_not_finite():
    Q = testing.ar1_precision(5, 0.5).tolil()
    Q[2, 2] = np.nan
    with pytest.raises(ValueError, match=r"`Q` contains NaN"):
        ws.selected_inverse(Q)


@pytest.mark.parametrize("kernel", ["c", "numpy"])
def test_kernel_rejects_pattern_not_closed(kernel):
    if kernel == "c" and _selinv.KERNEL != "c":
        pytest.skip("C kernel not installed")
    # Column 0 has rows 1 and 2, but column 1 lacks row 2: not a Cholesky pattern.
    lower = sparse.csc_array(np.array([[1.0, 0, 0], [0.5, 1, 0], [0.5, 0, 1]]))
    with pytest.raises(ValueError, match="not closed"):
        _selinv.takahashi(lower, np.ones(3), kernel=kernel)


def test_kernel_rejects_missing_diagonal():
    lower = sparse.csc_array(np.array([[1.0, 0], [0.5, 0]]))
    with pytest.raises(ValueError, match="every diagonal entry stored"):
        _selinv.takahashi(lower, np.ones(2))
