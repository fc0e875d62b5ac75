"""Recycled CHOLMOD factors (scikit-sparse 0.4): a dropped handle's factor refactorised in place.

A refactorisation on an analysis takes a spare factor that a dropped handle of the same
analysis left (``_sksparse._Analysis``) instead of copying the live one. These tests check
that this never changes a number: a live operator is undisturbed bit for bit, a recycled
factor gives the bits a copied one gives, dropped factors are reused (in the plain
reference-counting regime and when the garbage collector frees a cycle), nothing that is
still referenced is recycled, the spares are bounded, and threads do not share a spare.
"""

from __future__ import annotations

import gc
import threading
import weakref
from typing import ClassVar

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse._factor import BACKEND, _sksparse
from woodbury_sparse.testing import ar1_precision
from woodbury_sparse.updates import refactor, update_a

pytestmark = pytest.mark.skipif(
    BACKEND != "cholmod" or _sksparse.API_05,
    reason="factors are recycled under scikit-sparse 0.4 only",
)


def grid(k: int, shift: float) -> sparse.csc_array:
    """A 2-D grid precision (not a band: AMD ordering, then simplicial or supernodal)."""
    one = sparse.diags_array([-np.ones(k - 1), 2 * np.ones(k), -np.ones(k - 1)], offsets=[-1, 0, 1])
    eye = sparse.eye_array(k)
    m = sparse.kron(one, eye) + sparse.kron(eye, one) + shift * sparse.eye_array(k * k)
    return sparse.csc_array(m)


def results(W, x: np.ndarray) -> tuple:
    """Numbers that read every part of the operator's factors, exactly."""
    z = np.random.default_rng(3).standard_normal((W.n, 2))
    return (
        ws.dwnorm(x, covariance=W, log=True),
        W.slogdet(),
        W.solve(x),
        W._parts.A.factor.solve(x),
        W._parts.A.factor.solve_sqrt_t(z),
        W._state.O.factor.solve(x),
    )


def assert_identical(got: tuple, expected: tuple) -> None:
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(g, dtype=float), np.asarray(e, dtype=float))


def handle_of(W):
    return W._parts.A.factor.handle


@pytest.mark.parametrize("n", [50, 3000])
def test_a_live_operator_is_never_disturbed(n):
    x = np.random.default_rng(0).standard_normal(n)
    eye = sparse.eye_array(n, format="csc")
    W0 = ws.SymmetricWoodburyMatrix(ar1_precision(n, 0.3), eye)
    before = results(W0, x)
    W = W0
    kept = []
    for k, rho in enumerate(np.linspace(0.5, 0.95, 30)):
        W = refactor(W, A=ar1_precision(n, rho))
        _ = results(W, x)
        if k == 10:
            kept.append((W, results(W, x)))
    assert handle_of(W).recycled  # the chain did recycle
    assert_identical(results(W0, x), before)
    for Wk, expected in kept:
        assert_identical(results(Wk, x), expected)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda s: ar1_precision(400, s), id="band-simplicial"),
        pytest.param(lambda s: grid(20, s), id="grid-reordered"),
    ],
)
def test_dropped_factors_are_recycled_and_match_a_fresh_operator(make):
    values = np.linspace(0.3, 0.9, 8) if make(0.5).shape[0] == 400 else np.linspace(0.1, 2.0, 8)
    n = make(values[0]).shape[0]
    x = np.random.default_rng(1).standard_normal(n)
    eye = sparse.eye_array(n, format="csc")
    W = ws.SymmetricWoodburyMatrix(make(values[0]), eye)
    _ = W.logdet()
    before = dict(_sksparse.RECYCLE_COUNTS)
    flags = []
    for s in values[1:]:
        W = refactor(W, A=make(s))
        got = results(W, x)
        flags.append((handle_of(W).recycled, W._state.O.factor.handle.recycled))
        fresh = ws.SymmetricWoodburyMatrix(make(s), eye)
        expected = results(fresh, x)
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)
        dense = np.linalg.inv(make(s).toarray()) + np.eye(n)
        np.testing.assert_allclose(W.solve(x), np.linalg.solve(dense, x), rtol=1e-8)
    assert not flags[0][0]  # nothing dropped yet on the first refactorisation
    assert all(a and o for a, o in flags[2:])  # from then on, every factor is recycled
    assert _sksparse.RECYCLE_COUNTS["recycled"] > before["recycled"]


@pytest.mark.parametrize("mode", ["simplicial", "supernodal", "auto", None])
@pytest.mark.parametrize("ldl", [False, True])
def test_a_recycled_factor_has_the_bits_of_a_copied_one(mode, ldl, monkeypatch):
    m0, m1, m2 = (grid(25, s) for s in (0.5, 0.05, 1.5))
    b = np.random.default_rng(2).standard_normal((m0.shape[0], 3))
    if ldl and mode is not None:
        pytest.skip("an LDLᵀ is always simplicial")
    root = _sksparse.CholmodHandle.factorize(m0, ldl=ldl, mode=mode)
    live = root.refactorize(m1)  # the donor, alive throughout
    dropped = root.refactorize(m2)
    dropped_solve = dropped.solve(b)
    del dropped  # its factor becomes a spare
    recycled = live.refactorize(m2)
    assert recycled.recycled
    monkeypatch.setattr(_sksparse, "SPARES_PER_ANALYSIS", 0)
    while root._analysis.take() is not None:
        pass
    copied = live.refactorize(m2)
    assert not copied.recycled
    np.testing.assert_array_equal(recycled.solve(b), copied.solve(b))
    np.testing.assert_array_equal(recycled.solve(b), dropped_solve)
    np.testing.assert_array_equal(recycled.pivots(), copied.pivots())
    if not ldl and recycled.pivot_extremes()[0] > 0:
        np.testing.assert_array_equal(recycled.solve_sqrt_t(b), copied.solve_sqrt_t(b))
    for got, expected in zip(recycled.ldl_parts(), copied.ldl_parts(), strict=True):
        if got is None:
            assert expected is None
        elif sparse.issparse(got):
            assert (got != expected).nnz == 0
        else:
            np.testing.assert_array_equal(got, expected)


def test_spares_are_bounded_and_die_with_the_analysis():
    m = ar1_precision(200, 0.5)
    root = _sksparse.CholmodHandle.factorize(m, ldl=False)
    analysis = root._analysis
    handles = [root.refactorize(ar1_precision(200, r)) for r in np.linspace(0.1, 0.9, 6)]
    del handles
    assert len(analysis._spares) == _sksparse.SPARES_PER_ANALYSIS
    ref = weakref.ref(analysis)  # the one holder of the spares
    del analysis, root
    assert ref() is None  # the spares went with the last handle of the analysis


def test_a_factor_still_referenced_is_not_recycled():
    m = ar1_precision(300, 0.5)
    root = _sksparse.CholmodHandle.factorize(m, ldl=False)
    dropped = root.refactorize(ar1_precision(300, 0.7))
    view = dropped._factor.P()  # a view into the factor: holds it
    d = dropped.solve(np.ones(300))
    del dropped
    assert not root._analysis._spares
    again = root.refactorize(ar1_precision(300, 0.9))
    assert not again.recycled
    assert view.base is not None  # still the factor's own memory, never refactorised
    # ldl_parts and draws hand out copies: a selected inverse keeps no view of the factor.
    kept = root.refactorize(ar1_precision(300, 0.7))
    parts = kept.ldl_parts()
    _ = kept.sqrt_t_matmul(np.ones(300))
    assert all(getattr(p, "base", None) is None or p.base is not kept._factor for p in parts)
    del kept
    assert len(root._analysis._spares) == 1
    np.testing.assert_array_equal(root.refactorize(ar1_precision(300, 0.7)).solve(np.ones(300)), d)


def test_an_update_is_never_recycled():
    n = 200
    W = ws.SymmetricWoodburyMatrix(ar1_precision(n, 0.5), np.eye(n))
    _ = W.logdet()
    c = sparse.csc_array(np.eye(n)[:, :1])
    W2 = update_a(W, c)
    assert W2._parts.A.factor.handle._analysis is None
    A2 = ar1_precision(n, 0.5).toarray() + np.outer(c.toarray(), c.toarray())
    ref = np.linalg.slogdet(np.linalg.inv(A2) + np.eye(n))[1]
    assert np.isclose(W2.logdet(), ref)


def test_a_handle_freed_by_the_garbage_collector():
    m = ar1_precision(300, 0.5)
    root = _sksparse.CholmodHandle.factorize(m, ldl=False)
    h = root.refactorize(ar1_precision(300, 0.7))
    h.cycle = h  # freed only by the collector
    del h
    gc.collect()
    assert len(root._analysis._spares) == 1
    assert root.refactorize(ar1_precision(300, 0.8)).recycled


class _Resurrector:
    saved: ClassVar[list] = []

    def __del__(self):
        _Resurrector.saved.append(self.handle)


def test_a_resurrected_handle_has_no_factor():
    """A handle brought back by another finaliser of its cycle cannot read a spare."""
    m = ar1_precision(300, 0.5)
    root = _sksparse.CholmodHandle.factorize(m, ldl=False)
    h = root.refactorize(ar1_precision(300, 0.7))
    r = _Resurrector()
    r.handle, h.other = h, r  # a cycle: the collector runs both finalisers
    del h, r
    gc.collect()
    assert _Resurrector.saved
    back = _Resurrector.saved.pop()
    if root._analysis._spares:  # its factor was recycled: the handle cannot use it
        with pytest.raises(AttributeError):
            back.solve(np.ones(300))
    else:  # its factor was left with it: still right
        y = back.solve(np.ones(300))
        expected = np.linalg.solve(ar1_precision(300, 0.7).toarray(), np.ones(300))
        np.testing.assert_allclose(y, expected, rtol=1e-10)


def test_indefinite_values_on_a_spare_fall_back_as_a_fresh_factorisation():
    n = 200
    eye = sparse.eye_array(n, format="csc")
    W = ws.SymmetricWoodburyMatrix(ar1_precision(n, 0.5), eye)
    _ = W.logdet()
    for rho in (0.6, 0.7):
        W = refactor(W, A=ar1_precision(n, rho))
        _ = W.logdet()
    bad = ar1_precision(n, 0.8)
    bad = sparse.csc_array(bad - 2.5 * sparse.eye_array(n))  # indefinite, nonsingular
    W2 = refactor(W, A=bad)
    dense = np.linalg.inv(bad.toarray()) + np.eye(n)
    x = np.random.default_rng(4).standard_normal(n)
    np.testing.assert_allclose(W2.solve(x), np.linalg.solve(dense, x), rtol=1e-7)
    W3 = refactor(W2, A=ar1_precision(n, 0.9))
    dense = np.linalg.inv(ar1_precision(n, 0.9).toarray()) + np.eye(n)
    np.testing.assert_allclose(W3.solve(x), np.linalg.solve(dense, x), rtol=1e-8)


def test_threads_sharing_one_analysis():
    n = 2000
    x = np.random.default_rng(5).standard_normal(n)
    eye = sparse.eye_array(n, format="csc")
    W0 = ws.SymmetricWoodburyMatrix(ar1_precision(n, 0.3), eye)
    _ = ws.dwnorm(x, covariance=W0, log=True)
    rhos = np.linspace(0.4, 0.95, 12)
    expected = {
        r: ws.dwnorm(x, covariance=ws.SymmetricWoodburyMatrix(ar1_precision(n, r), eye), log=True)
        for r in rhos
    }
    before = results(W0, x)
    errors: list = []

    def work(seed: int) -> None:
        order = np.random.default_rng(seed).permutation(rhos)
        try:
            for _ in range(3):
                W = W0
                for r in order:
                    W = refactor(W, A=ar1_precision(n, r))
                    got = ws.dwnorm(x, covariance=W, log=True)
                    if got != expected[r]:
                        errors.append((r, got, expected[r]))
                    # and from the shared live operator, dropped at once
                    got = ws.dwnorm(x, covariance=refactor(W0, A=ar1_precision(n, r)), log=True)
                    if got != expected[r]:
                        errors.append((r, got, expected[r]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert_identical(results(W0, x), before)
