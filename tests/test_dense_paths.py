"""The dense fast paths: no copy of Θ for a dense update, one GEMM into a copy of ``A``,
the one-pass symmetry check, and the BLAS thread policy around them.

Each shortcut is checked against the plain NumPy formula on the same input (bit for bit
where the arithmetic is the same, to ``c·n·eps·κ`` where it is not) and for the
resources it promises not to use (no ``N×N`` copy, the user's thread settings left as
they were).
"""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest
import threadpoolctl
from scipy import linalg, sparse

import woodbury_sparse as ws
from conftest import rel_err, tol
from woodbury_sparse import _blas, ggm
from woodbury_sparse._blocks import dense_asymmetry
from woodbury_sparse._covariance import MAX_COVARIANCE_RANK
from woodbury_sparse._exceptions import AsymmetryWarning
from woodbury_sparse._factor import BACKEND
from woodbury_sparse._factor._sksparse import API_05
from woodbury_sparse._validation import as_block
from woodbury_sparse.testing import ar1_precision, grid_precision


def _factor_model(N: int, D: int, seed: int = 0):
    """The notebook's problem: ``Σ = F Fᵀ + diag(ψ)``, ``Θ = Σ⁻¹`` symmetrised, loadings."""
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((N, 3)) / np.sqrt(3)
    Sigma = F @ F.T + np.diag(rng.uniform(0.5, 1.5, N))
    Theta = np.linalg.inv(Sigma)
    return Sigma, 0.5 * (Theta + Theta.T), rng.standard_normal((N, D)) * 0.3


def _notebook(Theta, X):
    """The notebook's four-line function (benchmarks/case_scaling.py's ``hand_dense``)."""
    tx = Theta @ X
    c = linalg.cho_factor(np.eye(X.shape[1]) + X.T @ tx)
    return Theta - tx @ linalg.cho_solve(c, tx.T)


# -- the dense update ------------------------------------------------------------------------
@pytest.mark.parametrize(("N", "D"), [(1, 1), (7, 3), (130, 5), (300, 40)])
def test_dense_update_matches_direct_inverse(N, D):
    Sigma, Theta, X = _factor_model(N, D)
    reference = np.linalg.inv(Sigma + X @ X.T)
    got = ggm.updated_precision_dense(Theta, X)
    # c = 10: an inverse of Σ (κ), then a rank-D update of it (κ of Σ + X Xᵀ).
    assert rel_err(got, reference) <= tol(Sigma, 10.0, Sigma + X @ X.T)
    assert rel_err(got, _notebook(Theta, X)) <= tol(Sigma, 10.0, Sigma + X @ X.T)


def test_dense_update_reads_theta_in_place():
    """No N×N copy of Θ: the peak is the result and O(N·D) work arrays, not two N×N."""
    _, Theta, X = _factor_model(400, 5)
    before = Theta.copy()
    ggm.updated_precision_dense(Theta, X)  # warm: first-call imports and caches
    tracemalloc.start()
    try:
        out = ggm.updated_precision_dense(Theta, X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * out.nbytes
    np.testing.assert_array_equal(Theta, before)
    assert Theta.flags.writeable  # the read-only view did not touch the caller's flags
    out[0, 0] = 1.0  # the result is the caller's own, writeable array


def test_dense_update_checks_theta_without_a_copy():
    _, Theta, X = _factor_model(50, 2)
    bad = Theta.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="`theta` contains NaN or infinite values"):
        ggm.updated_precision_dense(bad, X)
    bad = Theta.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="`theta` contains NaN or infinite values"):
        ggm.updated_precision_dense(bad, X)
    diagonal = np.eye(5)
    diagonal[2, 2] = np.inf  # caught by the diagonal shortcut, which copies nothing either
    with pytest.raises(ValueError, match="`theta` contains NaN or infinite values"):
        ggm.updated_precision_dense(diagonal, X[:5])
    skew = Theta.copy()
    skew[0, 1] += 1.0
    with pytest.raises(ValueError, match="`theta` is not symmetric"):
        ggm.updated_precision_dense(skew, X)


def test_dense_update_symmetrises_round_off_once_with_one_warning():
    _, Theta, X = _factor_model(60, 2)
    rough = Theta.copy()
    rough[0, 1] += 1e-11 * np.linalg.norm(Theta)  # above 4·√n·eps, below √eps
    with pytest.warns(AsymmetryWarning, match="`theta` is symmetric only") as record:
        got = ggm.updated_precision_dense(rough, X)
    assert len(record) == 1  # not once more under the operator's name `A`
    sym = 0.5 * (rough + rough.T)
    np.testing.assert_allclose(got, _notebook(sym, X), rtol=0, atol=1e-12 * np.abs(sym).max())


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_dense_update_of_other_dtypes_and_orders(dtype):
    _, Theta, X = _factor_model(20, 2)
    t = np.round(Theta * 100).astype(dtype)
    t = t + t.T
    expected = ggm.updated_precision_dense(t.astype(np.float64), X)
    np.testing.assert_array_equal(ggm.updated_precision_dense(t, X), expected)
    fortran = np.asfortranarray(t.astype(np.float64))
    np.testing.assert_array_equal(ggm.updated_precision_dense(fortran, X), expected)


# -- W⁻¹ as an array: one GEMM into a copy of A ------------------------------------------------
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("p", [1, 5, 17])
def test_subtract_product_is_the_plain_formula_bit_for_bit(order, p):
    rng = np.random.default_rng(p)
    a = np.asarray(rng.standard_normal((70, 90)), order=order)
    left, right = rng.standard_normal((70, p)), rng.standard_normal((p, 90))
    out = a.copy(order=order)
    _blas.subtract_product(out, left, right)
    if p <= 5:  # one pass of OpenBLAS's kernel over k: the same sums, in the same order
        np.testing.assert_array_equal(out, a - left @ right)
    else:  # partial sums in another order: p·eps relative to |a| + |left| |right|
        bound = np.abs(a) + np.abs(left) @ np.abs(right)
        assert np.all(np.abs(out - (a - left @ right)) <= 2 * p * np.finfo(float).eps * bound)


def test_subtract_product_of_empty_operands():
    out = np.ones((3, 2))
    _blas.subtract_product(out, np.zeros((3, 0)), np.zeros((0, 2)))
    np.testing.assert_array_equal(out, np.ones((3, 2)))
    _blas.subtract_product(np.zeros((0, 2)), np.zeros((0, 1)), np.zeros((1, 2)))


@pytest.mark.parametrize("kind", ["dense", "sparse", "diagonal"])
def test_inverse_array_matches_the_formula(kind):
    rng = np.random.default_rng(3)
    n, p = 40, 4
    if kind == "dense":
        A = rng.standard_normal((n, n))
        A = A @ A.T + n * np.eye(n)
    elif kind == "sparse":
        A = sparse.diags_array([-1.0, 3.0, -1.0], offsets=[-1, 0, 1], shape=(n, n)).tocsc()
    else:
        A = sparse.diags_array(rng.uniform(1, 2, n)).tocsc()
    U, V = rng.standard_normal((n, p)), rng.standard_normal((p, n))
    W = ws.WoodburyMatrix(A, np.eye(p) * 2.0, U=U, V=V)
    Ad = A.toarray() if sparse.issparse(A) else A
    reference = np.linalg.inv(np.linalg.inv(Ad) + U @ V / 2.0)
    assert rel_err(W.inv().toarray(), reference) <= tol(reference, 10.0, Ad)


def test_inverse_array_still_refines_cancelled_columns():
    """A − L R cancelling in some columns: those are refined, the others taken as they are."""
    n = 30
    A = np.diag(np.linspace(1.0, 2.0, n))
    x = np.zeros((n, 1))
    x[:3] = 1e4  # W⁻¹ ≈ A − A x xᵀ A / (xᵀ A x): the first columns nearly cancel
    W = ws.SymmetricWoodburyMatrix(A, np.eye(1), X=x)
    reference = np.linalg.inv(np.linalg.inv(A) + x @ x.T)
    got = W.inv().toarray()
    assert rel_err(got, reference) <= tol(np.linalg.inv(A) + x @ x.T, 10.0)


# -- the one-pass symmetry check -------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 127, 128, 129, 300, 600])
def test_dense_asymmetry_matches_the_formula(n):
    rng = np.random.default_rng(n)
    m = rng.standard_normal((n, n))
    for matrix in (m, m + m.T + 1e-9 * m):
        expected = np.linalg.norm(matrix - matrix.T) / np.linalg.norm(matrix)
        # Sums of n² squares in two orders: c = 4 (two sums, each n²·eps/2 at worst).
        assert abs(dense_asymmetry(matrix) - expected) <= 4 * n * n * np.finfo(float).eps * max(
            expected, np.finfo(float).tiny
        )


@pytest.mark.parametrize("scale", [1e-200, 1e-150, 1e150, 1e200])
def test_dense_asymmetry_at_extreme_scales(scale):
    m = np.random.default_rng(1).standard_normal((40, 40))
    expected = np.linalg.norm(m - m.T) / np.linalg.norm(m)
    assert dense_asymmetry(m * scale) == pytest.approx(expected, rel=1e-12)
    assert dense_asymmetry(np.zeros((5, 5))) == 0.0
    assert np.isnan(dense_asymmetry(np.full((3, 3), np.nan)))


# -- the thread policy -----------------------------------------------------------------------
def _pool_sizes() -> list[int]:
    return [pool.get_num_threads() for pool in _blas._blas_pools()]


def test_one_thread_limits_and_restores_the_users_setting():
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = _pool_sizes()
        with _blas.one_thread():
            assert set(_pool_sizes()) <= {1}
            with _blas.one_thread():  # nested: still one, and restored only by the outer
                assert set(_pool_sizes()) <= {1}
            assert set(_pool_sizes()) <= {1}
        assert _pool_sizes() == before


def test_one_thread_restores_after_an_error():
    before = _pool_sizes()
    with pytest.raises(RuntimeError, match="inside"), _blas.one_thread():
        raise RuntimeError("inside")
    assert _pool_sizes() == before


def test_one_thread_leaves_other_threads_pools_alone():
    """Only the main thread limits: sizes set from workers do not reliably hold."""
    before = _pool_sizes()
    barrier = threading.Barrier(4)
    seen: list[list[int]] = []

    def work():
        barrier.wait()
        for _ in range(20):
            with _blas.one_thread():
                seen.append(_pool_sizes())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [before] * 80
    assert _pool_sizes() == before


def test_library_calls_leave_the_users_thread_settings_alone():
    _, Theta, X = _factor_model(300, 5)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = _pool_sizes()
        ggm.updated_precision_dense(Theta, X)
        W = ws.SymmetricWoodburyMatrix(Theta, np.eye(5), X=X)
        W.solve(np.ones(300))
        ws.dwnorm(np.ones((2, 300)), np.zeros(300), W)
        assert _pool_sizes() == before


def test_matmul_is_numpys_product_under_and_above_the_limits():
    rng = np.random.default_rng(5)
    for shape, columns in [((3, 4), 2), ((300, 300), 1), ((300, 300), 5), ((40, 300), 40)]:
        a = rng.standard_normal(shape)
        x = (
            rng.standard_normal(shape[1])
            if columns == 1
            else rng.standard_normal((shape[1], columns))
        )
        got = _blas.matmul(a, x)
        np.testing.assert_allclose(got, a @ x, rtol=0, atol=1e-13 * np.abs(a).sum(axis=1).max())
        assert got.flags.c_contiguous


# -- identity and diagonal blocks in DIA format ------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda n: sparse.eye_array(n),
        lambda n: sparse.eye_array(n, format="dia", dtype=np.int64),
        lambda n: sparse.diags_array(np.ones(n)),
    ],
    ids=["eye_array", "eye_int", "diags_ones"],
)
def test_dia_identity_is_the_identity_block(make):
    assert as_block(make(6), "B", square=True).kind == "identity"


def test_dia_diagonal_and_others():
    d = np.array([2.0, 0.0, -1.5, 4.0])
    blk = as_block(sparse.diags_array(d), "A", square=True)
    assert blk.kind == "diagonal"
    np.testing.assert_array_equal(blk.data, d)
    short = sparse.dia_array((np.array([[1.0, 2.0]]), [0]), shape=(3, 3))  # data shorter than n
    np.testing.assert_array_equal(as_block(short, "A").diagonal(), [1.0, 2.0, 0.0])
    banded = sparse.diags_array([np.ones(3), 2 * np.ones(4)], offsets=[1, 0])
    assert as_block(banded, "A").kind == "sparse"
    np.testing.assert_array_equal(as_block(banded, "A").toarray(), banded.toarray())
    off = sparse.diags_array([np.ones(3)], offsets=[1], shape=(4, 4))
    assert as_block(off, "A").kind == "sparse"
    with pytest.raises(ValueError, match="`A` contains NaN or infinite values"):
        as_block(sparse.diags_array(np.array([1.0, np.nan])), "A")


# -- O = B + A shares A's symbolic analysis ----------------------------------------------------
@pytest.mark.parametrize("which", ["ar1", "grid"])
def test_capacitance_reuses_the_analysis_of_a(which):
    Q = ar1_precision(400, 0.8) if which == "ar1" else grid_precision(20, 0.5, 20)
    n = Q.shape[0]
    x = np.linspace(-1.0, 1.0, n)
    W = ws.WoodburyMatrix(Q, sparse.eye_array(n) * 2.0)
    got = ws.dwnorm(x, covariance=W, log=True)
    Wd = np.linalg.inv(Q.toarray()) + np.eye(n) / 2.0
    expected = -0.5 * (
        n * np.log(2 * np.pi) + np.linalg.slogdet(Wd)[1] + x @ np.linalg.solve(Wd, x)
    )
    # c = 10: log det and a solve of W (κ(W)), each n·eps·κ.
    assert abs(got - expected) <= tol(Wd, 10.0) * abs(expected)
    if BACKEND == "cholmod":
        assert W._O.factor.analysis_reused
    # A solve alone does not factorise A for it.
    W2 = ws.WoodburyMatrix(Q, sparse.eye_array(n) * 2.0)
    W2.solve(x)
    assert "factor" not in W2._parts.A.__dict__


# -- as_covariance refuses a cubic set-up --------------------------------------------------------
def test_as_covariance_refuses_a_cubic_setup_and_names_the_alternative():
    n = MAX_COVARIANCE_RANK + 1
    W = ws.WoodburyMatrix(ar1_precision(n, 0.5), sparse.eye_array(n))  # X = I: k = n
    with pytest.raises(ValueError, match=r"k = min\(n, p\) = 1025 > 1024.*WoodburyNormal"):
        W.as_covariance()
    # The same W still has a log density, through WoodburyNormal.
    assert np.isfinite(ws.WoodburyNormal(np.zeros(n), W).logpdf(np.zeros(n)))
    # Tall X with few columns: k = p, built as before.
    X = np.ones((n, 2))
    assert ws.SymmetricWoodburyMatrix(sparse.eye_array(n), np.eye(2), X=X).as_covariance()


# -- a first draw uses CHOLMOD's L and D as they are (scikit-sparse 0.4) -------------------------
@pytest.mark.skipif(BACKEND != "cholmod", reason="CHOLMOD backend only")
def test_draw_from_a_simplicial_factor_without_a_copy():
    n = 500
    Q = ar1_precision(n, 0.9)
    W = ws.WoodburyMatrix(Q, sparse.eye_array(n))
    draws = ws.rwnorm(3, None, W, random_state=np.random.default_rng(0))
    assert draws.shape == (3, n)
    factor = W._parts.A.factor
    handle = factor.handle
    assert handle.simplicial  # a band: natural order, simplicial
    z = np.random.default_rng(1).standard_normal((n, 2))
    got = factor.solve_sqrt_t(z)
    if not API_05:
        assert "_llt_copy" not in handle.__dict__  # no copy of the factor was made
        expected = handle._llt_copy.apply_Pt(
            handle._llt_copy.solve_Lt(z, use_LDLt_decomposition=False)
        )
        # The same R = Pᵀ L D^½, by another order of operations: c = 10 (n·eps·κ(L)).
        assert rel_err(got, expected) <= tol(Q, 10.0)
    # R⁻ᵀ followed by Rᵀ gives z back; R⁻ᵀ R⁻¹ = Q⁻¹ checked through the covariance.
    assert rel_err(factor.sqrt_t_matmul(got), z) <= tol(Q, 10.0)
    cov = factor.solve_sqrt_t(np.eye(n))
    assert rel_err(cov @ cov.T, np.linalg.inv(Q.toarray())) <= tol(Q, 10.0)


def test_large_products_with_a_small_result_run_on_one_thread(monkeypatch):
    """``Xᵀ (A X)`` with a long inner dimension: one thread whatever its size (the
    result is split among threads, each streaming the shared operand); a large product
    with a large result keeps the user's pools."""
    entered = []

    class Spy:
        def __enter__(self):
            entered.append(True)

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(_blas, "one_thread", lambda: Spy())
    rng = np.random.default_rng(6)
    n, p = (_blas.LARGE_PRODUCT // 400) + 1, 20  # p·p·n ≥ LARGE_PRODUCT
    x = rng.standard_normal((n, p))
    got = _blas.matmul(x.T, x)
    np.testing.assert_allclose(got, x.T @ x, rtol=0, atol=1e-12 * n)
    assert entered == [True]
    entered.clear()
    wide = rng.standard_normal((200, 2000))  # 200·2000·200 ≥ LARGE_PRODUCT, result 200²
    assert wide.shape[0] * wide.shape[1] * 200 >= _blas.LARGE_PRODUCT
    np.testing.assert_allclose(
        _blas.matmul(wide, wide.T[:, :200].copy()), wide @ wide.T[:, :200], rtol=1e-12, atol=1e-10
    )
    assert entered == []
