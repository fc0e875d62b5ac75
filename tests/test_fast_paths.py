"""The fast paths of first calls on sparse problems, against the plain formulas.

Every shortcut taken to cut the overhead of construction and of the first
factorisations (exact symmetry from a transposition, O(n) diagonal and bandwidth tests,
column sums without SciPy's sparse product, CHOLMOD input without copies, a capacitance
known symmetric by construction, reuse of O's symbolic analysis) must give what the
obvious formula gives, to round-off, on awkward input: unsorted and duplicate indices,
explicit zeros, int64 indices, entries near the overflow and underflow thresholds, and
empty matrices.
"""

from __future__ import annotations

import pickle
import warnings
import weakref
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse
from scipy.sparse import linalg as splinalg

import woodbury_sparse as ws
from woodbury_sparse import _blocks
from woodbury_sparse._blocks import Block, _sparse_diagonal_matrix, sparse_asymmetry
from woodbury_sparse._factor import BACKEND, _sksparse, sparse_one_norm
from woodbury_sparse._factor._sksparse import API_05, _as_cholmod_input, bandwidth
from woodbury_sparse._validation import SYMMETRY_RTOL, _is_diagonal_csc, as_block
from woodbury_sparse.testing import ar1_precision, grid_precision
from woodbury_sparse.updates import refactor, with_blocks

needs_cholmod = pytest.mark.skipif(BACKEND != "cholmod", reason="CHOLMOD backend only")


# -- strategies ------------------------------------------------------------------------
@st.composite
def coo_parts(draw, square: bool = True, max_n: int = 9):
    """``(rows, cols, values, shape)`` of a random sparse matrix, duplicates allowed."""
    n = draw(st.integers(0, max_n))
    m = n if square else draw(st.integers(0, max_n))
    count = draw(st.integers(0, 3 * max(n, m))) if n and m else 0
    rows = np.array(draw(st.lists(st.integers(0, max(n - 1, 0)), min_size=count, max_size=count)))
    cols = np.array(draw(st.lists(st.integers(0, max(m - 1, 0)), min_size=count, max_size=count)))
    value = st.one_of(st.just(0.0), st.floats(-4.0, 4.0, allow_nan=False), st.integers(-3, 3))
    values = np.array(draw(st.lists(value, min_size=count, max_size=count)), dtype=float)
    scale = draw(st.sampled_from([1.0, 1e-300, 1e300, 1e-150, 1e150]))
    with np.errstate(over="ignore"):
        values = np.clip(values * scale, -1.7e308, 1.7e308)
    return rows.astype(np.int64), cols.astype(np.int64), values, (n, m)


def build(parts, *, symmetric: str, index=np.int32, canonical: bool = False):
    """A CSC array from ``coo_parts``, made (``"exact"``), nearly (``"near"``), or not
    (``"none"``) symmetric, with ``index`` index arrays; unsorted with duplicates unless
    ``canonical``."""
    rows, cols, values, shape = parts
    if symmetric != "none" and shape[0]:
        rows, cols = np.concatenate([rows, cols]), np.concatenate([cols, rows])
        values = np.concatenate([values, values])
        if symmetric == "near" and values.size:
            values = values.copy()
            values[0] *= 1.0 + 1e-12
    # Reverse the entries so that CSC conversion from COO keeps duplicates and disorder.
    order = np.arange(values.size)[::-1]
    coo = sparse.coo_array((values[order], (rows[order], cols[order])), shape=shape)
    m = sparse.csc_array(coo)
    m.indices = m.indices.astype(index)
    m.indptr = m.indptr.astype(index)
    if canonical:
        m.sum_duplicates()
    return m


def plain_asymmetry(m) -> float:
    """``‖M − Mᵀ‖_F / ‖M‖_F`` the obvious way (dense, scaled by the largest entry)."""
    d = m.toarray()
    peak = np.abs(d).max(initial=0.0)
    if peak == 0.0:
        return 0.0
    d = d / peak
    return float(np.linalg.norm(d - d.T) / np.linalg.norm(d))


def plain_sparse_asymmetry(m) -> float:
    """The previous implementation: SciPy's sparse subtraction and norms."""
    peak = float(np.abs(m.data).max(initial=0.0))
    if peak == 0.0:
        return 0.0
    s = m / peak
    scale = splinalg.norm(s)
    return float(splinalg.norm(s - s.T) / scale) if scale > 0 else 0.0


# -- sparse asymmetry ------------------------------------------------------------------
@given(
    coo_parts(),
    st.sampled_from(["exact", "near", "none"]),
    st.sampled_from([np.int32, np.int64]),
    st.booleans(),
)
def test_sparse_asymmetry_matches_formula(parts, symmetric, index, canonical):
    m = build(parts, symmetric=symmetric, index=index, canonical=canonical)
    expected = plain_asymmetry(m)
    got = sparse_asymmetry(m)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # The previous implementation went wrong (NaN, or 0) for a subnormal largest entry,
    # where SciPy's division multiplies by 1/peak = inf; compare elsewhere.
    if np.abs(m.data).max(initial=0.0) >= np.finfo(np.float64).tiny:
        assert got == pytest.approx(plain_sparse_asymmetry(m), rel=1e-12, abs=1e-15)
    # Exactly symmetric input stays exactly symmetric when every position sums at most two
    # duplicates (a + b == b + a in floating point); three or more are summed in different
    # orders at (i, j) and (j, i) and may differ by rounding.
    rows, cols, _, _ = parts
    off = rows != cols
    pairs = np.stack([np.minimum(rows, cols)[off], np.maximum(rows, cols)[off]])
    summands = np.unique(pairs, axis=1, return_counts=True)[1] if off.any() else [0]
    if symmetric == "exact" and canonical and max(summands) <= 2:
        assert got == 0.0


@given(coo_parts(), st.sampled_from(["exact", "near", "none"]), st.booleans())
def test_block_asymmetry_after_normalisation(parts, symmetric, use_int64):
    """Through ``as_block`` (copy, canonical form, frozen storage) as the API sees it."""
    m = build(parts, symmetric=symmetric, index=np.int64 if use_int64 else np.int32)
    block = as_block(m, "A")
    if block.kind != "sparse":
        return
    assert block.asymmetry() == pytest.approx(plain_asymmetry(m), rel=1e-12, abs=1e-15)


def test_sparse_asymmetry_edge_cases():
    assert sparse_asymmetry(sparse.csc_array((0, 0))) == 0.0
    assert sparse_asymmetry(sparse.csc_array((5, 5))) == 0.0
    zeros = sparse.csc_array((np.zeros(2), np.array([0, 1]), np.array([0, 1, 2])), shape=(2, 2))
    assert sparse_asymmetry(zeros) == 0.0
    # An explicit zero mirrored by a missing entry is still symmetric.
    explicit = sparse.csc_array(
        (np.array([1.0, 0.0, 1.0]), np.array([0, 1, 1]), np.array([0, 2, 3])), shape=(2, 2)
    )
    assert sparse_asymmetry(explicit) == pytest.approx(plain_asymmetry(explicit), abs=1e-15)
    # Extreme scales: neither overflow nor underflow spoils the ratio.
    for scale in (1e-300, 1e300):
        m = sparse.csc_array(np.array([[1.0, 2.0], [3.0, 1.0]]) * scale)
        assert sparse_asymmetry(m) == pytest.approx(plain_asymmetry(m), rel=1e-12)


def test_asymmetric_sparse_input_still_refused():
    a = ar1_precision(50, 0.5).tolil()
    a[0, 1] += 0.1
    a = sparse.csc_array(a)
    expected = plain_asymmetry(a)
    assert expected > SYMMETRY_RTOL
    with pytest.raises(ValueError, match=r"`A` is not symmetric \(‖M − Mᵀ‖/‖M‖ = "):
        ws.SymmetricWoodburyMatrix(a, sparse.eye_array(50))
    W = ws.WoodburyMatrix(a, sparse.eye_array(50))
    assert type(W) is ws.WoodburyMatrix
    assert W._parts.A.asymmetry() == pytest.approx(expected, rel=1e-12)


# -- diagonal test, bandwidth, one-norm, diagonal matrices ----------------------------------
@given(coo_parts(), st.booleans())
def test_is_diagonal_matches_coo(parts, use_int64):
    m = build(parts, symmetric="none", index=np.int64 if use_int64 else np.int32)
    m.sum_duplicates()  # as as_block hands it over
    coo = m.tocoo()
    assert _is_diagonal_csc(m) == bool(np.all(coo.row == coo.col))


def test_is_diagonal_with_explicit_zeros():
    d = sparse.csc_array((np.array([1.0, 0.0]), np.array([0, 1]), np.array([0, 1, 2])), (2, 2))
    assert _is_diagonal_csc(d)
    off = sparse.csc_array((np.array([1.0, 0.0]), np.array([0, 0]), np.array([0, 1, 2])), (2, 2))
    assert not _is_diagonal_csc(off)
    assert _is_diagonal_csc(sparse.csc_array((0, 0)))
    assert as_block(d, "B").kind == "diagonal"


@given(coo_parts(square=False), st.booleans(), st.sampled_from([1, 2, 3, 1 << 15]))
def test_bandwidth_matches_coo(parts, use_int64, chunk):
    m = build(parts, symmetric="none", index=np.int64 if use_int64 else np.int32)
    m.sort_indices()
    coo = m.tocoo()
    expected = int(np.abs(coo.row.astype(np.int64) - coo.col).max(initial=0))
    with patch.object(_sksparse, "_BANDWIDTH_CHUNK", chunk):  # chunk boundaries too
        assert bandwidth(m) == expected


@given(
    st.lists(st.integers(-2, 2), max_size=12),
    st.lists(st.integers(-2, 2), max_size=12),
    st.sampled_from([1, 2, 5, 1 << 16]),
)
def test_arrays_equal_matches_numpy(a, b, chunk):
    a, b = np.array(a, dtype=float), np.array(b, dtype=float)
    with patch.object(_blocks, "_EQUAL_CHUNK", chunk):
        assert _blocks.arrays_equal(a, b) == np.array_equal(a, b)
        assert _blocks.arrays_equal(a, a.copy())


@given(coo_parts(square=False), st.booleans())
def test_sparse_one_norm_matches_scipy(parts, use_int64):
    m = build(parts, symmetric="none", index=np.int64 if use_int64 else np.int32)
    m.sum_duplicates()
    expected = float(np.max(abs(m).sum(axis=0), initial=0.0))
    assert sparse_one_norm(m) == pytest.approx(expected, rel=1e-14)


@given(st.lists(st.sampled_from([0.0, 1.0, -2.5, 1e-300, 3e300]), max_size=8))
def test_diagonal_matrix_matches_diags_array(values):
    d = np.array(values, dtype=float)
    got = _sparse_diagonal_matrix(d)
    expected = sparse.diags_array(d, format="csc")
    assert got.shape == expected.shape
    assert got.nnz == expected.nnz  # zeros dropped, like diags_array
    assert (got != expected).nnz == 0
    fresh = sparse.csc_array((got.data, got.indices, got.indptr), shape=got.shape)
    assert fresh.has_canonical_format  # the flag set by hand is true


# -- capacitance ---------------------------------------------------------------------------
@pytest.mark.parametrize("b", ["identity", "diagonal", "sparse"])
def test_capacitance_plus_identity_is_exact_sum(b, rng):
    n = 300
    q = grid_precision(15, 0.3, k=20)
    if b == "identity":
        B = sparse.eye_array(n, format="csc")
    elif b == "diagonal":
        B = sparse.diags_array(rng.uniform(0.5, 2.0, n), format="csc")
    else:
        B = ar1_precision(n, 0.4)
    W = ws.SymmetricWoodburyMatrix(q, B)
    o = W._O
    expected = sparse.csc_array(B) + sparse.csc_array(q)
    assert o.symmetric
    assert (o.data != expected).nnz == 0
    assert sparse_asymmetry(o.data) == 0.0
    fresh = sparse.csc_array((o.data.data, o.data.indices, o.data.indptr), shape=o.shape)
    assert fresh.has_canonical_format  # the flag set after the addition is true


def test_capacitance_with_general_x_still_symmetrised(rng):
    """``O = B + Xᵀ A X`` is symmetric only to round-off: it is still symmetrised."""
    n, p = 400, 300
    x = sparse.random_array((n, p), density=0.002, random_state=1, format="csc")
    W = ws.SymmetricWoodburyMatrix(ar1_precision(n, 0.5), ar1_precision(p, 0.3), X=x)
    o = W._O
    assert o.symmetric
    assert o.asymmetry() == 0.0


# -- factorisation layer -------------------------------------------------------------------
@needs_cholmod
def test_cholmod_input_is_a_view_and_left_untouched():
    block = Block.from_matrix(ar1_precision(400, 0.8), symmetric=True, name="A")
    m = block.data
    before = [part.copy() for part in (m.data, m.indices, m.indptr)]
    view = _as_cholmod_input(m)
    # 0.4 only reads a sorted float64 matrix: a view; 0.5 may sort in place: a copy.
    assert np.shares_memory(view.data, m.data) is not API_05
    assert np.shares_memory(view.indices, m.indices) is not API_05
    factor = block.factor
    assert factor.method == "cholmod-llt"
    for part, old in zip((m.data, m.indices, m.indptr), before, strict=True):
        assert not part.flags.writeable
        np.testing.assert_array_equal(part, old)


@needs_cholmod
def test_cholmod_input_copies_unsorted_matrices():
    m = sparse.csc_array(
        (np.array([1.0, 0.5, 0.5, 1.0]), np.array([1, 0, 1, 0]), np.array([0, 2, 4])), (2, 2)
    )
    m.has_sorted_indices = False
    indices = m.indices.copy()
    out = _as_cholmod_input(m)
    assert not np.shares_memory(out.indices, m.indices)
    np.testing.assert_array_equal(m.indices, indices)  # the caller's order is kept
    assert out.has_sorted_indices


@needs_cholmod
def test_pivots_cached_and_read_only():
    W = ws.SymmetricWoodburyMatrix(ar1_precision(400, 0.6), sparse.eye_array(400))
    handle = W._O.factor.handle
    pivots = handle.pivots()
    assert pivots is handle.pivots()
    if pivots is None:  # a scikit-sparse 0.5 LLᵀ factor exposes no D (see pivots())
        assert API_05 and not handle.ldl
        return
    assert not pivots.flags.writeable
    # capacitance_rcond is the cached Hager–Higham estimate (not the pivot ratio)
    assert W.capacitance_rcond() == 1.0 / (W._O.one_norm() * W._O.factor.inverse_one_norm)


def test_rcond_results_unchanged():
    """The estimates that ignore ‖M‖₁ give what they gave when it was computed."""
    W = ws.SymmetricWoodburyMatrix(ar1_precision(400, 0.9), sparse.eye_array(400))
    factor = W._O.factor
    anorm = float(np.max(abs(W._O.data).sum(axis=0)))
    assert W.capacitance_rcond() == factor.rcond(anorm)


# -- refactor reuses the capacitance's analysis --------------------------------------------
@needs_cholmod
@pytest.mark.parametrize("change", ["A", "B", "both"])
def test_refactor_reuses_capacitance_analysis(change, rng):
    n = 300
    x = rng.standard_normal(n)
    a0, a1 = ar1_precision(n, 0.5), ar1_precision(n, 0.9)
    b0 = sparse.diags_array(np.full(n, 1.5), format="csc")
    b1 = sparse.diags_array(np.full(n, 0.7), format="csc")
    W = ws.SymmetricWoodburyMatrix(a0, b0)
    W.solve(x)  # factorises O
    kwargs = {"A": {"A": a1}, "B": {"B": b1}, "both": {"A": a1, "B": b1}}[change]
    W2 = refactor(W, **kwargs)
    fresh = ws.SymmetricWoodburyMatrix(kwargs.get("A", a0), kwargs.get("B", b0))
    y2, y = W2.solve(x), fresh.solve(x)
    assert W2._O.factor.analysis_reused
    assert not fresh._O.factor.analysis_reused
    np.testing.assert_allclose(y2, y, rtol=1e-13, atol=0)
    assert W2.slogdet() == pytest.approx(fresh.slogdet(), rel=1e-13)
    assert not W._O.factor.analysis_reused  # the old operator is untouched
    donor = weakref.ref(W._O.factor)
    del W
    assert donor() is None  # the donor's factor is dropped once used: W2 does not keep it
    pickle.loads(pickle.dumps(W2))


@needs_cholmod
def test_no_capacitance_reuse_without_factor_or_pattern(rng):
    n = 300
    x = rng.standard_normal(n)
    W = ws.SymmetricWoodburyMatrix(ar1_precision(n, 0.5), sparse.eye_array(n))
    lazy = refactor(W, A=ar1_precision(n, 0.8))  # W has not factorised O: nothing to reuse
    lazy.solve(x)
    assert not lazy._O.factor.analysis_reused
    W.solve(x)
    other = with_blocks(W, A=grid_precision(15, 0.2, k=20))  # another pattern of O
    y = other.solve(x)
    assert not other._O.factor.analysis_reused
    expected = ws.SymmetricWoodburyMatrix(grid_precision(15, 0.2, k=20), sparse.eye_array(n))
    np.testing.assert_allclose(y, expected.solve(x), rtol=1e-12)


def _outcome(make):
    """``("ok", x)`` or ``("raised", exception type)`` of building and solving."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ws.IllConditionedWarning)
        try:
            return "ok", make().solve(np.ones(300))
        except ws.FactorizationError as exc:
            return "raised", type(exc)


@needs_cholmod
@pytest.mark.parametrize("delta", [0.0, 1e-17, 1e-14, 1e-8])
def test_reused_capacitance_refuses_what_a_fresh_one_refuses(delta):
    """A refactorised O passes the same singularity test as a fresh factorisation.

    ``O = B + A`` with ``B = (δ − λ_min(A)) I`` is singular (δ = 0) or nearly so.
    """
    n = 300
    a = ar1_precision(n, 0.5)
    lam = float(np.linalg.eigvalsh(a.toarray()).min())
    b = sparse.diags_array(np.full(n, delta - lam), format="csc")
    W = ws.SymmetricWoodburyMatrix(a, 2.0 * sparse.eye_array(n, format="csc"))
    W.solve(np.ones(n))
    fresh = _outcome(lambda: ws.SymmetricWoodburyMatrix(a, b, symmetric=True))
    reused = _outcome(lambda: with_blocks(W, B=b))
    assert fresh[0] == reused[0]
    if fresh[0] == "raised":
        assert fresh[1] is reused[1]
    else:
        np.testing.assert_allclose(reused[1], fresh[1], rtol=1e-6)


def test_block_plus_result_matches_scipy(rng):
    q = Block.from_matrix(ar1_precision(30, 0.4), symmetric=True)
    d = Block("diagonal", (30, 30), _blocks.freeze(rng.uniform(-1.0, 1.0, 30)), True)
    for other in (Block.identity(30), d):
        got = other.plus(q).data
        expected = other.tosparse() + q.data
        assert (got != expected).nnz == 0
        assert got.has_sorted_indices


@pytest.mark.parametrize("fmt", ["csc", "csr", "coo", "dia"])
@pytest.mark.parametrize("index", [np.int32, np.int64])
def test_identity_and_diagonal_input_without_copy(fmt, index):
    """Diagonal storage is recognised before the copy, with the general path's results."""
    n = 7
    for values, kind in ((np.ones(n), "identity"), (np.arange(1.0, n + 1), "diagonal")):
        m = sparse.diags_array(values, format="csc")
        m.indices, m.indptr = m.indices.astype(index), m.indptr.astype(index)
        block = as_block(m.asformat(fmt), "B", square=True)
        assert block.kind == kind
        if kind == "diagonal":
            np.testing.assert_array_equal(block.data, values)
            assert not block.data.flags.writeable
            assert not np.shares_memory(block.data, m.data)
    bad = sparse.diags_array(np.r_[1.0, np.nan, 1.0], format=fmt)
    with pytest.raises(ValueError, match=r"`B` contains NaN or infinite values"):
        as_block(bad, "B", square=True)


@pytest.mark.parametrize("fmt", ["csc", "csr", "dia"])
def test_identity_recognised_chunk_by_chunk(fmt, monkeypatch):
    """The chunked O(n) tests (identity storage, all ones) agree with the whole-array
    formulas at every chunk boundary: a stray entry in the last chunk, a value other than
    1 there, a DIA diagonal shorter than n, integer and boolean values."""
    from woodbury_sparse import _validation

    monkeypatch.setattr(_validation, "_CHUNK", 3)
    n = 11
    assert as_block(sparse.eye_array(n, format=fmt), "B").kind == "identity"
    assert as_block(sparse.eye_array(n, format=fmt, dtype=np.int64), "B").kind == "identity"
    assert as_block(sparse.eye_array(n, format=fmt, dtype=bool), "B").kind == "identity"
    for k in range(n):  # one value other than 1, in each chunk in turn
        values = np.ones(n)
        values[k] = 1.0 + 2.0**-52
        block = as_block(sparse.diags_array(values, format=fmt), "B")
        assert block.kind == "diagonal"
        np.testing.assert_array_equal(block.data, values)
    short = sparse.dia_array((np.ones((1, n - 2)), [0]), shape=(n, n))
    block = as_block(short, "B")
    assert block.kind == "diagonal"
    np.testing.assert_array_equal(block.data, np.r_[np.ones(n - 2), 0.0, 0.0])
    if fmt != "dia":  # one entry per column, the last one off the diagonal
        m = sparse.eye_array(n, format=fmt)
        m.indices = np.r_[np.arange(n - 1), 0].astype(m.indices.dtype)
        assert as_block(m, "B").kind == "sparse"
        np.testing.assert_array_equal(as_block(m, "B").toarray(), m.toarray())


def test_one_entry_per_column_off_diagonal_is_not_diagonal():
    perm = sparse.csc_array(np.eye(4)[[1, 0, 3, 2]])
    assert as_block(perm, "B").kind == "sparse"
    zero_diagonal = sparse.csc_array((np.zeros(3), np.arange(3), np.arange(4)), shape=(3, 3))
    block = as_block(zero_diagonal, "B")
    assert block.kind == "diagonal"
    np.testing.assert_array_equal(block.data, np.zeros(3))


@needs_cholmod
@pytest.mark.parametrize(
    "diagonal",
    [
        [4.0, 3.0, 2.0, 5.0],  # positive definite: settled by the pivots' extremes
        [4.0, -3.0, 2.0, 5.0],  # indefinite: an LDLᵀ, nonsingular
        [1e-300, 1e-300, 2.0, 5.0],  # tiny pivots: positive, log-determinant finite
        [],  # empty
    ],
)
def test_cholmod_factor_flags_and_lazy_slogdet_match_the_pivots(diagonal):
    """Positive definiteness and nonsingularity read off min/max of the pivots, and the
    log-determinant computed on demand, equal the plain formulas on every pivot."""
    from woodbury_sparse._factor._base import slogdet_from_pivots
    from woodbury_sparse._factor._sparse import CholmodFactor

    n = len(diagonal)
    m = sparse.diags_array([np.array(diagonal, dtype=float)], offsets=[0], shape=(n, n))
    if n and min(abs(d) for d in diagonal) >= 1:
        m = m + sparse.diags_array([np.full(n - 1, 1e-3)] * 2, offsets=[-1, 1], shape=(n, n))
    factor = CholmodFactor.attempt(sparse.csc_array(m))
    assert factor is not None
    pivots = factor.handle.pivots()
    if pivots is None:  # 0.5 LLᵀ: positive definite by construction
        assert factor.positive_definite
        return
    assert "_sign_logdet" not in factor.__dict__  # not computed until asked for
    assert factor.positive_definite == bool(np.all(pivots > 0))
    sign, logdet = slogdet_from_pivots(pivots)
    assert factor.nonsingular == (sign != 0 and np.isfinite(logdet))
    assert factor.slogdet == (sign, logdet)
    dense = m.toarray()
    if n:
        np.testing.assert_allclose(factor.slogdet[1], np.linalg.slogdet(dense)[1], rtol=1e-12)
    magnitude = np.abs(pivots)
    expected = float(magnitude.min() / magnitude.max()) if n else 1.0
    assert factor.handle.pivot_ratio() == expected


@needs_cholmod
@pytest.mark.skipif(API_05, reason="scikit-sparse 0.4's simplicial LDLᵀ draw path")
@pytest.mark.parametrize("columns", [None, 3])
def test_draw_in_natural_order_skips_the_identity_permutation(columns, rng, monkeypatch):
    """CHOLMOD in natural order (a band; a grid handed AMD's ordering by the layer) has
    ``P = I``: the draw's ``R⁻ᵀ z`` without ``apply_Pt`` is bit for bit the one with it,
    and ``R⁻ᵀ R⁻¹ = M⁻¹``; CHOLMOD's own ordering keeps ``apply_Pt``; a refactorisation
    keeps the flag."""
    band = sparse.csc_array(ar1_precision(60, 0.8))
    grid = sparse.csc_array(grid_precision(12, kappa=0.5))
    cases = [(band, "choose"), (grid, "choose"), (grid, "cholmod")]
    for m, setting in cases:
        monkeypatch.setattr(_sksparse, "CHOLMOD_MODE", setting)
        handle = _sksparse.CholmodHandle.factorize(m, ldl=False)
        if not handle.simplicial:
            continue
        natural = bool(np.array_equal(handle._factor.P(), np.arange(m.shape[0])))
        assert handle.natural == natural == (setting == "choose")
        assert handle.refactorize(m).natural == natural
        z = rng.standard_normal(m.shape[0] if columns is None else (m.shape[0], columns))
        got = handle.solve_sqrt_t(z)
        d = handle.pivots()
        zz = np.asfortranarray(z)
        scaled = zz * (1.0 / np.sqrt(d if zz.ndim == 1 else d[:, None]))
        y = handle._factor.solve_Lt(scaled, use_LDLt_decomposition=True)
        np.testing.assert_array_equal(got, handle._out_of(handle._factor.apply_Pt(y)))
        root_inv_t = handle.solve_sqrt_t(np.eye(m.shape[0]))
        np.testing.assert_allclose(
            root_inv_t @ root_inv_t.T, np.linalg.inv(m.toarray()), rtol=1e-10, atol=1e-12
        )


def _full_band(n: int, b: int, rng, symmetric: bool = True) -> np.ndarray:
    """A dense matrix with every entry within ``b`` of the diagonal nonzero."""
    dense = np.diag(np.full(n, 10.0))
    for d in range(1, min(b, n - 1) + 1):
        below = rng.uniform(0.5, 1.5, n - d)
        dense += np.diag(below, -d) + np.diag(below if symmetric else below[::-1] + 1.0, d)
    return dense


@pytest.mark.parametrize("fmt", ["csc", "csr"])
@pytest.mark.parametrize("index", [np.int32, np.int64])
def test_full_band_copy_matches_the_transposition(fmt, index, rng, monkeypatch):
    """The full-band path (pattern by formula, symmetry by strided comparisons) accepts
    exactly the symmetric full bands, copies them, and gives as_block the general path's
    block; everything else (an asymmetric entry anywhere, a missing or extra entry, NaN,
    a band too wide for its order) goes to the transposition, as before."""
    from woodbury_sparse import _validation

    monkeypatch.setattr(_validation, "_CHUNK", 8)  # many chunks, every boundary case
    make = sparse.csc_array if fmt == "csc" else sparse.csr_array

    def stored(dense, keep=None):
        rows, cols = np.nonzero(keep if keep is not None else dense)
        m = make((dense[rows, cols], (rows, cols)), shape=dense.shape)
        m.sort_indices()
        m.indices, m.indptr = m.indices.astype(index), m.indptr.astype(index)
        return m

    for n, b in [(1, 0), (5, 0), (6, 1), (7, 1), (30, 1), (31, 2), (40, 3), (12, 3), (10, 3)]:
        dense = _full_band(n, b, rng)
        m = stored(dense)
        got = _validation._band_copy(m)
        if n < 2 * (2 * b + 1):
            assert got is None
        else:
            copy, symmetric = got
            assert symmetric and copy.has_canonical_format
            np.testing.assert_array_equal(copy.toarray(), dense)
            for mine, theirs in ((copy.data, m.data), (copy.indices, m.indices)):
                assert not np.shares_memory(mine, theirs)
        block = as_block(m, "A", square=True)
        np.testing.assert_array_equal(block.toarray(), dense)
        assert block.asymmetry() == 0.0
        # one asymmetric entry, at every position of the band in turn
        for i, j in zip(*np.nonzero(np.triu(dense, 1)), strict=True):
            bad = dense.copy()
            bad[i, j] += 2.0**-40
            assert _validation._band_copy(stored(bad, dense != 0)) is None
            assert as_block(stored(bad, dense != 0), "A").asymmetry() > 0
        if b and n >= 2 * (2 * b + 1):
            keep = dense != 0
            keep[n // 2, n // 2 + b] = keep[n // 2 + b, n // 2] = False  # a hole
            assert _validation._band_copy(stored(dense, keep)) is None
            wider = dense.copy()
            wider[0, b + 1] = wider[b + 1, 0] = 1.0  # an entry outside the band
            assert _validation._band_copy(stored(wider)) is None
            nan = dense.copy()
            nan[n - 1, n - 1] = np.nan
            assert _validation._band_copy(stored(nan, np.isnan(nan) | (nan != 0))) is None
            with pytest.raises(ValueError, match="NaN or infinite"):
                as_block(stored(nan, np.isnan(nan) | (nan != 0)), "A")
    asym = _full_band(30, 2, rng, symmetric=False)
    assert _validation._band_copy(stored(asym)) is None


def test_bandwidth_proven_by_validation_is_remembered_only_for_its_arrays(rng):
    """A full band's bandwidth, proven while validating it, answers bandwidth() for its
    block, the capacitance sharing its pattern and CHOLMOD's view of it; a writable or
    different array of equal content is measured, and the record dies with the arrays."""
    q = ar1_precision(500, 0.7)
    W = ws.SymmetricWoodburyMatrix(q, sparse.eye_array(500))
    a, o = W._state.parts.A.data, W._O.data
    # scikit-sparse 0.4 gets views of the block's arrays; 0.5 always a sorted copy,
    # whose bandwidth is measured (writable arrays are never trusted).
    views = () if _sksparse.API_05 else (_as_cholmod_input(a),)
    for m in (a, o, *views):
        assert _sksparse.known_full_band(m) == 1
        assert bandwidth(m) == 1
    if _sksparse.API_05:
        copied = _as_cholmod_input(a)
        assert _sksparse.known_full_band(copied) is None and bandwidth(copied) == 1
    assert _sksparse.known_full_band(sparse.csc_array(a, copy=True)) is None
    wide = sparse.csc_array(a, copy=True)
    wide.indices[1] = 7  # a writable pattern is never trusted: measured
    assert bandwidth(wide) == 7
    del W, a, o
    import gc

    gc.collect()
    ptr, ind = np.arange(4), np.arange(3)
    ptr.flags.writeable = ind.flags.writeable = False
    _sksparse.remember_full_band(ptr, ind, 0)  # prunes the records of dead arrays
    for p, i, *_ in _sksparse._KNOWN_BANDS.values():
        assert p() is not None and i() is not None


@pytest.mark.parametrize("n, b", [(10, 1), (11, 2), (40, 1), (41, 3), (200, 2)])
def test_full_band_diagonal_positions_and_dominance_bound(n, b, rng, monkeypatch):
    """For a validated full band, the diagonal positions (arithmetic) and Varah's bound
    (strided column sums) equal the general routes' on an unregistered copy, the bound
    stays below the true reciprocal condition number, and NaN makes it 0."""
    from woodbury_sparse._factor import _base

    monkeypatch.setattr(_base, "_BAND_CHUNK", 7)
    for scale in (1.0, 0.3):  # dominant, then not (the bound proves nothing: 0)
        dense = _full_band(n, b, rng)
        dense -= np.diag(np.diag(dense)) * (1.0 - scale)
        block = as_block(sparse.csc_array(dense), "A", square=True)
        assert _sksparse.known_full_band(block.data) == b
        plain = sparse.csc_array(block.data, copy=True)  # not registered: general routes
        assert _sksparse.known_full_band(plain) is None
        np.testing.assert_array_equal(
            _blocks.diagonal_positions(block.data), _blocks.diagonal_positions(plain)
        )
        total = Block.identity(n).plus(block)
        assert _sksparse.known_full_band(total.data) == b  # O = I + A shares the pattern
        for m in (block.data, total.data):
            mine = _base.dominance_rcond_bound(m)
            general = _base.dominance_rcond_bound(sparse.csc_array(m, copy=True))
            np.testing.assert_allclose(mine, general, rtol=1e-13, atol=0)
            d = m.toarray()
            true = 1.0 / (np.abs(d).sum(axis=0).max() * np.abs(np.linalg.inv(d)).sum(axis=0).max())
            assert mine <= true
        if scale == 1.0:
            assert _base.dominance_rcond_bound(block.data) > 0
    for j in (0, n // 2, n - 1):
        values = np.array(block.data.data)
        values[block.data.indptr[j]] = np.nan
        bad = sparse.csc_array((values, block.data.indices, block.data.indptr), shape=(n, n))
        assert _sksparse.known_full_band(bad) == b
        assert _base.dominance_rcond_bound(bad) == 0.0
