"""Every error message: bad arguments, bad right-hand sides, singular blocks."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.linalg import aslinearoperator

import woodbury_sparse as ws

N, P = 5, 2


def tridiagonal(n: int, diag: float = 4.0) -> np.ndarray:
    return diag * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)


def general_args() -> dict:
    rng = np.random.default_rng(3)
    return dict(
        A=tridiagonal(N),
        B=tridiagonal(P, 3.0),
        U=rng.standard_normal((N, P)),
        V=rng.standard_normal((P, N)),
    )


def symmetric_args() -> dict:
    rng = np.random.default_rng(4)
    return dict(A=tridiagonal(N), B=tridiagonal(P, 3.0), X=rng.standard_normal((N, P)))


# -- shapes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["A", "B"])
@pytest.mark.parametrize("as_sparse", [False, True])
def test_non_square(name, as_sparse):
    kwargs = symmetric_args()
    bad = np.ones((4, 3))
    kwargs[name] = sparse.csr_array(bad) if as_sparse else bad
    with pytest.raises(ValueError, match=re.escape(f"`{name}` must be square, got shape (4, 3)")):
        ws.WoodburyMatrix(**kwargs)


@pytest.mark.parametrize(
    ("name", "shape", "expected"),
    [("U", (N, P + 1), (N, P)), ("U", (N + 1, P), (N, P)), ("V", (P, N + 1), (P, N))],
)
def test_general_shapes_that_do_not_fit(name, shape, expected):
    kwargs = general_args()
    kwargs[name] = np.ones(shape)
    msg = (
        f"`{name}` has shape {shape}, which does not fit `A` of shape ({N}, {N}) "
        f"and `B` of shape ({P}, {P}): expected {expected}"
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        ws.WoodburyMatrix(**kwargs)


def test_x_shape_that_does_not_fit():
    kwargs = symmetric_args()
    kwargs["X"] = sparse.csc_array(np.ones((N, P + 2)))
    msg = f"`X` has shape ({N}, {P + 2}), which does not fit `A` of shape ({N}, {N}) and `B`"
    with pytest.raises(ValueError, match=re.escape(msg)):
        ws.WoodburyMatrix(**kwargs)


def test_shape_error_names_the_list_element():
    kwargs = symmetric_args()
    kwargs["B"] = [kwargs["B"], np.eye(3)]
    with pytest.raises(
        ValueError, match=r"`X\[1\]` has shape \(5, 2\).*`B\[1\]` of shape \(3, 3\)"
    ):
        ws.WoodburyMatrix(**kwargs)


def test_identity_default_needs_b_of_order_n():
    with pytest.raises(
        ValueError, match=r"`U` defaults to the identity, which needs `B` to be 5×5"
    ):
        ws.WoodburyMatrix(tridiagonal(N), np.eye(P))
    with pytest.raises(ValueError, match=r"`V` defaults to the identity.*shape \(2, 2\)"):
        ws.WoodburyMatrix(tridiagonal(N), np.eye(P), U=np.ones((N, P)))


def test_not_two_dimensional():
    with pytest.raises(ValueError, match=r"`A` must be 2-D, got an array of shape \(5,\)"):
        ws.WoodburyMatrix(np.ones(N), np.eye(N))
    with pytest.raises(ValueError, match=r"`B` must be 2-D, got an array of shape \(\)"):
        ws.WoodburyMatrix(np.eye(N), 2.0)
    with pytest.raises(ValueError, match=r"`A` must be 2-D, got a 1-D sparse array"):
        ws.WoodburyMatrix(sparse.coo_array(np.ones(N)), np.eye(N))


# -- contradictory arguments ---------------------------------------------------------------
@pytest.mark.parametrize("given", ["U", "V", "UV"])
def test_x_with_u_or_v(given):
    kwargs = symmetric_args()
    general = general_args()
    for key in given:
        kwargs[key] = general[key]
    with pytest.raises(ValueError, match=r"`X` cannot be combined with `U` or `V`"):
        ws.WoodburyMatrix(**kwargs)


@pytest.mark.parametrize("given", ["U", "V"])
def test_symmetric_true_with_u_or_v(given):
    kwargs = general_args()
    kwargs = {k: kwargs[k] for k in ("A", "B", given)}
    with pytest.raises(ValueError, match=r"`symmetric=True` cannot be combined with `U` or `V`"):
        ws.WoodburyMatrix(**kwargs, symmetric=True)
    with pytest.raises(ValueError, match=r"`symmetric=True` cannot be combined with `U` or `V`"):
        ws.SymmetricWoodburyMatrix(**kwargs)


def test_symmetric_false_with_x():
    with pytest.raises(ValueError, match=r"`symmetric=False` cannot be combined with `X`"):
        ws.WoodburyMatrix(**symmetric_args(), symmetric=False)
    with pytest.raises(ValueError, match=r"SymmetricWoodburyMatrix needs `symmetric` True or None"):
        ws.SymmetricWoodburyMatrix(**symmetric_args(), symmetric=False)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("yes", "'yes' (str)"),
        (1, "1 (int)"),
        (1.0, "1.0 (float)"),
        (0, "0 (int)"),
        (np.array(True), "array(True) (ndarray)"),
        (np.int64(1), "np.int64(1) (int64)"),
    ],
    ids=["str", "int", "float", "zero", "0-d array", "numpy int"],
)
def test_symmetric_must_be_a_bool_or_none(value, shown):
    # A truthy non-bool with U/V used to build A⁻¹ + U B⁻¹ Uᵀ, silently dropping V.
    msg = (
        r"`symmetric` must be None, True or False \(a Python or NumPy bool\), "
        rf"got {re.escape(shown)}"
    )
    for kwargs in (symmetric_args(), general_args()):
        with pytest.raises(TypeError, match=msg):
            ws.WoodburyMatrix(**kwargs, symmetric=value)
        with pytest.raises(TypeError, match=msg):
            ws.SymmetricWoodburyMatrix(**{k: kwargs[k] for k in ("A", "B")}, symmetric=value)


def test_numpy_bools_behave_as_python_bools():
    general = general_args()
    with pytest.raises(ValueError, match=r"`symmetric=True` cannot be combined with `U` or `V`"):
        ws.WoodburyMatrix(**general, symmetric=np.True_)
    with pytest.raises(ValueError, match=r"`symmetric=False` cannot be combined with `X`"):
        ws.WoodburyMatrix(**symmetric_args(), symmetric=np.False_)
    with pytest.raises(ValueError, match=r"SymmetricWoodburyMatrix needs `symmetric` True or None"):
        ws.SymmetricWoodburyMatrix(**symmetric_args(), symmetric=np.False_)
    A, B = general["A"], general["B"]
    B_n = tridiagonal(N, 3.0)
    for flag in (np.True_, np.False_):
        got = ws.WoodburyMatrix(A, B_n, symmetric=flag)
        want = ws.WoodburyMatrix(A, B_n, symmetric=bool(flag))
        assert type(got) is type(want)
        assert got._parts.symmetric is bool(flag)  # a Python bool, whatever was given
        np.testing.assert_array_equal(got.toarray(), want.toarray())
    S = ws.WoodburyMatrix(A, B, X=general["U"], symmetric=np.True_)
    assert type(S) is ws.SymmetricWoodburyMatrix


@pytest.mark.parametrize(
    ("name", "where"), [("A", "A"), ("B", "B"), ("B[1]", "B-list")], ids=["A", "B", "B[1]"]
)
@pytest.mark.parametrize("as_sparse", [False, True])
def test_symmetric_true_with_non_symmetric_block(name, where, as_sparse):
    nonsym = tridiagonal(N) + np.triu(np.ones((N, N)), 1)
    nonsym = sparse.csc_array(nonsym) if as_sparse else nonsym
    kwargs = dict(A=tridiagonal(N), B=np.eye(N))
    if where == "A":
        kwargs["A"] = nonsym
    elif where == "B":
        kwargs["B"] = nonsym
    else:
        kwargs["B"] = [np.eye(N), nonsym]
    msg = rf"`{re.escape(name)}` is not symmetric \(‖M − Mᵀ‖/‖M‖ = .* > 1\.5e-08\), but the "
    with pytest.raises(ValueError, match=msg):
        ws.WoodburyMatrix(**kwargs, symmetric=True)
    with pytest.raises(ValueError, match=msg):
        ws.WoodburyMatrix(**kwargs, X=np.eye(N))
    # without symmetric=True it is simply the general form
    assert type(ws.WoodburyMatrix(**kwargs)) is ws.WoodburyMatrix


# -- values ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", ["A", "B", "U", "V", "X"])
@pytest.mark.parametrize("as_sparse", [False, True])
def test_nan_or_inf(name, bad, as_sparse):
    kwargs = symmetric_args() if name == "X" else general_args()
    value = np.array(kwargs[name], dtype=float)
    value[0, 0] = bad
    kwargs[name] = sparse.csr_matrix(value) if as_sparse else value
    with pytest.raises(ValueError, match=rf"`{name}` contains NaN or infinite values"):
        ws.WoodburyMatrix(**kwargs)


@pytest.mark.parametrize("name", ["A", "B", "U", "V", "X"])
@pytest.mark.parametrize("as_sparse", [False, True])
def test_complex_input(name, as_sparse):
    kwargs = symmetric_args() if name == "X" else general_args()
    value = np.array(kwargs[name], dtype=complex)
    kwargs[name] = sparse.csc_array(value) if as_sparse else value
    with pytest.raises(TypeError, match=rf"`{name}` is complex \(complex128\); .* real matrices"):
        ws.WoodburyMatrix(**kwargs)


@pytest.mark.parametrize(
    "value",
    [
        np.array([["a", "b"], ["c", "d"]]),
        np.array([[object(), None], [None, None]]),
        None,
        "not a matrix",
        np.ones((2, 2), dtype="datetime64[s]"),
    ],
    ids=["strings", "objects", "None", "str", "datetime"],
)
def test_non_numeric_input(value):
    with pytest.raises(TypeError, match=r"`A` must hold real numbers, got dtype"):
        ws.WoodburyMatrix(value, np.eye(2))


def test_ragged_and_operator_input():
    with pytest.raises(TypeError, match=r"`A` must be a matrix, got builtins\.list"):
        ws.WoodburyMatrix([[1.0, 2.0], [3.0]], [np.eye(2)])
    with pytest.raises(TypeError, match=r"`A` must be an explicit matrix, got a LinearOperator"):
        ws.WoodburyMatrix(aslinearoperator(np.eye(2)), np.eye(2))
    with pytest.raises(TypeError, match=r"`B` is required"):
        ws.WoodburyMatrix(np.eye(2), None)


@pytest.mark.parametrize("name", ["B", "U", "V", "X"])
def test_empty_list(name):
    kwargs = symmetric_args() if name == "X" else general_args()
    kwargs[name] = []
    with pytest.raises(ValueError, match=rf"`{name}` is an empty list; give at least one matrix"):
        ws.WoodburyMatrix(**kwargs)


# -- right-hand sides ----------------------------------------------------------------------
@pytest.mark.parametrize("make", [ws.WoodburyMatrix, None], ids=["general", "symmetric"])
def test_right_hand_side_of_the_wrong_length(make):
    W = ws.WoodburyMatrix(**(general_args() if make else symmetric_args()))
    msg = rf"`b` has {N + 1} rows but the matrix is {N}×{N}; expected {N} rows"
    for b in (np.ones((N + 1, 2)), sparse.csr_array(np.ones((N + 1, 1)))):
        with pytest.raises(ValueError, match=msg):
            W.solve(b)
    with pytest.raises(
        ValueError, match=rf"`b` has length {N + 1} but the matrix is {N}×{N}; expected length {N}"
    ):
        W.solve(np.ones(N + 1))
    with pytest.raises(ValueError, match=r"`b` has length 3"):
        W.T.solve(np.ones(3))
    # the LinearOperator entry points check their operands the same way (see test_protocol)
    for call in (W.matvec, W.rmatvec, W.dot, W.__matmul__, W.inv().matvec):
        with pytest.raises(ValueError, match=rf"`x` has length {N + 1} but the matrix is"):
            call(np.ones(N + 1))
    with pytest.raises(ValueError, match=rf"`X` has {N + 1} rows but the matrix is"):
        W.matmat(np.ones((N + 1, 2)))


def test_bad_right_hand_side_values():
    W = ws.WoodburyMatrix(**symmetric_args())
    with pytest.raises(ValueError, match=r"`b` contains NaN or infinite values"):
        W.solve(np.r_[np.ones(N - 1), np.nan])
    # complex b is solved (see test_complex); values that are not numbers are refused
    with pytest.raises(TypeError, match=r"`b` must hold real or complex numbers, got dtype <U1"):
        W.solve(np.array(["1"] * N))
    with pytest.raises(
        ValueError, match=r"`b` must be 1-D or 2-D, got an array of shape \(5, 1, 1\)"
    ):
        W.solve(np.ones((N, 1, 1)))


# -- singular blocks -------------------------------------------------------------------------
def singular(n: int, kind: str):
    """An exactly singular symmetric matrix of order ``n`` (a [[1, 1], [1, 1]] corner)."""
    m = tridiagonal(n, 4.0)
    m[:2, :2] = 1.0
    m[0, 2] = m[2, 0] = m[1, 2] = m[2, 1] = 0.0
    if kind == "diagonal":
        return np.diag(np.r_[0.0, np.ones(n - 1)])
    return sparse.csc_array(m) if kind == "sparse" else m


@pytest.mark.parametrize("kind", ["diagonal", "dense", "sparse"])
@pytest.mark.parametrize("block", ["A", "B"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_singular_a_or_b(block, kind, symmetric):
    kwargs = dict(A=tridiagonal(N), B=tridiagonal(N, 3.0))
    kwargs[block] = singular(N, kind)
    W = ws.WoodburyMatrix(**kwargs, symmetric=symmetric)
    with pytest.raises(ws.SingularMatrixError, match=rf"`{block}` is singular") as info:
        W @ np.ones(N)
    assert info.value.block == block
    assert isinstance(info.value, np.linalg.LinAlgError)
    assert isinstance(info.value, ws.FactorizationError)
    with pytest.raises(ws.SingularMatrixError, match=rf"`{block}` is singular") as info:
        W.slogdet()
    assert info.value.block == block
    # the exception pickles with its block
    import pickle

    again = pickle.loads(pickle.dumps(info.value))
    assert (type(again), again.block, str(again)) == (type(info.value), block, str(info.value))


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_singular_capacitance(kind):
    # A = I, B = −1, X = e₁: O = B + XᵀAX = 0, and W = I − e₁e₁ᵀ is singular.
    n = 400 if kind == "sparse" else N
    if kind == "sparse":
        # A = I and X = I give O = B + I: large and sparse, so factorised sparsely
        # (CHOLMOD). B = S − I with S singular (a [[1, 1], [1, 1]] corner) is regular.
        S = singular(n, "sparse")
        W = ws.WoodburyMatrix(sparse.eye_array(n), sparse.csc_array(S - sparse.eye_array(n)))
        assert sparse.issparse(W.capacitance)
    else:
        # A = I, B = −1, X = e₁: O = B + XᵀAX = 0, and W = I − e₁e₁ᵀ is singular.
        e1 = np.zeros((n, 1))
        e1[0] = 1.0
        W = ws.WoodburyMatrix(np.eye(n), -np.eye(1), X=e1)
    assert W.slogdet() == (0.0, -np.inf)
    with pytest.raises(
        ws.SingularMatrixError, match=r"the capacitance O = B \+ V A U is singular"
    ) as info:
        W.solve(np.ones(n))
    assert info.value.block == "O"
    with pytest.raises(np.linalg.LinAlgError, match=r"det W is zero"):
        W.logdet()


def test_logdet_of_negative_determinant():
    # W = I − 2 I = −I of odd order
    W = ws.WoodburyMatrix(np.eye(3), -0.5 * np.eye(3))
    assert W.slogdet() == (-1.0, pytest.approx(0.0, abs=1e-15))
    with pytest.raises(
        np.linalg.LinAlgError, match=r"det W is negative, so log det W is not real; use slogdet"
    ):
        W.logdet()
