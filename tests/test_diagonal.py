"""``W.diagonal()``, ``W.inv().diagonal()`` and the marginal variances, against NumPy.

Tolerance: every route (closed form, selected inverse, blocked solves) is a backward
stable use of the factorisations of ``A``, ``B`` and ``O``, so an entry of either
diagonal errs by a few ``n·eps·κ`` relative to the largest entry, with ``κ`` the largest
condition number among ``W``, the blocks it factorises and the capacitance ``O``; the
dense reference (``numpy.linalg.inv``) makes errors of the same size. ``tol`` of
conftest is ``c·n·eps·κ``; the constant is ``C_DEFAULT = 10`` throughout. Measured on the
catalogue (CHOLMOD 0.4), the largest error is 0.035·``n·eps·κ``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse

import woodbury_sparse as ws
from conftest import C_DEFAULT, EPS, tol
from woodbury_sparse import _core, _factor, ggm, testing
from woodbury_sparse._factor import _selinv

CHOLMOD = _factor.BACKEND == "cholmod"


def _capacitance(W) -> list[np.ndarray]:
    """``O`` as a dense array (for its condition number), or nothing when ``p = 0``."""
    return [W._state.O.toarray()] if W.p else []


def _blocks(W) -> list[np.ndarray]:
    parts = W._state.parts
    return [parts.A.toarray(), *([parts.B.toarray()] if W.p else []), *_capacitance(W)]


def _assert_close(actual, expected, reference, blocks, c: float = C_DEFAULT) -> None:
    """``max|actual − expected| ≤ c·n·eps·κ · max|expected|``."""
    actual = np.asarray(actual)
    assert actual.shape == expected.shape
    bound = tol(reference, c, *blocks) * np.abs(expected).max(initial=0.0)
    err = np.abs(actual - expected).max(initial=0.0)
    assert err <= bound, (err, bound)


def _check(W, W_dense=None) -> None:
    """Both diagonals of ``W`` against the dense references."""
    W_dense = W.toarray() if W_dense is None else W_dense
    blocks = _blocks(W)
    _assert_close(W.diagonal(), np.diag(W_dense), W_dense, blocks)
    inverse = np.linalg.inv(W_dense)
    _assert_close(W.inv().diagonal(), np.diag(inverse), W_dense, blocks)


# -- the catalogue ----------------------------------------------------------------------------
def test_catalogue(problem_case):
    W = problem_case.build()
    _check(W, problem_case.W_dense)


def test_catalogue_transpose(problem_case):
    """``diag Wᵀ = diag W`` (and for the inverses), through the shared factorisations."""
    W = problem_case.build()
    np.testing.assert_array_equal(W.T.diagonal(), W.diagonal())
    np.testing.assert_array_equal(W.T.inv().diagonal(), W.inv().diagonal())


# -- named structures -------------------------------------------------------------------------
def _selection(n: int, m: int, rng) -> sparse.csc_array:
    """An ``n×m`` selection (``n ≤ m``): row ``i`` picks its own one of ``m`` columns."""
    columns = np.sort(rng.choice(m, size=n, replace=False))
    return sparse.csc_array((np.ones(n), (np.arange(n), columns)), shape=(n, m))


def _structures(m: int = 11) -> dict[str, dict]:
    """Problems of order ``n = m²`` (the grid's); above 256, ``O`` stays sparse."""
    rng = np.random.default_rng(13)
    n = m * m
    ar1 = testing.ar1_precision(n, 0.9)
    grid = testing.grid_precision(m, kappa=0.4)
    spd = testing.random_spd(n, rng, density=3 / n)  # stays sparse: ~10 entries a row
    return {
        # X = I, B diagonal: the pairs of A O⁻¹ B are A's own, on O's pattern.
        "ar1_plus_noise": dict(A=ar1, B=4.0 * sparse.eye_array(n)),
        # X = I, B an AR(1): the pairs of A·B are off L(O)'s pattern -> padded pattern.
        "grid_plus_grid_ar1": dict(A=grid, B=testing.ar1_precision(n, 0.7), symmetric=True),
        "ar1_plus_spd": dict(A=ar1, B=spd, symmetric=True),
        # Mauna Loa: noise on the observed weeks of an AR(1) over all weeks.
        "selection": dict(
            A=sparse.eye_array(2 * n // 3) / 0.3, B=ar1, X=_selection(2 * n // 3, n, rng)
        ),
        # sparse X whose rows mix columns of a sparse B: W's own pairs need padding.
        "sparse_x_sparse_b": dict(
            A=grid,
            B=testing.ar1_precision(n, 0.5),
            X=testing.random_sparse(n, n, 2 / n, rng),
        ),
        "dense_x_small_p": dict(A=spd, B=np.eye(3), X=rng.standard_normal((n, 3))),
        "diagonal_only": dict(A=sparse.diags_array(rng.uniform(1, 2, n)), B=np.eye(n)),
        "general_nonsymmetric": dict(
            A=testing.random_sparse(n, n, 0.03, rng, diagonal=5.0),
            B=testing.random_sparse(6, 6, 0.5, rng, diagonal=3.0),
            U=testing.random_sparse(n, 6, 0.2, rng),
            V=testing.random_sparse(6, n, 0.2, rng),
        ),
        "general_sparse_b_symmetric": dict(
            A=ar1,
            B=testing.ar1_precision(50, 0.6),
            U=testing.random_sparse(n, 50, 0.03, rng),
            V=testing.random_sparse(50, n, 0.03, rng),
        ),
        # One side diagonal, the other sparse, non-symmetric, on B's pattern.
        "diagonal_u_sparse_v": dict(
            A=ar1,
            B=grid,
            U=sparse.diags_array(rng.uniform(0.5, 2.0, n)),
            V=sparse.csc_array(sparse.tril(grid) + 0.5 * sparse.eye_array(n)),
        ),
        "sparse_u_diagonal_v": dict(
            A=ar1,
            B=grid,
            U=sparse.csc_array(sparse.triu(grid, 1) + 2.0 * sparse.eye_array(n)),
            V=sparse.diags_array(rng.uniform(0.5, 2.0, n)),
        ),
        "indefinite_ldlt": dict(
            A=testing.random_symmetric_indefinite(n, rng, density=0.03),
            B=testing.random_symmetric_indefinite(n, rng, density=0.03),
            symmetric=True,
        ),
        "p_greater_than_n": dict(
            A=ar1[:40, :40], B=testing.random_spd(60, rng, 0.1), X=rng.standard_normal((40, 60))
        ),
        "several_terms": dict(
            A=ar1,
            B=[testing.ar1_precision(30, 0.3), 2.0 * np.eye(2)],
            X=[testing.random_sparse(n, 30, 0.05, rng), np.ones((n, 2))],
        ),
        "rank_zero": dict(A=grid, B=np.zeros((0, 0)), X=np.zeros((n, 0))),
        "float32": dict(
            A=spd.astype(np.float32),
            B=np.eye(n, dtype=np.float32),
            symmetric=True,
        ),
    }


STRUCTURES = _structures()
LARGER = _structures(17)  # n = 289


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_structures(name):
    _check(ws.WoodburyMatrix(**STRUCTURES[name]))


# -- the routes: selected inverses where they apply, never n solves or an n×n array --------
def _no_blocked_solves(monkeypatch) -> None:
    def refuse(*args):
        raise AssertionError("blocked solves used where a selected inverse applies")

    monkeypatch.setattr(_core, "_blocked_sandwich_diagonal", refuse)


@pytest.mark.parametrize(
    "name",
    [
        "ar1_plus_noise",
        "grid_plus_grid_ar1",
        "ar1_plus_spd",
        "selection",
        "sparse_x_sparse_b",
    ],
)
def test_sparse_problems_use_selected_inverses(name, monkeypatch):
    W = ws.WoodburyMatrix(**LARGER[name])
    W_dense = W.toarray()
    _no_blocked_solves(monkeypatch)
    _check(W, W_dense)


@pytest.mark.parametrize("name", ["diagonal_u_sparse_v", "sparse_u_diagonal_v"])
def test_general_diagonal_side_uses_selected_inverse(name, monkeypatch):
    """The general form: ``diag(U B⁻¹ V)`` with one side diagonal by ``B``'s selected
    inverse (its capacitance is not symmetric, so ``W⁻¹``'s diagonal is solved)."""
    W = ws.WoodburyMatrix(**LARGER[name])
    W_dense = W.toarray()
    with monkeypatch.context() as patched:
        _no_blocked_solves(patched)
        _assert_close(W.diagonal(), np.diag(W_dense), W_dense, _blocks(W))
    _check(W, W_dense)


def test_ar1_plus_noise_large(monkeypatch):
    """n = 20 000: the stationary AR(1) variance ``1/(1 − ρ²)`` plus the noise variance,
    with no blocked solve and a peak of NumPy memory far below one ``n×n`` array."""
    import tracemalloc

    n, rho, noise = 20_000, 0.9, 0.25
    W = ws.WoodburyMatrix(testing.ar1_precision(n, rho), sparse.eye_array(n) / noise)
    _no_blocked_solves(monkeypatch)
    tracemalloc.start()
    try:
        d = W.diagonal()
        inverse = W.inv().diagonal()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1000 * n * 8, peak  # an n×n array would be 400 times this
    variance = 1 / (1 - rho**2)
    kappa = ((1 + rho) / (1 - rho)) ** 2  # κ(A) bound; κ(W) is smaller
    np.testing.assert_allclose(d, variance + noise, rtol=C_DEFAULT * n * EPS * kappa)
    # A few entries of W⁻¹ by solves with unit vectors.
    rows = np.array([0, 1, n // 2, n - 1])
    unit = np.zeros((n, rows.size))
    unit[rows, np.arange(rows.size)] = 1.0
    expected = W.solve(unit)[rows, np.arange(rows.size)]
    np.testing.assert_allclose(inverse[rows], expected, rtol=C_DEFAULT * n * EPS * kappa)


def test_terms_in_several_chunks(monkeypatch):
    """The terms of the selected route gathered a few rows at a time give the same sums."""
    monkeypatch.setattr(_core, "_TERMS_PER_CHUNK", 64)
    for name in ("grid_plus_grid_ar1", "selection", "sparse_x_sparse_b"):
        _check(ws.WoodburyMatrix(**LARGER[name]))


def test_large_p_pairs(monkeypatch):
    """p = 50 000 > 46 340: pair keys ``j·p + k`` need 64 bits. X = I with an AR(1) ``B``:
    the pairs of ``A·B`` lie off ``L(O)`` (pentadiagonal against bidiagonal)."""
    n = 50_000
    A, B = testing.ar1_precision(n, 0.9), testing.ar1_precision(n, 0.5)
    W = ws.WoodburyMatrix(A, B)
    _no_blocked_solves(monkeypatch)
    inverse = W.inv().diagonal()
    rows = np.array([0, 1, 2, n // 3, n - 2, n - 1])
    unit = np.zeros((n, rows.size))
    unit[rows, np.arange(rows.size)] = 1.0
    expected = W.solve(unit)[rows, np.arange(rows.size)]
    kappa = ((1 + 0.9) / (1 - 0.9)) ** 2  # κ(A) bound; O = A + B and W are better
    np.testing.assert_allclose(inverse[rows], expected, rtol=C_DEFAULT * n * EPS * kappa)


def _needed_pairs(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    rows = rng.integers(0, n, size=3 * n)
    cols = np.clip(rows + rng.integers(-5, 6, size=rows.size), 0, n - 1)
    return rows, cols


@pytest.mark.parametrize("backend", ["default", "superlu"])
def test_padded_selected_inverse(backend):
    """The pattern of ``L`` padded with explicit zeros (and their fill) holds the pairs,
    and the recursion on it gives ``Q⁻¹`` there: CHOLMOD's factors and SuperLU's."""
    rng = np.random.default_rng(5)
    # bandwidth 20, wider than the fallback's banded Cholesky takes (its full band would
    # hold every pair): the default route is CHOLMOD's or SuperLU's factor here
    Q = sparse.csc_array(testing.grid_precision(20, kappa=0.5))
    n = Q.shape[0]
    if backend == "superlu":
        factor = _factor._sparse.SuperLUFactor.attempt(Q, symmetric=True)
    else:
        factor = _factor.factorize(Q, "sparse", n, True, "Q")
    rows, cols = _needed_pairs(n, rng)
    pattern = _selinv.SelectedInverse(factor, definite=False)
    assert np.any(pattern.locate(rows, cols) < 0)  # the test needs padding
    S = _selinv.padded_selected_inverse(factor, rows, cols)
    assert np.all(pattern.padded(rows, cols).locate(rows, cols) >= 0)
    reference = np.linalg.inv(Q.toarray())
    stored = sparse.csr_array(S)
    values = np.asarray(stored[rows, cols]).ravel()
    np.testing.assert_allclose(
        values, reference[rows, cols], rtol=0, atol=tol(Q) * np.abs(reference).max()
    )
    assert np.all(sparse.csr_array((np.ones(S.nnz), S.indices, S.indptr))[rows, cols] == 1)
    coo = sparse.coo_array(S)  # every stored entry is right, not only the requested ones
    np.testing.assert_allclose(
        coo.data, reference[coo.row, coo.col], rtol=0, atol=tol(Q) * np.abs(reference).max()
    )


def test_explicit_zeros_keep_values():
    m = sparse.csc_array(testing.ar1_precision(6, 0.5))
    padded = _core._with_explicit_zeros(m, np.array([0, 2, 0]), np.array([2, 0, 0]))
    assert padded.nnz == m.nnz + 2
    np.testing.assert_array_equal(padded.toarray(), m.toarray())


def test_indefinite_selected_inverse():
    """``L D Lᵀ`` of a symmetric indefinite matrix: refused unless ``definite=False``."""
    rng = np.random.default_rng(3)
    M = testing.random_symmetric_indefinite(40, rng, density=0.1)
    factor = _factor.factorize(M, "sparse", 40, True, "M")
    assert not factor.positive_definite
    with pytest.raises(ws.NotPositiveDefiniteError, match="`M` is not positive definite"):
        _selinv.factor_selected_inverse(factor, "M")
    if not _selinv.has_selected_inverse(factor):  # pragma: no cover - SuperLU pivoted off-diagonal
        pytest.skip(f"{factor.method}: no symmetric L D Lᵀ")
    S = _selinv.factor_selected_inverse(factor, "M", definite=False)
    reference = np.linalg.inv(M.toarray())
    coo = sparse.coo_array(S)
    np.testing.assert_allclose(
        coo.data, reference[coo.row, coo.col], rtol=0, atol=tol(M) * np.abs(reference).max()
    )


def test_has_selected_inverse():
    assert not _selinv.has_selected_inverse(_factor.factorize(np.eye(3) * 2, "dense", 3, True, "M"))
    general = testing.random_sparse(30, 30, 0.2, np.random.default_rng(0), diagonal=4.0)
    assert not _selinv.has_selected_inverse(_factor.factorize(general, "sparse", 30, False, "M"))
    spd = testing.ar1_precision(30, 0.5)
    assert _selinv.has_selected_inverse(_factor.factorize(spd, "sparse", 30, True, "M"))


# -- cancellation --------------------------------------------------------------------------
def test_cancelled_entries_are_solved(monkeypatch):
    """``diag(A) − rowsum(…)`` cancels where a row of ``X`` has leverage near 1: those
    entries come from refined solves, and meet the tolerance."""
    rng = np.random.default_rng(11)
    n = 20
    X = rng.standard_normal((n, n - 1))
    W = ws.WoodburyMatrix(1e3 * np.eye(n), np.eye(n - 1), X=X)
    calls = []
    original = _core.State._solved_diagonal
    monkeypatch.setattr(
        _core.State,
        "_solved_diagonal",
        lambda self, rows: calls.append(rows) or original(self, rows),
    )
    _check(W)
    assert calls and calls[0].size > 0


# -- hypothesis: structure -------------------------------------------------------------------
@st.composite
def structures(draw):
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(2, 40))
    a_kind = draw(st.sampled_from(["ar1", "spd", "diagonal", "dense"]))
    x_kind = draw(st.sampled_from(["identity", "selection", "sparse", "dense"]))
    rho = draw(st.floats(0.0, 0.95))
    if a_kind == "ar1":
        A = testing.ar1_precision(n, rho)
    elif a_kind == "spd":
        A = testing.random_spd(n, rng, density=draw(st.floats(0.05, 0.5)))
    elif a_kind == "diagonal":
        A = sparse.diags_array(rng.uniform(0.5, 2.0, n))
    else:
        A = testing.random_spd(n, rng, density=0.5, dense=True)
    if x_kind == "identity":
        p, X = n, None
    elif x_kind == "selection":
        p = n + draw(st.integers(0, 10))
        X = _selection(n, p, rng)
    elif x_kind == "sparse":
        p = draw(st.integers(1, 2 * n))
        X = testing.random_sparse(n, p, draw(st.floats(0.05, 0.5)), rng)
    else:
        p = draw(st.integers(1, n + 3))
        X = rng.standard_normal((n, p))
    b_kind = draw(st.sampled_from(["ar1", "spd", "diagonal"]))
    if b_kind == "ar1":
        B = testing.ar1_precision(p, rho)
    elif b_kind == "spd":
        B = testing.random_spd(p, rng, density=0.2)
    else:
        B = sparse.diags_array(rng.uniform(0.5, 2.0, p))
    kwargs = dict(A=A, B=B, symmetric=True) if X is None else dict(A=A, B=B, X=X)
    return ws.WoodburyMatrix(**kwargs)


@given(structures())
def test_drawn_structures(W):
    _check(W)


# -- results and errors --------------------------------------------------------------------
def test_results_are_new_arrays():
    W = ws.WoodburyMatrix(testing.ar1_precision(10, 0.5), np.eye(10))
    for get in (W.diagonal, W.inv().diagonal):
        first = get()
        assert first.flags.writeable
        first[:] = -1.0
        assert np.all(get() > 0)


def test_inputs_not_modified():
    A = testing.ar1_precision(30, 0.5)
    B = testing.ar1_precision(30, 0.2)
    copies = (A.copy(), B.copy())
    W = ws.WoodburyMatrix(A, B)
    W.diagonal()
    W.inv().diagonal()
    for m, copy in zip((A, B), copies, strict=True):
        np.testing.assert_array_equal(m.toarray(), copy.toarray())


def test_singular_a():
    W = ws.WoodburyMatrix(np.diag([1.0, 0.0]), np.eye(2))
    with pytest.raises(ws.SingularMatrixError, match="`A` is singular to working precision"):
        W.diagonal()


def test_singular_capacitance():
    # O = B + A = 0: W = A⁻¹ + B⁻¹ = I − I is singular.
    W = ws.WoodburyMatrix(np.array([[1.0, 0.5], [0.5, 1.0]]), -np.array([[1.0, 0.5], [0.5, 1.0]]))
    with pytest.raises(ws.SingularMatrixError, match="capacitance O = B \\+ V A U is singular"):
        W.inv().diagonal()


def test_overflow():
    W = ws.WoodburyMatrix(np.diag([1e-308, 1.0]), np.diag([1e-308, 1.0]))
    with pytest.raises(FloatingPointError, match=r"W.diagonal\(\) produced inf or NaN"):
        W.diagonal()


# -- the statistics that use it ------------------------------------------------------------
def test_marginal_variances():
    W = ws.WoodburyMatrix(**STRUCTURES["selection"])
    dist = ws.WoodburyNormal(mean=np.ones(W.n), cov=W)
    expected = np.diag(W.toarray())
    _assert_close(dist.var(), expected, W.toarray(), _blocks(W))
    np.testing.assert_array_equal(dist.std(), np.sqrt(dist.var()))


def test_precision_diagonal_identity_loadings(monkeypatch):
    """A gene network with ``X = I``: the diagonal of ``(Θ⁻¹ + B⁻¹)⁻¹`` by selected
    inverses, without the ``N×N`` factors of ``W⁻¹ = A − L R``."""
    rng = np.random.default_rng(2)
    n = 400  # above 256: O = B + Θ stays sparse
    theta = testing.random_spd(n, rng, density=3 / n)
    B = testing.ar1_precision(n, 0.5)
    P = ggm.updated_precision(theta, sparse.eye_array(n), B)

    def refuse(self):
        raise AssertionError("the dense factors of W⁻¹ were formed")

    monkeypatch.setattr(_core.State, "low_rank_inverse", refuse)
    _no_blocked_solves(monkeypatch)
    got = ggm.precision_diagonal(P)
    reference = np.linalg.inv(np.linalg.inv(theta.toarray()) + np.linalg.inv(B.toarray()))
    W = P.W
    _assert_close(got, np.diag(reference), W.toarray(), _blocks(W))
