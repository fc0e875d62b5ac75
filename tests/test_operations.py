"""Every operation on every catalogue problem against a dense NumPy reference.

A port of R's ``compare_to_direct`` (instantiate, determinant with sign, ``solve(W)``,
``W %*% rhs`` and ``solve(W, rhs)`` for a vector, a dense two-column and a sparse
right-hand side, ``instantiate(t(W))``, the class) plus the Python-side extras: the
LinearOperator hooks, caching, shared factorisations and dtypes.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from conftest import CATALOGUE, NAMES, case, dense, rel_err


def right_hand_sides(n: int, rng: np.random.Generator) -> dict:
    """R's three right-hand sides, and the sparse shapes Python adds."""
    two = rng.standard_normal((n, 2))
    sp2 = sparse.random_array((n, 2), density=0.4, rng=rng, format="csr")
    sp2 = sparse.csr_array(sp2 + sparse.csr_array(([1.0], ([0], [1])), shape=(n, 2)))
    return {
        "vector": rng.standard_normal(n),
        "dense-2col": two,
        "sparse-csr-array-2col": sp2,
        "sparse-csc-matrix-column": sparse.csc_matrix(two[:, :1]),
        "sparse-coo-array-1d": sparse.coo_array(two[:, 0]),
    }


def expected_shape(rhs) -> tuple:
    return rhs.shape


def as_dense_rhs(rhs) -> np.ndarray:
    return rhs.toarray() if sparse.issparse(rhs) else np.asarray(rhs, dtype=np.float64)


GENERAL = [name for name in NAMES if not CATALOGUE[name].symmetric]

RHS_KINDS = [
    "vector",
    "dense-2col",
    "sparse-csr-array-2col",
    "sparse-csc-matrix-column",
    "sparse-coo-array-1d",
]


# -- R's compare_to_direct -----------------------------------------------------------------
def test_class(problem_case):
    W = problem_case.build()
    expected = ws.SymmetricWoodburyMatrix if problem_case.problem.symmetric else ws.WoodburyMatrix
    assert type(W) is expected
    assert isinstance(W, ws.WoodburyMatrix)
    assert W.shape == (problem_case.n, problem_case.n)
    assert W.dtype == np.float64


def test_instantiate(problem_case):
    W = problem_case.build()
    full = W.toarray()
    assert isinstance(full, np.ndarray)
    assert full.dtype == np.float64
    assert full.shape == problem_case.W_dense.shape
    assert rel_err(full, problem_case.W_dense) <= problem_case.tol()


def test_slogdet(problem_case):
    W = problem_case.build()
    sign, logabsdet = W.slogdet()
    ref_sign, ref_log = np.linalg.slogdet(problem_case.W_dense)
    assert isinstance(sign, float)
    assert isinstance(logabsdet, float)
    assert sign == ref_sign
    # d log|det W| = tr(W⁻¹ dW): an absolute error of n·eps·κ.
    assert abs(logabsdet - ref_log) <= problem_case.tol()
    if ref_sign > 0:
        assert abs(W.logdet() - ref_log) <= problem_case.tol()
    else:
        with pytest.raises(np.linalg.LinAlgError, match="det W is negative"):
            W.logdet()


def test_inverse(problem_case):
    W = problem_case.build()
    inv = W.inv()
    assert inv.shape == W.shape
    assert inv.dtype == np.float64
    ref = np.linalg.inv(problem_case.W_dense)
    assert rel_err(inv.toarray(), ref) <= problem_case.tol()
    # the lazy operator's products are solves, and it knows what it inverts
    x = np.linspace(-1, 1, problem_case.n)
    assert rel_err(inv @ x, ref @ x) <= problem_case.tol()
    assert rel_err(inv.T @ x, ref.T @ x) <= problem_case.tol()
    assert inv.inv() is W
    sign, logabsdet = inv.slogdet()
    ref_sign, ref_log = np.linalg.slogdet(ref)
    assert sign == ref_sign
    assert abs(logabsdet - ref_log) <= problem_case.tol()


@pytest.mark.parametrize("kind", RHS_KINDS)
def test_matmul(problem_case, kind, rng):
    W = problem_case.build()
    rhs = right_hand_sides(problem_case.n, rng)[kind]
    out = W @ rhs
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float64
    assert out.shape == expected_shape(rhs)
    ref = problem_case.W_dense @ as_dense_rhs(rhs)
    assert rel_err(out, ref) <= problem_case.tol()
    # dot and matmul agree exactly
    np.testing.assert_array_equal(W.dot(rhs), out)


@pytest.mark.parametrize("kind", RHS_KINDS)
def test_solve(problem_case, kind, rng):
    W = problem_case.build()
    rhs = right_hand_sides(problem_case.n, rng)[kind]
    out = W.solve(rhs)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float64
    assert out.shape == expected_shape(rhs)
    ref = np.linalg.solve(problem_case.W_dense, as_dense_rhs(rhs))
    assert rel_err(out, ref) <= problem_case.tol()


def test_transpose(problem_case):
    W = problem_case.build()
    assert W.T.shape == W.shape
    assert rel_err(W.T.toarray(), problem_case.W_dense.T) <= problem_case.tol()
    assert rel_err(W.H.toarray(), problem_case.W_dense.T) <= problem_case.tol()
    assert W.T.T is W
    # the transpose is a Woodbury matrix in its own right: solve and slogdet
    x = np.linspace(1, 2, problem_case.n)
    ref = np.linalg.solve(problem_case.W_dense.T, x)
    assert rel_err(W.T.solve(x), ref) <= problem_case.tol()
    assert W.T.slogdet()[0] == W.slogdet()[0]
    assert abs(W.T.slogdet()[1] - W.slogdet()[1]) <= problem_case.tol()


def test_linear_operator_hooks(problem_case, rng):
    W = problem_case.build()
    D = problem_case.W_dense
    n = problem_case.n
    x = rng.standard_normal(n)
    X = rng.standard_normal((n, 3))
    t = problem_case.tol()
    assert W.matvec(x).shape == (n,)
    assert rel_err(W.matvec(x), D @ x) <= t
    assert rel_err(W.matmat(x[:, None]), (D @ x)[:, None]) <= t
    assert W.matmat(x[:, None]).shape == (n, 1)
    # Column vectors stay welcome in matvec/rmatvec, silently, on every SciPy (SciPy 1.18
    # deprecates them for LinearOperator in general; the operators implement both themselves).
    column = W.matvec(x[:, None])
    assert column.shape == (n, 1)
    assert rel_err(column, (D @ x)[:, None]) <= t
    column = W.rmatvec(x[:, None])
    assert column.shape == (n, 1)
    assert rel_err(column, (D.T @ x)[:, None]) <= t
    assert rel_err(W.matmat(X), D @ X) <= t
    assert rel_err(W.rmatvec(x), D.T @ x) <= t
    assert rel_err(W.rmatmat(X), D.T @ X) <= t
    assert rel_err(W.H @ x, D.T @ x) <= t
    assert rel_err(W.adjoint().matvec(x), D.T @ x) <= t


def test_symmetric_is_own_transpose(problem_case):
    W = problem_case.build()
    if problem_case.problem.symmetric:
        assert W.T is W
        assert W.H is W
    else:
        assert type(W.T) is ws.WoodburyMatrix
        assert W.T is not W


def test_repeated_calls_are_cached(problem_case):
    W = problem_case.build()
    x = np.arange(problem_case.n, dtype=float)
    first = (W @ x, W.solve(x), W.slogdet(), W.toarray(), W.inv().toarray())
    factors = (W._parts.A.factor, W._parts.B.factor, W._O)
    second = (W @ x, W.solve(x), W.slogdet(), W.toarray(), W.inv().toarray())
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (W._parts.A.factor, W._parts.B.factor, W._O) == factors
    assert W.inv() is W.inv()
    assert W.T is W.T


# -- structure of the computation ----------------------------------------------------------
def test_solve_never_factorises_A(problem_case):
    W = problem_case.build()
    W.solve(np.ones(problem_case.n))
    W.solve(np.ones((problem_case.n, 2)))
    W.inv().toarray()
    assert "factor" not in W._parts.A.__dict__


@pytest.mark.parametrize("name", GENERAL)
def test_general_transpose_shares_factorisations(name):
    problem_case = case(name)
    W = problem_case.build()
    W.slogdet()
    WT = W.T
    a_factor = W._parts.A.factor
    b_factor = W._parts.B.factor
    assert WT._parts.A.factor.T is a_factor or WT._parts.A.factor is a_factor
    assert WT._parts.B.factor.T is b_factor or WT._parts.B.factor is b_factor
    # the capacitance of Wᵀ is Oᵀ, its factorisation the transpose of O's
    o_factor = W._O.factor
    assert WT._O.factor.T is o_factor or WT._O.factor is o_factor
    # and the transposed factors give the right answers
    assert abs(WT.slogdet()[1] - W.slogdet()[1]) <= problem_case.tol()


def test_rank_zero():
    case_w = ws.WoodburyMatrix(np.diag([1.0, 2.0, 4.0]), np.zeros((0, 0)), X=np.zeros((3, 0)))
    assert case_w.p == 0
    np.testing.assert_allclose(case_w.toarray(), np.diag([1.0, 0.5, 0.25]))
    np.testing.assert_allclose(case_w.solve(np.ones(3)), [1.0, 2.0, 4.0])
    assert case_w.slogdet() == (1.0, pytest.approx(-np.log(8.0)))
    general = ws.WoodburyMatrix(
        np.diag([1.0, 2.0, 4.0]), np.zeros((0, 0)), U=np.zeros((3, 0)), V=np.zeros((0, 3))
    )
    assert type(general) is ws.WoodburyMatrix
    np.testing.assert_allclose(general.T.toarray(), np.diag([1.0, 0.5, 0.25]))


def test_p_greater_than_n(rng):
    n, p = 4, 9
    A = np.diag(rng.uniform(1, 2, n))
    B = np.diag(rng.uniform(1, 2, p))
    X = rng.standard_normal((n, p))
    W = ws.WoodburyMatrix(A, B, X=X)
    assert W.p == p > W.n
    ref = np.linalg.inv(A) + X @ np.linalg.solve(B, X.T)
    assert rel_err(W.toarray(), ref) <= 10 * n * np.finfo(float).eps * np.linalg.cond(ref)
    assert rel_err(W.solve(np.ones(n)), np.linalg.solve(ref, np.ones(n))) <= 1e3 * (
        n * np.finfo(float).eps * np.linalg.cond(ref)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32, np.uint8, np.bool_])
def test_low_precision_and_integer_input_computed_in_float64(dtype):
    n = 6
    A = (3 * np.eye(n) + np.eye(n, k=1) + np.eye(n, k=-1)).astype(dtype)
    if dtype is np.bool_:
        A = np.eye(n, dtype=bool)
    X = (np.arange(n * 2).reshape(n, 2) % 3).astype(dtype)
    B = np.array([[2, 1], [1, 2]]).astype(dtype) if dtype is not np.bool_ else np.eye(2, dtype=bool)
    W = ws.WoodburyMatrix(A, B, X=X)
    W64 = ws.WoodburyMatrix(dense(A), dense(B), X=dense(X))
    assert W.dtype == np.float64
    x_int = np.arange(n)
    for out, ref in [
        (W.toarray(), W64.toarray()),
        (W @ x_int, W64 @ x_int.astype(float)),
        (W.solve(x_int), W64.solve(x_int.astype(float))),
        (W.solve(x_int.astype(np.float32)), W64.solve(x_int.astype(float))),
        (W.inv().toarray(), W64.inv().toarray()),
    ]:
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, ref)
    assert W.slogdet() == W64.slogdet()
    sparse_W = ws.WoodburyMatrix(sparse.csr_array(A), B, X=sparse.coo_matrix(X))
    assert sparse_W.dtype == np.float64
    assert rel_err(sparse_W.toarray(), W64.toarray()) <= 10 * n * np.finfo(float).eps * 10


def test_float32_catalogue_problem_is_float64():
    W = case("float32").build()
    assert W.dtype == np.float64
    assert W.A.dtype == np.float64
    assert W.X.dtype == np.float64
    assert (W @ np.ones(W.n, dtype=np.float32)).dtype == np.float64
