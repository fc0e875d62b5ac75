"""The LinearOperator protocol: validated entry points, ``args``, and immutability.

SciPy's ``LinearOperator`` wrappers check shapes with a bare "dimension mismatch" and let
NumPy's own errors through; every entry point of the operators here checks its operand
itself and names it. Nothing an operator hands out (its blocks, its inverse) can be used to
change it.
"""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.linalg import LinearOperator, aslinearoperator

import woodbury_sparse as ws
from conftest import dense, rel_err, tol

N, P = 5, 2


def tridiagonal(n: int, diag: float = 4.0) -> np.ndarray:
    return diag * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)


def general() -> ws.WoodburyMatrix:
    rng = np.random.default_rng(3)
    return ws.WoodburyMatrix(
        tridiagonal(N),
        tridiagonal(P, 3.0),
        U=rng.standard_normal((N, P)),
        V=rng.standard_normal((P, N)),
    )


def symmetric() -> ws.SymmetricWoodburyMatrix:
    rng = np.random.default_rng(4)
    return ws.WoodburyMatrix(
        sparse.csc_array(tridiagonal(N)), tridiagonal(P, 3.0), X=rng.standard_normal((N, P))
    )


@pytest.fixture(params=["general", "symmetric"])
def W(request):
    return general() if request.param == "general" else symmetric()


#: Entry points taking a vector (or an n×k block for those that take both), all validated
#: with the argument named `x`.
VECTOR_CALLS = {
    "W @ x": lambda W, x: W @ x,
    "W.dot(x)": lambda W, x: W.dot(x),
    "W(x)": lambda W, x: W(x),
    "W.matvec": lambda W, x: W.matvec(x),
    "W.rmatvec": lambda W, x: W.rmatvec(x),
    "W.T @ x": lambda W, x: W.T @ x,
    "W.H @ x": lambda W, x: W.H @ x,
    "W.inv() @ x": lambda W, x: W.inv() @ x,
    "W.inv().matvec": lambda W, x: W.inv().matvec(x),
    "W.inv().rmatvec": lambda W, x: W.inv().rmatvec(x),
    "W.inv().T @ x": lambda W, x: W.inv().T @ x,
}
#: Entry points taking an n×k block, validated with the argument named `X`.
MATRIX_CALLS = {
    "W.matmat": lambda W, X: W.matmat(X),
    "W.rmatmat": lambda W, X: W.rmatmat(X),
    "W.inv().matmat": lambda W, X: W.inv().matmat(X),
    "W.inv().rmatmat": lambda W, X: W.inv().rmatmat(X),
}


# -- values ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("call", sorted(VECTOR_CALLS))
def test_nan_in_x_is_blamed_on_x(W, call, bad):
    # It used to be reported as an overflow inside the product.
    x = np.ones(N)
    x[2] = bad
    with pytest.raises(ValueError, match=r"^`x` contains NaN or infinite values$"):
        VECTOR_CALLS[call](W, x)
    with pytest.raises(ValueError, match=r"^`x` contains NaN or infinite values$"):
        x @ W


@pytest.mark.parametrize("call", sorted(MATRIX_CALLS))
def test_nan_in_a_block_of_vectors_is_blamed_on_it(W, call):
    X = np.ones((N, 3))
    X[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"^`X` contains NaN or infinite values$"):
        MATRIX_CALLS[call](W, X)
    with pytest.raises(ValueError, match=r"^`x` contains NaN or infinite values$"):
        W @ X


# -- shapes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("call", sorted(VECTOR_CALLS))
def test_wrong_length_names_x_and_the_expected_length(W, call):
    # SciPy's own wrappers say only "dimension mismatch".
    msg = rf"^`x` has length {N + 1} but the matrix is {N}×{N}; expected length {N}$"
    with pytest.raises(ValueError, match=msg):
        VECTOR_CALLS[call](W, np.ones(N + 1))
    with pytest.raises(ValueError, match=msg):
        VECTOR_CALLS[call](W, [1.0] * (N + 1))
    msg = rf"^`x` has {N + 1} rows but the matrix is {N}×{N}; expected {N} rows$"
    with pytest.raises(ValueError, match=msg):
        VECTOR_CALLS[call](W, np.ones((N + 1, 1)))


@pytest.mark.parametrize("call", sorted(MATRIX_CALLS))
def test_wrong_number_of_rows_names_the_block(W, call):
    msg = rf"^`X` has {N - 1} rows but the matrix is {N}×{N}; expected {N} rows$"
    with pytest.raises(ValueError, match=msg):
        MATRIX_CALLS[call](W, np.ones((N - 1, 3)))
    with pytest.raises(ValueError, match=msg):
        MATRIX_CALLS[call](W, sparse.csr_array(np.ones((N - 1, 3))))


#: SciPy 1.18 renamed the hook of products from the left: ``__rmatmul__``/``__rmul__`` call a
#: public ``rdot`` that checks shapes itself instead of ``_rdot``; the operators override both.
def test_products_from_the_left_check_columns(W):
    msg = rf"^`x` has {N + 2} columns but the matrix is {N}×{N}; expected {N} columns$"
    with pytest.raises(ValueError, match=msg):
        np.ones((3, N + 2)) @ W
    msg = rf"^`x` has length {N + 2} but the matrix is {N}×{N}; expected length {N}$"
    with pytest.raises(ValueError, match=msg):
        np.ones(N + 2) @ W
    # and the right shapes give Wᵀ's products, transposed
    Y = np.arange(3.0 * N).reshape(3, N)
    np.testing.assert_array_equal(Y @ W, (W.T @ Y.T).T)
    np.testing.assert_array_equal(Y[0] @ W, W.T @ Y[0])


def test_vector_and_block_entry_points_say_which_they_need(W):
    for call in (W.matvec, W.rmatvec, W.inv().matvec, W.inv().rmatvec):
        with pytest.raises(
            ValueError,
            match=rf"^`x` must have shape \({N},\) or \({N}, 1\), got \({N}, 3\); use matmat",
        ):
            call(np.ones((N, 3)))
    for call in (W.matmat, W.rmatmat, W.inv().matmat, W.inv().rmatmat):
        with pytest.raises(ValueError, match=rf"^`X` must be 2-D, got shape \({N},\); use matvec"):
            call(np.ones(N))
    with pytest.raises(
        ValueError, match=rf"^`x` must be 1-D or 2-D, got an array of shape \({N}, 1, 1\)$"
    ):
        W @ np.ones((N, 1, 1))
    with pytest.raises(ValueError, match=r"^`x` must be 1-D or 2-D, got an array of shape \(\)$"):
        W.dot(np.array(2.0))


def test_ragged_input_gets_the_librarys_error(W):
    # NumPy's own message ("inhomogeneous shape after 1 dimensions") leaked before.
    ragged = [[1.0], [2.0, 3.0], [4.0], [5.0], [6.0]]
    msg = r"^`{}` is a ragged nested sequence \(rows of different lengths\); expected an array"
    with pytest.raises(ValueError, match=msg.format("b")):
        W.solve(ragged)
    for call in (W.__matmul__, W.matvec, W.dot, W.inv().__matmul__):
        with pytest.raises(ValueError, match=msg.format("x")):
            call(ragged)
    with pytest.raises(ValueError, match=msg.format("X")):
        W.matmat(ragged)


def test_non_numeric_input_is_refused(W):
    for value in (np.array(["a"] * N), [None] * N, np.ones(N, dtype="datetime64[s]")):
        with pytest.raises(TypeError, match=r"^`x` must hold real or complex numbers, got dtype"):
            W @ value
        with pytest.raises(TypeError, match=r"^`b` must hold real or complex numbers, got dtype"):
            W.solve(value)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_scipy_conventions_are_kept(W):
    """What SciPy's wrappers do with good input, ours do too."""
    ref = W.toarray()
    x = np.arange(1.0, N + 1)
    column = W.matvec(x[:, None])
    assert column.shape == (N, 1)
    assert W.matvec(x).shape == (N,)
    matrix = W.matvec(np.asmatrix(x).T)
    assert isinstance(matrix, np.matrix) and matrix.shape == (N, 1)
    assert isinstance(W.matmat(np.asmatrix(np.eye(N))), np.matrix)
    # lists, integers, booleans and sparse operands are computed in float64
    for operand in (list(x), x.astype(int), sparse.csr_array(x[:, None])):
        got = W @ operand
        assert got.dtype == np.float64
        np.testing.assert_allclose(np.ravel(got), ref @ x, rtol=tol(ref))
    assert (W @ np.ones(N, dtype=bool)).dtype == np.float64
    # composite operators are SciPy's
    assert isinstance(W @ W, LinearOperator) and (W @ W).args == (W, W)
    assert (2 * W).args == (W, 2)
    assert aslinearoperator(W) is W
    with pytest.raises(ValueError, match="Scalar operands are not allowed"):
        W @ 2.0


# -- nested lists ----------------------------------------------------------------------------
def test_a_nested_list_of_numbers_is_one_matrix():
    # `B=[[4.0]]` used to be read as a list holding the 1-D block [4.0]: "must be 2-D".
    W = ws.WoodburyMatrix([[2.0]], [[4.0]])
    np.testing.assert_array_equal(W.toarray(), [[0.5 + 0.25]])
    rows = [[3.0, 1.0], [1.0, 2.0]]
    W = ws.WoodburyMatrix(
        tridiagonal(N), rows, X=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [2.0, 1.0]]
    )
    same = ws.WoodburyMatrix(tridiagonal(N), np.array(rows), X=W.X)
    assert W.p == 2
    np.testing.assert_array_equal(W.toarray(), same.toarray())
    # a list of 2-D matrices is still a list of terms
    W = ws.WoodburyMatrix(np.eye(2), [[[4.0]], [[2.0]]], X=[[[1.0], [0.0]], [[0.0], [1.0]]])
    np.testing.assert_allclose(W.toarray(), np.eye(2) + np.diag([0.25, 0.5]), rtol=0, atol=0)


def test_mixing_matrices_and_rows_is_refused():
    with pytest.raises(
        ValueError,
        match=r"^`B` mixes matrices and rows of numbers: give one matrix \(a 2-D array or a "
        r"nested list of rows\) or a list of 2-D matrices, one per term$",
    ):
        ws.WoodburyMatrix(np.eye(2), [np.eye(2), [1.0, 2.0]])


# -- args ------------------------------------------------------------------------------------
def test_args_holds_the_blocks_like_scipys_operators():
    G = general()
    assert len(G.args) == 4
    for got, want in zip(G.args, (G.A, G.B, G.U, G.V), strict=True):
        np.testing.assert_array_equal(dense(got), dense(want))
    assert ws.WoodburyMatrix(*G.args).toarray().tobytes() == G.toarray().tobytes()
    assert len(G.T.args) == 4
    np.testing.assert_array_equal(dense(G.T.args[2]), dense(G.V).T)
    S = symmetric()
    assert len(S.args) == 3
    for got, want in zip(S.args, (S.A, S.B, S.X), strict=True):
        np.testing.assert_array_equal(dense(got), dense(want))
    A, B, X = S.args
    assert ws.SymmetricWoodburyMatrix(A, B, X=X).toarray().tobytes() == S.toarray().tobytes()
    # the inverse's operand is the operator, as for SciPy's adjoint and transpose
    assert S.inv().args == (S,)
    assert G.inv().T.args == (G.T,)


# -- immutability ----------------------------------------------------------------------------
def test_the_inverse_operator_is_immutable():
    W, other = general(), symmetric()
    inv = W.inv()
    b = np.arange(1.0, N + 1)
    before = inv @ b
    for name, value in (("W", other), ("shape", (3, 3)), ("dtype", np.float32), ("new", 1)):
        with pytest.raises(AttributeError, match=r"WoodburyInverse is immutable"):
            setattr(inv, name, value)
    with pytest.raises(AttributeError, match=r"WoodburyInverse is immutable"):
        del inv.W
    assert inv.W is W
    np.testing.assert_array_equal(inv @ b, before)
    assert W.inv() is inv
    restored = pickle.loads(pickle.dumps(inv))
    np.testing.assert_array_equal(restored @ b, before)
    with pytest.raises(AttributeError, match=r"WoodburyInverse is immutable"):
        restored.W = other


def handed_out_arrays(value):
    """The ndarrays inside an object handed out: itself, or a sparse array's storage."""
    if sparse.issparse(value):
        return [
            getattr(value, part)
            for part in ("data", "indices", "indptr", "offsets", "coords")
            if isinstance(getattr(value, part, None), np.ndarray)
        ]
    return [value]


def operators_of_every_block_kind():
    rng = np.random.default_rng(7)
    n, p = 300, 3  # large and sparse enough for a sparse capacitance in the last one
    a_sparse = sparse.csc_array(tridiagonal(n))
    yield ws.WoodburyMatrix(tridiagonal(N), tridiagonal(P, 3.0), X=rng.standard_normal((N, P)))
    yield general()
    yield ws.WoodburyMatrix(
        a_sparse,
        sparse.csc_array(tridiagonal(p, 3.0)),
        X=sparse.random_array((n, p), density=0.2, rng=rng, format="csc"),
    )
    yield ws.WoodburyMatrix(np.diag(np.arange(1.0, N + 1)), 2 * np.eye(N))
    yield ws.WoodburyMatrix(a_sparse, sparse.csc_array(tridiagonal(n, 3.0)))


@pytest.mark.parametrize("index", range(5))
def test_blocks_handed_out_cannot_change_the_operator(index):
    W = list(operators_of_every_block_kind())[index]
    b = np.linspace(-1.0, 1.0, W.n)
    names = ["A", "B", "U", "V", "capacitance"] + (["X"] if hasattr(W, "X") else [])
    reference = {name: dense(getattr(W, name)) for name in names}
    fresh = type(W)._from_parts(W._parts)  # the same blocks, nothing cached
    results = (W.solve(b), W @ b, W.T @ b, W.slogdet(), W.inv().toarray())
    handed = [getattr(W, name) for name in names] + list(W.args)
    for value in handed:
        for array in handed_out_arrays(value):
            try:
                array.setflags(write=True)
            except ValueError:
                assert not array.flags.writeable  # a view of read-only memory
                continue
            # a copy: writing into it must not reach the operator
            array[...] = 0 if array.dtype.kind in "iu" else 1e300
    for name in names:
        np.testing.assert_array_equal(dense(getattr(W, name)), reference[name])
    for ref in (W, fresh):
        again = (ref.solve(b), ref @ b, ref.T @ b, ref.slogdet(), ref.inv().toarray())
        for got, want in zip(again, results, strict=True):
            np.testing.assert_array_equal(got, want)


def test_solutions_are_still_accurate():
    """A sanity check that the validated entry points compute the same products."""
    W = general()
    ref = W.toarray()
    c = tol(ref, 10, *(dense(m) for m in (W.A, W.B, W.capacitance)))
    b = np.arange(1.0, N + 1)
    assert rel_err(W.matvec(b), ref @ b) <= c
    assert rel_err(W.rmatvec(b), ref.T @ b) <= c
    assert rel_err(W.inv() @ b, np.linalg.solve(ref, b)) <= c
    assert rel_err(W.inv().rmatvec(b), np.linalg.solve(ref.T, b)) <= c
    assert re.search(r"inverse of", repr(W.inv()))
