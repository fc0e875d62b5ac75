"""Construction: R's rules for the form, lists of terms, input formats, immutability, pickle."""

from __future__ import annotations

import copy
import pickle
import re

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from conftest import NAMES, case, dense, rel_err, tol
from woodbury_sparse import testing
from woodbury_sparse._cache import peek

SPARSE_FORMATS = ["csr", "csc", "coo", "lil", "dok", "dia", "bsr"]


def tridiagonal(n: int, diag: float = 4.0, lower: float = -1.0, upper: float = -1.0):
    return diag * np.eye(n) + lower * np.eye(n, k=-1) + upper * np.eye(n, k=1)


def as_format(m: np.ndarray, fmt: str, container: str):
    """``m`` as a SciPy sparse ``fmt`` matrix (``container="matrix"``) or array."""
    cls = getattr(sparse, f"{fmt}_{container}")
    return cls(m)


def snapshot(value):
    """A deep copy of an input, including every array of a sparse matrix."""
    return copy.deepcopy(value)


def assert_unchanged(value, before) -> None:
    """``value`` equals ``before`` bit for bit (sparse: every storage array)."""
    if isinstance(value, list):
        for v, b in zip(value, before, strict=True):
            assert_unchanged(v, b)
        return
    assert type(value) is type(before)
    if sparse.issparse(value):
        assert value.format == before.format
        assert value.shape == before.shape
        assert value.dtype == before.dtype
        if value.format in ("csr", "csc", "bsr"):
            for attr in ("data", "indices", "indptr"):
                a, b = getattr(value, attr), getattr(before, attr)
                assert a.dtype == b.dtype
                np.testing.assert_array_equal(a, b, strict=True)
        elif value.format == "coo":
            np.testing.assert_array_equal(value.data, before.data, strict=True)
            for a, b in zip(value.coords, before.coords, strict=True):
                np.testing.assert_array_equal(a, b, strict=True)
        elif value.format == "dia":
            np.testing.assert_array_equal(value.data, before.data, strict=True)
            np.testing.assert_array_equal(value.offsets, before.offsets, strict=True)
        else:  # lil, dok
            assert (value != before).nnz == 0
            np.testing.assert_array_equal(value.toarray(), before.toarray(), strict=True)
    else:
        np.testing.assert_array_equal(np.asarray(value), np.asarray(before), strict=True)


def exercise(W) -> None:
    """Every operation that factorises or multiplies."""
    n = W.n
    W.solve(np.ones(n))
    W @ np.ones(n)
    W.rmatvec(np.ones(n))
    W.slogdet()
    W.T.solve(np.ones((n, 2)))
    W.inv().toarray()


# -- the form ------------------------------------------------------------------------------
def test_auto_symmetry_detection(rng):
    n = 8
    A = tridiagonal(n)
    B = tridiagonal(n, 3.0)
    assert type(ws.WoodburyMatrix(A, B)) is ws.SymmetricWoodburyMatrix
    assert type(ws.WoodburyMatrix(sparse.csr_array(A), sparse.eye_array(n))) is (
        ws.SymmetricWoodburyMatrix
    )
    # one non-symmetric block makes the general form
    nonsym = tridiagonal(n, 4.0, -1.0, 0.5)
    assert type(ws.WoodburyMatrix(nonsym, B)) is ws.WoodburyMatrix
    assert type(ws.WoodburyMatrix(A, nonsym)) is ws.WoodburyMatrix
    assert type(ws.WoodburyMatrix(A, [B, nonsym])) is ws.WoodburyMatrix
    # symmetric=False forces the general form even for symmetric blocks
    W = ws.WoodburyMatrix(A, B, symmetric=False)
    assert type(W) is ws.WoodburyMatrix
    assert rel_err(W.toarray(), ws.WoodburyMatrix(A, B).toarray()) <= tol(W.toarray())


def test_u_or_v_given_means_general():
    n = 5
    A = tridiagonal(n)
    B = tridiagonal(n, 3.0)
    for kwargs in (dict(U=np.eye(n)), dict(V=np.eye(n)), dict(U=np.eye(n), V=np.eye(n))):
        W = ws.WoodburyMatrix(A, B, **kwargs)
        assert type(W) is ws.WoodburyMatrix
        ref = testing.dense_woodbury(A, B, **kwargs)
        assert rel_err(W.toarray(), ref) <= tol(ref)


def test_x_given_means_symmetric(rng):
    n, p = 6, 2
    A = tridiagonal(n)
    X = rng.standard_normal((n, p))
    W = ws.WoodburyMatrix(A, np.eye(p), X=X)
    assert type(W) is ws.SymmetricWoodburyMatrix
    assert W.T is W
    ref = np.linalg.inv(A) + X @ X.T
    assert rel_err(W.toarray(), ref) <= tol(ref)
    # the subclass can be called directly
    W2 = ws.SymmetricWoodburyMatrix(A, np.eye(p), X=X)
    np.testing.assert_array_equal(W2.toarray(), W.toarray())


def test_lists_are_recycled_and_combined(rng):
    n = 7
    A = sparse.csc_array(tridiagonal(n, 5.0, -1.0, 0.3))
    B = [tridiagonal(2, 3.0, 0.5, -0.2), 2 * np.eye(3), sparse.diags_array([1.0, 2.0])]
    U = [rng.standard_normal((n, 2)), rng.standard_normal((n, 3))]
    # V has 1 element per 2-wide term... lists recycle to the longest (3): U[2] = U[0]
    V = [rng.standard_normal((2, n)), sparse.csr_array(rng.standard_normal((3, n)))]
    W = ws.WoodburyMatrix(A, B, U=U, V=V)
    assert type(W) is ws.WoodburyMatrix
    assert W.p == 7
    ref = testing.dense_woodbury(A, B, U=U, V=V)
    # the reference by hand: the sum of the three recycled terms
    by_hand = np.linalg.inv(A.toarray())
    for k in range(3):
        by_hand += dense(U[k % 2]) @ np.linalg.solve(dense(B[k]), dense(V[k % 2]))
    np.testing.assert_allclose(ref, by_hand, rtol=1e-12)
    assert rel_err(W.toarray(), ref) <= tol(ref, 10, A, *B)
    # combined as one term: B block diagonal, U side by side, V stacked
    from scipy.linalg import block_diag

    np.testing.assert_array_equal(dense(W.B), block_diag(*(dense(b) for b in B)))
    np.testing.assert_array_equal(dense(W.U), np.hstack([dense(U[k % 2]) for k in range(3)]))
    np.testing.assert_array_equal(dense(W.V), np.vstack([dense(V[k % 2]) for k in range(3)]))


def test_symmetric_lists_recycle_x(rng):
    n, p = 6, 2
    A = tridiagonal(n)
    X = rng.standard_normal((n, p))
    B = [np.eye(p), tridiagonal(p, 3.0)]
    W = ws.WoodburyMatrix(A, B, X=X)
    assert type(W) is ws.SymmetricWoodburyMatrix
    assert W.p == 2 * p
    ref = testing.dense_woodbury(A, B, X=X)
    assert rel_err(W.toarray(), ref) <= tol(ref)
    np.testing.assert_array_equal(dense(W.X), np.hstack([X, X]))
    # a single B recycled over a list of X
    W2 = ws.WoodburyMatrix(A, np.eye(p), X=[X, 2 * X])
    ref2 = np.linalg.inv(A) + 5 * X @ X.T
    assert rel_err(W2.toarray(), ref2) <= tol(ref2)


def test_several_b_without_u_v_default_identity():
    n = 4
    A = tridiagonal(n)
    Bs = [2 * np.eye(n), tridiagonal(n, 3.0)]
    W = ws.WoodburyMatrix(A, Bs)
    assert type(W) is ws.SymmetricWoodburyMatrix
    ref = np.linalg.inv(A) + np.linalg.inv(Bs[0]) + np.linalg.inv(Bs[1])
    assert rel_err(W.toarray(), ref) <= tol(ref)


def test_inverse_of_covariance_is_accepted_as_symmetric(rng):
    """The gene-network case: a precision computed as ``numpy.linalg.inv(Sigma)``."""
    n = 60
    L = rng.standard_normal((n, n))
    sigma = L @ L.T / n + np.eye(n)
    precision = np.linalg.inv(sigma)
    asym = np.linalg.norm(precision - precision.T) / np.linalg.norm(precision)
    assert 0 < asym < 1e-12  # R's test (mean relative difference ≤ 100 eps) can fail here
    W = ws.WoodburyMatrix(precision, np.eye(n))
    assert type(W) is ws.SymmetricWoodburyMatrix
    A = W.A
    np.testing.assert_array_equal(A, A.T)  # symmetrised
    np.testing.assert_allclose(A, (precision + precision.T) / 2, rtol=0, atol=0)
    ref = sigma + np.eye(n)
    assert rel_err(W.toarray(), ref) <= tol(ref, 10, precision)
    # also as a block of the symmetric form asked for explicitly, and as B
    ws.WoodburyMatrix(np.eye(n), precision, symmetric=True)
    ws.WoodburyMatrix(np.eye(n), [precision, precision], X=np.eye(n))


def nearly_symmetric(n: int, asymmetry: float, rng, as_sparse: bool = False):
    """An SPD tridiagonal-plus-dense matrix plus an antisymmetric part: ``‖M − Mᵀ‖/‖M‖``
    is ``asymmetry`` up to rounding (the parts are orthogonal in the Frobenius product)."""
    S = tridiagonal(n) + 0.1 * np.ones((n, n))
    R = rng.standard_normal((n, n))
    K = R - R.T
    if as_sparse:  # the pattern of S's tridiagonal part, so that it stays sparse
        S = tridiagonal(n)
        K = np.triu(K, 1) * (np.eye(n, k=1) != 0)
        K = K - K.T
    t = asymmetry * np.linalg.norm(S) / (2 * np.linalg.norm(K))
    M = S + t * K
    return sparse.csc_array(M) if as_sparse else M


def measured_asymmetry(m) -> float:
    m = dense(m)
    return float(np.linalg.norm(m - m.T) / np.linalg.norm(m))


def test_symmetry_roundoff_threshold():
    """``4·√n·eps``: between round-off of products of length n and the √eps cut-off."""
    from woodbury_sparse._validation import SYMMETRY_RTOL, symmetry_roundoff

    eps = np.finfo(np.float64).eps
    assert symmetry_roundoff(1) == 4 * eps
    assert symmetry_roundoff(10_000) == pytest.approx(400 * eps)
    assert symmetry_roundoff(10**12) < 1e-9 < SYMMETRY_RTOL  # 1e-10 warns at any real n


@pytest.mark.parametrize("n", [3, 60, 400])
def test_roundoff_asymmetry_is_symmetrised_silently(n, rng):
    """Products and inverses computed to be symmetric: no warning (warnings are errors)."""
    from woodbury_sparse._validation import symmetry_roundoff

    X = rng.standard_normal((n, n))
    product = (X * rng.random(n)) @ X.T + n * np.eye(n)  # X D Xᵀ: not syrk, not exact
    L = rng.standard_normal((n, n))
    inverse = np.linalg.inv(L @ L.T / n + np.eye(n))
    for m in (product, inverse):
        asym = measured_asymmetry(m)
        assert 0 < asym <= symmetry_roundoff(n)
        for W in (
            ws.WoodburyMatrix(m, np.eye(n)),
            ws.WoodburyMatrix(np.eye(n), m, symmetric=True),
            ws.WoodburyMatrix(m, [m, np.eye(n)], X=[np.eye(n), np.eye(n)]),
        ):
            assert type(W) is ws.SymmetricWoodburyMatrix
            np.testing.assert_array_equal(dense(W.A), dense(W.A).T)


@pytest.mark.parametrize("as_sparse", [False, True])
@pytest.mark.parametrize("asymmetry", [1e-13, 1e-10, 1e-9])
def test_asymmetry_above_roundoff_warns(asymmetry, as_sparse, rng):
    # An asymmetry of 1e-10 used to be symmetrised without a word.
    n = 40
    M = nearly_symmetric(n, asymmetry, rng, as_sparse)
    asym = measured_asymmetry(M)
    assert asym == pytest.approx(asymmetry, rel=1e-6)

    def msg(name):
        return (
            rf"`{re.escape(name)}` is symmetric only to ‖M − Mᵀ‖/‖M‖ = {asym:.1e}, more than "
            rf"rounding leaves \(4·√n·eps = {4 * np.sqrt(n) * np.finfo(float).eps:.1e}\): it is "
            r"used as \(M \+ Mᵀ\)/2"
        )

    eye = sparse.eye_array(n) if as_sparse else np.eye(n)
    with pytest.warns(ws.AsymmetryWarning, match=msg("A")) as record:
        W = ws.WoodburyMatrix(M, eye)
    assert len(record) == 1 and record[0].filename == __file__  # attributed to the caller
    assert type(W) is ws.SymmetricWoodburyMatrix
    np.testing.assert_array_equal(dense(W.A), (dense(M) + dense(M).T) / 2)
    with pytest.warns(ws.WoodburyWarning, match=msg("B")):
        ws.WoodburyMatrix(eye, M, symmetric=True)
    with pytest.warns(ws.WoodburyWarning, match=msg("B[1]")):
        ws.WoodburyMatrix(eye, [eye, M], X=[eye, eye])
    with pytest.warns(ws.WoodburyWarning, match=msg("B")):
        ws.WoodburyMatrix(eye, eye).add_terms(M, X=eye)
    # the general form uses the block as it is, without a word
    G = ws.WoodburyMatrix(M, eye, symmetric=False)
    np.testing.assert_array_equal(dense(G.A), dense(M))


def test_asymmetry_beyond_sqrt_eps_is_not_symmetric(rng):
    n = 40
    M = nearly_symmetric(n, 1e-6, rng)
    assert type(ws.WoodburyMatrix(M, np.eye(n))) is ws.WoodburyMatrix  # and no warning
    with pytest.raises(ValueError, match=r"`A` is not symmetric \(‖M − Mᵀ‖/‖M‖ = 1\.00e-06"):
        ws.WoodburyMatrix(M, np.eye(n), symmetric=True)


def test_clearly_asymmetric_block_with_symmetric_true_raises():
    A = tridiagonal(5, 4.0, -1.0, 0.0)
    with pytest.raises(ValueError, match=r"`A` is not symmetric"):
        ws.WoodburyMatrix(A, np.eye(5), symmetric=True)


# -- input formats -------------------------------------------------------------------------
def format_inputs(rng):
    n, p = 9, 3
    A = tridiagonal(n, 4.0, -1.0, -1.0)
    A[0, 4] = A[4, 0] = 0.5
    B = tridiagonal(p, 3.0)
    X = rng.standard_normal((n, p))
    X[np.abs(X) < 0.5] = 0.0
    Ag = tridiagonal(n, 5.0, -1.0, 0.7)
    U = rng.standard_normal((n, p))
    V = rng.standard_normal((p, n))
    V[np.abs(V) < 0.5] = 0.0
    return A, B, X, Ag, U, V


def results(W) -> list:
    n = W.n
    b = np.linspace(-1, 1, n)
    return [W.toarray(), W.solve(b), W @ b, W.T @ b, np.array(W.slogdet())]


@pytest.mark.parametrize("container", ["matrix", "array"])
@pytest.mark.parametrize("fmt", SPARSE_FORMATS)
def test_every_sparse_format_gives_the_same_result(fmt, container, rng):
    A, B, X, Ag, U, V = format_inputs(rng)
    conv = lambda m: as_format(m, fmt, container)  # noqa: E731
    ref_sym = results(ws.WoodburyMatrix(sparse.csc_array(A), sparse.csc_array(B), X=X))
    ref_gen = results(ws.WoodburyMatrix(sparse.csc_array(Ag), B, U=U, V=sparse.csc_array(V)))
    W_sym = ws.WoodburyMatrix(conv(A), conv(B), X=conv(X))
    W_gen = ws.WoodburyMatrix(conv(Ag), conv(B), U=conv(U), V=conv(V))
    assert type(W_sym) is ws.SymmetricWoodburyMatrix
    assert type(W_gen) is ws.WoodburyMatrix
    t_sym = tol(ref_sym[0], 10, A, B)
    t_gen = tol(ref_gen[0], 10, Ag, B)
    for got, want in zip(results(W_sym), ref_sym, strict=True):
        assert rel_err(got, want) <= t_sym
    for got, want in zip(results(W_gen), ref_gen, strict=True):
        assert rel_err(got, want) <= t_gen


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(np.asarray, id="ndarray"),
        pytest.param(
            np.asmatrix,
            id="np.matrix",
            marks=pytest.mark.filterwarnings(
                "ignore:the matrix subclass:PendingDeprecationWarning"
            ),
        ),
        pytest.param(np.asfortranarray, id="fortran-order"),
    ],
)
def test_dense_inputs_give_the_same_result(convert, rng):
    A, B, X, Ag, U, V = format_inputs(rng)
    ref_sym = results(ws.WoodburyMatrix(A, B, X=X))
    ref_gen = results(ws.WoodburyMatrix(Ag, B, U=U, V=V))
    for got, want in zip(
        results(ws.WoodburyMatrix(convert(A), convert(B), X=convert(X))), ref_sym, strict=True
    ):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(
        results(ws.WoodburyMatrix(convert(Ag), convert(B), U=convert(U), V=convert(V))),
        ref_gen,
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)
    # dense and sparse input of the same matrices agree to round-off
    sparse_sym = results(ws.WoodburyMatrix(sparse.csr_array(A), B, X=X))
    for got, want in zip(sparse_sym, ref_sym, strict=True):
        assert rel_err(got, want) <= tol(ref_sym[0], 10, A, B)


# -- no input is ever modified -------------------------------------------------------------
def unsorted_csc(m: np.ndarray, cls=sparse.csc_matrix):
    """``m`` in CSC (or CSR) form with the indices of every column (row) reversed."""
    s = cls(m)
    s.sort_indices()
    data, indices, indptr = s.data.copy(), s.indices.copy(), s.indptr.copy()
    for j in range(len(indptr) - 1):
        lo, hi = indptr[j], indptr[j + 1]
        data[lo:hi] = data[lo:hi][::-1]
        indices[lo:hi] = indices[lo:hi][::-1]
    out = cls((data, indices, indptr), shape=m.shape)
    out.has_sorted_indices = False
    return out


@pytest.mark.parametrize("cls", [sparse.csc_matrix, sparse.csc_array, sparse.csr_matrix])
def test_unsorted_sparse_input_is_not_sorted_in_place(cls, rng):
    """scikit-sparse sorts indices in place; the caller's matrix must stay as it was."""
    A, B, _X, Ag, U, V = format_inputs(rng)
    n = A.shape[0]
    big_a = sparse.kron(sparse.eye_array(40), A).toarray()  # large enough for CHOLMOD
    inputs = dict(
        A=unsorted_csc(big_a, cls),
        B=unsorted_csc(np.kron(np.eye(40), np.eye(n)) * 2 + big_a, cls),
        X=unsorted_csc(np.kron(np.eye(40), np.eye(n)) + 0.1 * np.eye(40 * n, k=3), cls),
    )
    assert not np.all(
        np.diff(inputs["A"].indices[inputs["A"].indptr[1] : inputs["A"].indptr[2]]) > 0
    )
    before = {k: snapshot(v) for k, v in inputs.items()}
    W = ws.WoodburyMatrix(**inputs)
    for k in inputs:
        assert_unchanged(inputs[k], before[k])
    exercise(W)
    for k in inputs:
        assert_unchanged(inputs[k], before[k])
        assert inputs[k].has_sorted_indices == before[k].has_sorted_indices
    general = dict(A=unsorted_csc(Ag, cls), B=unsorted_csc(B, cls), U=U, V=unsorted_csc(V, cls))
    before = {k: snapshot(v) for k, v in general.items()}
    exercise(ws.WoodburyMatrix(**general))
    for k in general:
        assert_unchanged(general[k], before[k])


@pytest.mark.parametrize("name", NAMES)
def test_catalogue_inputs_are_never_modified(name):
    kwargs = case(name).problem.kwargs
    before = {k: snapshot(v) for k, v in kwargs.items()}
    W = ws.WoodburyMatrix(**kwargs)
    for k, v in kwargs.items():
        assert_unchanged(v, before[k])
    exercise(W)
    pickle.loads(pickle.dumps(W)).slogdet()
    for k, v in kwargs.items():
        assert_unchanged(v, before[k])


def test_later_changes_to_the_callers_arrays_do_not_affect_w(rng):
    A, B, X, Ag, U, V = format_inputs(rng)
    A_sp = sparse.csc_array(A)
    Ug, Vg = U.copy(), sparse.csr_array(V)
    W = ws.WoodburyMatrix(A_sp, B, X=X)
    Wg = ws.WoodburyMatrix(Ag, B, U=Ug, V=Vg)
    before, before_g = results(W), results(Wg)
    A_sp.data *= 3.0
    B *= 2.0
    X[:] = 0.0
    Ag[0, 0] = 100.0
    Ug[:] = 7.0
    Vg.data[:] = -1.0
    for got, want in zip(results(W), before, strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(results(Wg), before_g, strict=True):
        np.testing.assert_array_equal(got, want)


def test_operators_are_immutable():
    W = ws.WoodburyMatrix(tridiagonal(4), np.eye(4), U=np.eye(4))
    S = ws.WoodburyMatrix(tridiagonal(4), np.eye(4))
    for op in (W, S, W.T):
        with pytest.raises(AttributeError, match="immutable"):
            op.shape = (3, 3)
        with pytest.raises(AttributeError, match="immutable"):
            op.new_attribute = 1
        with pytest.raises(AttributeError, match="immutable"):
            op._parts = None
        with pytest.raises(AttributeError, match="immutable"):
            del op._parts
    # what the properties hand out cannot be written into
    with pytest.raises(ValueError, match="read-only"):
        W.A[0, 0] = 1.0
    sp = ws.WoodburyMatrix(sparse.csc_array(tridiagonal(4)), np.eye(4))
    with pytest.raises(ValueError, match="read-only"):
        sp.A.data[0] = 1.0
    np.testing.assert_array_equal(sp.A.toarray(), tridiagonal(4))
    # nor can the write flag be turned back on, nor a sparse array's storage be swapped
    with pytest.raises(ValueError, match="WRITEABLE"):
        W.A.flags.writeable = True
    b = np.arange(4.0)
    before = (sp.solve(b), sp @ b)
    handed_out = sp.A
    handed_out.data = handed_out.data * 2
    handed_out.indices = handed_out.indices[::-1].copy()
    np.testing.assert_array_equal(sp.A.toarray(), tridiagonal(4))
    np.testing.assert_array_equal(sp.solve(b), before[0])
    np.testing.assert_array_equal(sp @ b, before[1])
    for prop in ("A", "B", "X", "U", "V", "capacitance"):
        value = getattr(ws.WoodburyMatrix(tridiagonal(4), tridiagonal(4), symmetric=True), prop)
        if isinstance(value, np.ndarray):
            assert not value.flags.writeable


# -- pickle ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_pickle_roundtrip_after_factorising(name):
    W = case(name).build()
    b = np.linspace(0, 1, W.n)
    expected = [W.slogdet(), W.solve(b), W @ b, W.T @ b, W.toarray()]
    data = pickle.dumps(W)
    restored = pickle.loads(data)
    assert type(restored) is type(W)
    assert restored.shape == W.shape and restored.p == W.p
    # factorisations are rebuilt lazily, on first use
    assert "factor" not in restored._parts.A.__dict__
    assert peek(restored._state, "O") is None
    got = [restored.slogdet(), restored.solve(b), restored @ b, restored.T @ b, restored.toarray()]
    assert got[0] == expected[0]
    for g, e in zip(got[1:], expected[1:], strict=True):
        np.testing.assert_array_equal(g, e)
    assert "factor" in restored._parts.A.__dict__


def test_pickle_transpose_and_inverse():
    W = case("general_rectangular").build()
    W.T.slogdet()
    b = np.ones(W.n)
    WT = pickle.loads(pickle.dumps(W.T))
    np.testing.assert_array_equal(WT @ b, W.T @ b)
    np.testing.assert_array_equal(WT.solve(b), W.T.solve(b))
    inv = pickle.loads(pickle.dumps(W.inv()))
    np.testing.assert_array_equal(inv @ b, W.inv() @ b)


# -- the blocks as properties ----------------------------------------------------------------
def test_block_properties(rng):
    n, p = 6, 2
    A = tridiagonal(n)
    B = tridiagonal(p, 3.0)
    X = rng.standard_normal((n, p))
    S = ws.WoodburyMatrix(sparse.csr_matrix(A), B, X=X)
    assert (S.n, S.p) == (n, p)
    assert sparse.issparse(S.A)
    np.testing.assert_array_equal(S.A.toarray(), A)
    np.testing.assert_array_equal(S.B, B)
    np.testing.assert_array_equal(S.X, X)
    np.testing.assert_array_equal(S.U, X)
    np.testing.assert_array_equal(S.V, X.T)
    assert S.A.dtype == S.B.dtype == S.X.dtype == np.float64

    U = rng.standard_normal((n, p))
    V = rng.standard_normal((p, n))
    G = ws.WoodburyMatrix(A, B, U=U, V=V)
    assert not hasattr(G, "X")
    np.testing.assert_array_equal(G.A, A)
    np.testing.assert_array_equal(G.U, U)
    np.testing.assert_array_equal(G.V, V)
    np.testing.assert_array_equal(G.T.U, V.T)
    np.testing.assert_array_equal(G.T.V, U.T)
    np.testing.assert_array_equal(dense(G.T.A), A.T)

    # defaults: U = V = X = I; diagonal blocks come back as sparse diagonals
    D = ws.WoodburyMatrix(np.diag([1.0, 2.0, 3.0]), 2 * np.eye(3))
    np.testing.assert_array_equal(dense(D.X), np.eye(3))
    np.testing.assert_array_equal(dense(D.A), np.diag([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(dense(D.B), 2 * np.eye(3))
    assert "SymmetricWoodburyMatrix" in repr(D)
    assert repr(G).startswith(f"<{n}×{n} WoodburyMatrix with p={p}")


# -- the sparse copy that settles symmetry (_validation._transposed_copy) ---------------------
def _symmetric_sparse(n: int = 12, seed: int = 5) -> sparse.csc_array:
    rng = np.random.default_rng(seed)
    m = sparse.random_array((n, n), density=0.3, rng=rng, format="csc")
    return sparse.csc_array(m + m.T + n * sparse.eye_array(n))


@pytest.mark.parametrize("fmt", ["csc", "csr"])
def test_symmetric_sparse_input_is_copied_and_proved_symmetric(fmt):
    """The transposed copy serves as the block: equal to A, and not the caller's arrays."""
    from woodbury_sparse._validation import as_block

    a = _symmetric_sparse().asformat(fmt)
    expected = a.toarray()
    block = as_block(a, "A", square=True)
    assert block.asymmetry() == 0.0
    a.data[:] = 7.0  # the caller writes into their matrix afterwards
    a.indices[:] = 0
    np.testing.assert_array_equal(block.data.toarray(), expected)
    assert not block.data.data.flags.writeable


@pytest.mark.parametrize("fmt", ["csc", "csr"])
def test_nonsymmetric_or_unsorted_sparse_input_is_copied_exactly(fmt):
    from woodbury_sparse._validation import as_block

    a = _symmetric_sparse().tolil()
    a[0, 3] = a[3, 0] + 1.0  # one asymmetric entry
    a = a.asformat(fmt)
    expected = a.toarray()
    block = as_block(a, "A", square=True)
    np.testing.assert_array_equal(block.data.toarray(), expected)
    diff = expected - expected.T
    assert block.asymmetry() == pytest.approx(np.linalg.norm(diff) / np.linalg.norm(expected))
    # a matrix stored with unsorted indices (the entries reversed in place)
    s = _symmetric_sparse().asformat(fmt)
    s = type(s)((s.data[::-1].copy(), s.indices[::-1].copy(), s.indptr.copy()), shape=s.shape)
    assert not s.has_sorted_indices
    np.testing.assert_array_equal(as_block(s, "A").data.toarray(), s.toarray())
