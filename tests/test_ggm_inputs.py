"""Inputs of the gene-network functions: every precision form validated, never modified.

A precision is real, finite, square and symmetric; duplicate sparse entries are summed
(on a copy); a general Woodbury operator is refused; every error names the argument the
caller passed (``precision``, ``before``/``after``, ``theta``).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.linalg import aslinearoperator

import woodbury_sparse as ws
from conftest import tol
from woodbury_sparse import ggm
from woodbury_sparse.testing import ar1_precision

#: The functions that take one precision, called with it.
ONE_PRECISION = {
    "partial_correlations": ggm.partial_correlations,
    "precision_diagonal": ggm.precision_diagonal,
    "precision_entries": lambda P: ggm.precision_entries(P, [[0, 1], [2, 2]]),
    "partial_correlation_entries": lambda P: ggm.partial_correlation_entries(P, [[0, 1]]),
    "strong_edges": lambda P: ggm.strong_edges(P, 0.1),
    "network_summary": lambda P: ggm.network_summary(P, 0.1),
}


def theta() -> np.ndarray:
    return ar1_precision(4, 0.6).toarray()


def with_duplicates(m: np.ndarray) -> sparse.csr_array:
    """``m`` as a CSR array whose every stored entry is split into two halves."""
    coo = sparse.coo_array(m)
    rows = np.concatenate([coo.row, coo.row])
    cols = np.concatenate([coo.col, coo.col])
    data = np.concatenate([coo.data, coo.data]) / 2
    order = np.lexsort((cols, rows))
    indptr = np.searchsorted(rows[order], np.arange(m.shape[0] + 1))
    out = sparse.csr_array((data[order], cols[order], indptr), shape=m.shape)
    assert not out.has_canonical_format and out.nnz == 2 * coo.nnz
    return out


def _storage(m) -> tuple[np.ndarray, ...]:
    if m.format == "coo":
        return (m.data, *m.coords)
    return (m.data, m.indices, m.indptr)


# -- duplicate sparse entries ----------------------------------------------------------------
@pytest.mark.parametrize("form", ["csr", "coo", "csc"])
def test_duplicate_entries_are_summed_on_a_copy(form):
    dense = theta()
    stored = with_duplicates(dense)
    if form == "coo":
        stored = sparse.coo_array(
            (stored.data, (np.repeat(np.arange(4), np.diff(stored.indptr)), stored.indices)),
            shape=stored.shape,
        )
    elif form == "csc":  # the CSR arrays of Mᵀ = M, read as CSC
        stored = sparse.csc_array((stored.data, stored.indices, stored.indptr), shape=stored.shape)
    before = [np.array(a) for a in _storage(stored)]
    rho = ggm.partial_correlations(stored)
    np.testing.assert_array_equal(rho.diagonal(), np.ones(4))  # was 2: duplicates not summed
    # against the same precision stored without duplicates (exactly: the halves add back)
    np.testing.assert_array_equal(rho.toarray(), ggm.partial_correlations(dense))
    for name, call in ONE_PRECISION.items():
        got, ref = call(stored), call(dense)
        if name == "partial_correlations":
            got = got.toarray()
        np.testing.assert_array_equal(getattr(got, "rho", got), getattr(ref, "rho", ref), name)
    # the caller's matrix is untouched
    for now, then in zip(_storage(stored), before, strict=True):
        np.testing.assert_array_equal(now, then)
    if form == "csr":
        assert not stored.has_canonical_format


# -- complex, NaN, infinite ----------------------------------------------------------------
def _forms(m: np.ndarray) -> dict:
    return {"dense": m, "sparse": sparse.csr_array(m), "operator": aslinearoperator(m)}


@pytest.mark.parametrize("form", ["dense", "sparse", "operator"])
@pytest.mark.parametrize("function", sorted(ONE_PRECISION))
def test_complex_precision_is_refused(function, form):
    m = _forms(theta() + 1j * np.diag([0.0, 1.0, 0.0, 0.0]))[form]
    with pytest.raises(TypeError, match=r"`precision` is complex \(complex128\)"):
        ONE_PRECISION[function](m)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("form", ["dense", "sparse", "operator"])
@pytest.mark.parametrize("function", sorted(ONE_PRECISION))
def test_non_finite_precision_is_refused(function, form, bad):
    m = theta()
    m[0, 1] = m[1, 0] = bad  # off the diagonal: a NaN there read as "no edge"
    with pytest.raises(ValueError, match="`precision` contains NaN or infinite values"):
        ONE_PRECISION[function](_forms(m)[form])


def test_the_second_precision_is_named():
    good, bad = theta(), theta()
    bad[2, 3] = bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="`after` contains NaN"):
        ggm.top_changed_edges(good, bad)
    with pytest.raises(TypeError, match="`before` is complex"):
        ggm.top_changed_edges(good * (1 + 0j), good)


# -- symmetry ------------------------------------------------------------------------------
def general_operator() -> ws.WoodburyMatrix:
    U = np.array([[1.0], [0.0], [0.0], [0.0]])
    V = np.array([[0.0, 1.0, 0.0, 0.0]])
    W = ws.WoodburyMatrix(2.0 * np.eye(4), np.eye(1), U=U, V=V)
    assert type(W) is ws.WoodburyMatrix
    return W


@pytest.mark.parametrize("which", ["W", "W.inv()"])
@pytest.mark.parametrize("function", sorted(ONE_PRECISION))
def test_general_woodbury_operator_is_refused(function, which):
    W = general_operator()
    P = W if which == "W" else W.inv()
    with pytest.raises(ValueError, match=r"`precision` is a general \(non-symmetric\) Woodbury"):
        ONE_PRECISION[function](P)


def test_general_woodbury_inverse_refused_by_add_pathways():
    with pytest.raises(ValueError, match=r"`precision` is a general \(non-symmetric\) Woodbury"):
        ggm.add_pathways(general_operator().inv(), np.ones((4, 1)))


@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_non_symmetric_matrix_is_refused(form):
    m = theta()
    m[0, 1] = 0.3  # m[1, 0] stays −0.6: only the upper triangle would have been read
    with pytest.raises(ValueError, match=r"`precision` is not symmetric \(‖M − Mᵀ‖/‖M‖ = "):
        ggm.strong_edges(_forms(m)[form], 0.1)


def test_non_symmetric_operator_is_refused():
    m = theta()
    m[0, 1] = 0.3
    with pytest.raises(ValueError, match=r"`precision` is not symmetric: for two random"):
        ggm.strong_edges(aslinearoperator(m), 0.1)


def test_round_off_asymmetry_and_symmetric_operators_accepted():
    rng = np.random.default_rng(4)
    g = rng.standard_normal((30, 30))
    computed = np.linalg.inv(g @ g.T + 30 * np.eye(30))  # symmetric up to round-off only
    assert not np.array_equal(computed, computed.T)
    ref = ggm.partial_correlations(0.5 * (computed + computed.T))
    for P in (computed, aslinearoperator(computed)):
        # entries differ from the symmetrised ones by the round-off asymmetry only
        np.testing.assert_allclose(ggm.partial_correlations(P), ref, rtol=0, atol=tol(computed))
    # a SymmetricWoodburyMatrix as a precision: D + X Xᵀ, read row by row
    d, X = rng.uniform(1.0, 2.0, 30), rng.standard_normal((30, 2))
    W = ws.WoodburyMatrix(np.diag(1 / d), np.eye(2), X=X)
    dense = np.diag(d) + X @ X.T
    np.testing.assert_allclose(
        ggm.partial_correlations(W), ggm.partial_correlations(dense), rtol=0, atol=tol(dense)
    )


# -- `theta`, not `A` -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "X", "error", "match"),
    [
        (np.ones((3, 4)), np.ones((3, 1)), ValueError, r"`theta` must be square, got shape"),
        (np.eye(3) * 1j, np.ones((3, 1)), TypeError, r"`theta` is complex"),
        (np.diag([1.0, np.nan, 1.0]), np.ones((3, 1)), ValueError, "`theta` contains NaN"),
        (np.triu(np.ones((3, 3))), np.ones((3, 1)), ValueError, "`theta` is not symmetric"),
        (aslinearoperator(np.eye(3)), np.ones((3, 1)), TypeError, "`theta` must be an explicit"),
        (np.ones(3), np.ones((3, 1)), ValueError, "`theta` must be 2-D"),
        (np.eye(4), np.ones((3, 1)), ValueError, r"`X` has 3 rows but `theta` is 4×4"),
    ],
    ids=["not-square", "complex", "nan", "not-symmetric", "operator", "1-d", "x-rows"],
)
def test_updated_precision_names_theta(value, X, error, match):
    for call in (ggm.updated_precision, ggm.updated_precision_dense):
        with pytest.raises(error, match=match) as info:
            call(value, X)
        assert "`A`" not in str(info.value)


def test_add_pathways_names_precision():
    P = ggm.updated_precision(np.eye(3), np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"`X` has 4 rows but `precision` is 3×3") as info:
        ggm.add_pathways(P, np.ones((4, 1)))
    assert "`A`" not in str(info.value)
