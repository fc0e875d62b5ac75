"""CHOLMOD's mode (simplicial or supernodal) chosen from the symbolic statistics.

The choice (:func:`_sksparse.choose_mode`) depends on the pattern only, is kept by every
numeric refactorisation, can be forced (``WOODBURY_SPARSE_CHOLMOD_MODE``, read into
:data:`_sksparse.CHOLMOD_MODE`), and every result is the same to round-off in both modes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse import _factor, testing
from woodbury_sparse._factor import _sksparse
from woodbury_sparse._factor._sparse import CholmodFactor

EPS = np.finfo(float).eps
ROOT = Path(__file__).resolve().parents[1]

needs_cholmod = pytest.mark.skipif(
    _factor.BACKEND != "cholmod", reason="CHOLMOD backend only (scikit-sparse 0.4 or 0.5)"
)
needs_amd = pytest.mark.skipif(
    _sksparse._AMD is None, reason="no AMD library found: the rule falls back to CHOLMOD's"
)


def grid3(k: int) -> sparse.csc_array:
    """The 7-point Laplacian of a k×k×k grid plus 0.6·I (2-D grids are simplicial's)."""
    t = sparse.diags_array([-np.ones(k - 1), np.full(k, 2.2), -np.ones(k - 1)], offsets=[-1, 0, 1])
    eye = sparse.eye_array(k)
    out = sparse.kron(sparse.kron(t, eye), eye) + sparse.kron(sparse.kron(eye, t), eye)
    return sparse.csc_array(out + sparse.kron(sparse.kron(eye, eye), t))


def sorted_csc(m) -> sparse.csc_array:
    out = sparse.csc_array(m, copy=True)
    out.sort_indices()
    return out


# -- the statistic and the rule ------------------------------------------------------------------
@needs_cholmod
@needs_amd
@pytest.mark.parametrize("kind", ["grid", "grid3", "random"])
def test_statistics_are_cholmods_counts(kind):
    """``(Σ cⱼ², Σ cⱼ)`` over L's column counts, as CHOLMOD's own factor has them."""
    rng = np.random.default_rng(3)
    m = {
        "grid": lambda: testing.grid_precision(25, kappa=0.5),
        "grid3": lambda: grid3(9),
        "random": lambda: testing.random_spd(400, rng, density=0.01),
    }[kind]()
    m = sorted_csc(m)
    stats = _sksparse.factor_statistics(m)
    assert stats is not None
    flops, lnz = stats
    handle = _sksparse.CholmodHandle.factorize(m, ldl=False, mode="simplicial")
    lower, _, _ = handle.ldl_parts()
    counts = np.diff(sparse.csc_array(lower).indptr).astype(float)
    # AMD's ordering is CHOLMOD's default one (no METIS below 500 flops per entry).
    assert lnz == counts.sum()
    assert flops == (counts**2).sum()


@needs_cholmod
@needs_amd
def test_rule_picks_by_flops_per_entry():
    """A 2-D grid (≈ 50 flops per entry of L) is simplicial, a 3-D grid (≈ 370) supernodal."""
    grid, cube = sorted_csc(testing.grid_precision(60, kappa=0.5)), sorted_csc(grid3(20))
    for m, expected in ((grid, "simplicial"), (cube, "supernodal")):
        flops, lnz = _sksparse.factor_statistics(m)
        above = flops >= _sksparse.SUPERNODAL_MIN_FLOPS_PER_ENTRY * lnz
        assert above == (expected == "supernodal")
        assert _sksparse.choose_mode(m) == expected


@needs_cholmod
@needs_amd
def test_choice_depends_on_the_pattern_only():
    """Deterministic: the same pattern (any values, int32 or int64 indices) gets one mode."""
    m = sorted_csc(grid3(12))
    scaled = m.copy()
    scaled.data = np.random.default_rng(0).uniform(1, 2, m.nnz)
    wide = sparse.csc_array(
        (m.data, m.indices.astype(np.int64), m.indptr.astype(np.int64)), shape=m.shape
    )
    stats = _sksparse.factor_statistics(m)
    assert _sksparse.factor_statistics(scaled) == stats
    assert _sksparse.factor_statistics(wide) == stats
    assert len({_sksparse.choose_mode(x) for x in (m, scaled, wide, m)}) == 1


@needs_cholmod
def test_without_statistics_cholmod_decides(monkeypatch):
    """No AMD library: CHOLMOD's own ``auto`` rule, and the factor is still right."""
    monkeypatch.setattr(_sksparse, "_AMD", None)
    m = sorted_csc(testing.grid_precision(20, kappa=0.5))
    assert _sksparse.factor_statistics(m) is None
    assert _sksparse.choose_mode(m) == "auto"
    factor = _factor.factorize(m, "sparse", m.shape[0], True, "A")
    b = np.linspace(-1, 1, m.shape[0])
    assert np.linalg.norm(m @ factor.solve(b) - b) <= 100 * m.shape[0] * EPS * np.linalg.norm(b)


@needs_cholmod
@pytest.mark.parametrize(
    ("setting", "expected"),
    [("simplicial", "simplicial"), ("supernodal", "supernodal"), ("cholmod", "auto")],
)
def test_setting_overrides_the_rule(monkeypatch, setting, expected):
    monkeypatch.setattr(_sksparse, "CHOLMOD_MODE", setting)
    m = sorted_csc(grid3(12))
    assert _sksparse.choose_mode(m) == expected
    handle = _sksparse.CholmodHandle.factorize(m, ldl=False)
    assert handle.simplicial == (expected == "simplicial")


@needs_cholmod
def test_forced_mode_reaches_banded_blocks_and_ldlt_stays_simplicial(monkeypatch):
    monkeypatch.setattr(_sksparse, "CHOLMOD_MODE", "supernodal")
    band = sorted_csc(testing.ar1_precision(300, 0.9))
    assert not _sksparse.CholmodHandle.factorize(band, ldl=False).simplicial
    assert _sksparse.CholmodHandle.factorize(band, ldl=True).simplicial


@pytest.mark.parametrize("value", ["Supernodal ", "auto", "fast"])
def test_setting_is_checked_at_import(value):
    env = dict(os.environ, WOODBURY_SPARSE_CHOLMOD_MODE=value)
    env.pop("WOODBURY_SPARSE_BACKEND", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import woodbury_sparse._factor._sksparse as s; print(s.CHOLMOD_MODE)",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if value.strip().lower() == "supernodal":
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "supernodal"
    else:
        assert proc.returncode != 0
        assert (
            "WOODBURY_SPARSE_CHOLMOD_MODE must be one of 'choose', 'cholmod', 'simplicial' or "
            f"'supernodal', got '{value}'" in proc.stderr
        )


# -- once per pattern: refactorisations keep the mode --------------------------------------------
@needs_cholmod
@pytest.mark.parametrize("setting", ["simplicial", "supernodal"])
def test_refactor_keeps_the_mode_of_its_analysis(monkeypatch, setting):
    """The mode is part of the symbolic analysis: a refactor never chooses again."""
    m = sorted_csc(testing.grid_precision(30, kappa=0.5))
    monkeypatch.setattr(_sksparse, "CHOLMOD_MODE", setting)
    factor = CholmodFactor.attempt(m)
    monkeypatch.setattr(_sksparse, "CHOLMOD_MODE", "choose")
    again = factor.refactor(sorted_csc(m + 2.0 * sparse.eye_array(m.shape[0])))
    assert again is not None and again.analysis_reused
    assert again.handle.simplicial == factor.handle.simplicial == (setting == "simplicial")


# -- the same numbers in both modes --------------------------------------------------------------
def _results(problem, b):
    W = problem.build()
    out = {
        "solve": W.solve(b),
        "logdet": np.array(W.slogdet()[1]),
        "matvec": W @ b,
    }
    if "pd" in problem.tags and problem.symmetric:
        out["logpdf"] = np.array(ws.dwnorm(b, covariance=W, log=True))
        out["draw"] = ws.rwnorm(2, None, W, random_state=np.random.default_rng(7))
    return out, W


@needs_cholmod
@pytest.mark.parametrize("name", sorted(testing.catalogue(seed=0, n=300)))
def test_catalogue_agrees_in_both_modes(monkeypatch, name):
    """Every operation of every catalogue problem: the two modes agree to round-off."""
    problem = testing.catalogue(seed=0, n=300)[name]
    dense = problem.dense()
    n = dense.shape[0]
    b = np.cos(np.arange(n))
    results = {}
    for setting in ("simplicial", "supernodal", "choose"):
        monkeypatch.setattr(_sksparse, "CHOLMOD_MODE", setting)
        results[setting], _ = _results(problem, b)
    tol = 10 * n * EPS * np.linalg.cond(dense)
    simplicial = results["simplicial"]
    for other in ("supernodal", "choose"):
        for key, value in simplicial.items():
            if key == "draw" and other == "choose":
                # Another ordering (AMD's, not CHOLMOD's postordered one): another square
                # root R of the same M, so other draws of the same distribution.
                continue
            err = np.linalg.norm(value - results[other][key]) / max(np.linalg.norm(value), 1.0)
            assert err <= tol, (other, key, err, tol)
    assert np.linalg.norm(dense @ simplicial["solve"] - b) <= tol * np.linalg.norm(b)


@needs_cholmod
@pytest.mark.parametrize("mode", ["simplicial", "supernodal"])
@pytest.mark.parametrize("ldl", [False, True])
def test_selected_inverse_in_both_modes(mode, ldl):
    """``ldl_parts`` (the selected inverse's ``L``, ``d``, ``perm``) in either mode."""
    q = sorted_csc(testing.grid_precision(20, kappa=0.3))
    handle = _sksparse.CholmodHandle.factorize(q, ldl=ldl, mode=mode)
    factor = CholmodFactor(handle, q.shape[0])
    s = _factor.factor_selected_inverse(factor, "Q")
    dense_inverse = np.linalg.inv(q.toarray())
    rows, cols = q.nonzero()
    tol = 10 * q.shape[0] * EPS * np.linalg.cond(q.toarray())
    err = np.abs(s.toarray()[rows, cols] - dense_inverse[rows, cols]).max()
    assert err <= tol * np.abs(dense_inverse).max()


# -- the ordering AMD computed for the choice is the one CHOLMOD factorises with -----------------
@needs_cholmod
@needs_amd
@pytest.mark.parametrize("m", [sorted_csc(testing.grid_precision(15, 0.5)), sorted_csc(grid3(7))])
def test_factor_in_amds_ordering(m):
    """``M[q][:, q]`` in natural order: solves, the square root, ``L``, updates, refactors."""
    n = m.shape[0]
    handle = _sksparse.CholmodHandle.factorize(m, ldl=False)
    assert handle.outer is not None
    assert handle.simplicial == (_sksparse.choose_mode(m) == "simplicial")
    full = m.toarray()
    tol = 10 * n * EPS * np.linalg.cond(full)
    b = np.stack([np.cos(np.arange(n)), np.sin(np.arange(n))], axis=1)
    assert np.linalg.norm(full @ handle.solve(b) - b) <= tol * np.linalg.norm(b)
    # M = R Rᵀ with Rᵀ = sqrt_t_matmul(I), and solve_sqrt_t inverts it.
    r_t = handle.sqrt_t_matmul(np.eye(n))
    assert np.linalg.norm(r_t.T @ r_t - full) <= tol * np.linalg.norm(full)
    assert np.linalg.norm(handle.solve_sqrt_t(r_t) - np.eye(n)) <= tol * np.sqrt(n)
    lower, d, perm = handle.ldl_parts()
    lower = lower.toarray()
    product = lower @ (lower.T if d is None else d[:, None] * lower.T)
    assert np.linalg.norm(product - full[np.ix_(perm, perm)]) <= tol * np.linalg.norm(full)
    c = sparse.csc_array(np.eye(n)[:, :2] + np.eye(n)[:, [n - 1, n // 2]])
    updated = handle.updown(c, subtract=False)
    assert np.linalg.norm((full + c @ c.T) @ updated.solve(b) - b) <= tol * np.linalg.norm(b)
    again = handle.refactorize(sorted_csc(2.0 * m))
    assert again.outer is handle.outer
    assert np.linalg.norm(2.0 * full @ again.solve(b) - b) <= tol * np.linalg.norm(b)


@needs_cholmod
@needs_amd
def test_heavy_fill_keeps_cholmods_ordering():
    """Where CHOLMOD's default ordering would try METIS as well (AMD's flops per entry of
    ``L`` ≥ 500 and ``nnz(L) ≥ 5·nnz(tril M)``: a 24³ grid), the library leaves the
    ordering to CHOLMOD and only chooses the mode; a 2-D grid is factorised in AMD's."""
    heavy = sorted_csc(grid3(24))
    flops, lnz = _sksparse.factor_statistics(heavy)
    assert flops >= _sksparse.METIS_TRIAL_FLOPS_PER_ENTRY * lnz
    assert _sksparse._cholmod_tries_metis(heavy, flops, lnz)
    handle = _sksparse.CholmodHandle.factorize(heavy, ldl=False)
    assert handle.outer is None
    assert handle.simplicial == (_sksparse.choose_mode(heavy) == "simplicial")
    b = np.cos(np.arange(heavy.shape[0]))
    x = handle.solve(b)
    assert np.linalg.norm(heavy @ x - b) <= 1e-10 * np.linalg.norm(b)
    light = sorted_csc(testing.grid_precision(30, 0.5))
    assert not _sksparse._cholmod_tries_metis(light, *_sksparse.factor_statistics(light))
    assert _sksparse.CholmodHandle.factorize(light, ldl=False).outer is not None
