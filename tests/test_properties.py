"""Hypothesis properties over randomly drawn *structures* of Woodbury matrices.

Hypothesis draws the structure (orders, density, conditioning scale, the kind of every
block, the form, a seed); the entries come from a seeded NumPy generator. Draws whose
dense ``W`` (or a block the computation goes through) is worse conditioned than
``MAX_COND`` are rejected with ``assume`` instead of loosening tolerances.

The tolerance of every check is ``C · n · eps · κ`` (plus ``C · η · κ`` for draws with
``saddle`` blocks, ``η`` the backward error the factorisation layer accepts from an
unpivoted ``LDLᵀ``) where ``κ`` is the largest of

* ``cond(W)``, ``cond(A)``, ``cond(B)`` and ``cond(O)`` (``O = B + V A U``): the matrices
  that are factorised or inverted, and
* ``(‖A⁻¹‖ + ‖U‖‖B⁻¹‖‖V‖) · ‖W⁻¹‖`` and ``(‖A‖ + ‖AU‖‖O⁻¹‖‖VA‖) · ‖W‖``: the
  cancellation in the two terms of ``W`` and of ``W⁻¹``, which round-off in the terms is
  amplified by even when ``W`` itself is well conditioned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import assume, given, note
from hypothesis import strategies as st
from scipy import sparse

import woodbury_sparse as ws
from conftest import EPS, dense, rel_err
from woodbury_sparse import testing
from woodbury_sparse._factor._sparse import BACKWARD_ERROR_TOL
from woodbury_sparse._operators import RCOND_WARNING

MAX_COND = 1e8
#: The constant of the tolerance ``C · n · eps · κ``.
C = 10.0

#: ``saddle``: sparse, symmetric, ``[[δ, 1], [1, δ]]`` pairs with small ``δ`` — well
#: conditioned, but an unpivoted ``LDLᵀ`` meets tiny pivots (element growth).
BLOCK_KINDS = ["identity", "diagonal", "dense", "sparse", "saddle"]
FACTOR_KINDS = ["identity", "dense", "sparse"]


@dataclass(frozen=True)
class Structure:
    n: int
    p: int
    symmetric: bool
    definite: bool
    a_kind: str
    b_kind: str
    u_kind: str
    v_kind: str
    density: float
    scale: float
    seed: int


@st.composite
def structures(draw) -> Structure:
    n = draw(st.integers(1, 40))
    p = draw(st.integers(0, n + 5))
    u_kind = draw(st.sampled_from(FACTOR_KINDS))
    v_kind = draw(st.sampled_from(FACTOR_KINDS))
    return Structure(
        n=n,
        p=p,
        symmetric=draw(st.booleans()),
        definite=draw(st.booleans()),
        a_kind=draw(st.sampled_from(BLOCK_KINDS)),
        b_kind=draw(st.sampled_from(BLOCK_KINDS)),
        u_kind=u_kind,
        v_kind=v_kind,
        density=draw(st.floats(0.05, 0.6)),
        scale=draw(st.floats(0.0, 4.0)),  # log10 of the spread of the diagonals/spectra
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def square_block(k, kind, s: Structure, rng):
    """A ``k×k`` block of the given kind; symmetric when ``s.symmetric``."""
    signs = np.ones(k) if s.definite else rng.choice([-1.0, 1.0], size=k)
    spread = 10.0 ** rng.uniform(0.0, s.scale, size=k)
    if kind == "identity":
        return sparse.eye_array(k) if rng.random() < 0.5 else np.eye(k)
    if kind == "diagonal":
        d = signs * spread
        return sparse.diags_array(d) if rng.random() < 0.5 else np.diag(d)
    if kind == "dense":
        q1, _ = np.linalg.qr(rng.standard_normal((k, k)))
        if s.symmetric:
            m = (q1 * (signs * spread)) @ q1.T
            return (m + m.T) / 2
        q2, _ = np.linalg.qr(rng.standard_normal((k, k)))
        return (q1 * spread) @ q2.T
    if kind == "saddle":
        delta = 10.0 ** -rng.uniform(2, 14, size=k)
        m = sparse.diags_array(delta).tolil()
        for i in range(0, k - 1, 2):
            m[i, i + 1] = m[i + 1, i] = rng.choice([-1.0, 1.0])
        if k % 2:
            m[k - 1, k - 1] = 1.0
        return sparse.csc_array(m)
    r = testing.random_sparse(k, k, s.density, rng)
    if s.symmetric:
        r = (r + r.T) / 2
    dominance = np.asarray(abs(r).sum(axis=1)).ravel() + 1.0
    return sparse.csc_array(r + sparse.diags_array(signs * dominance * spread))


def side_block(rows, cols, kind, s: Structure, rng):
    if kind == "identity" and rows == cols:
        return None
    if kind == "sparse":
        return testing.random_sparse(rows, cols, s.density, rng)
    return rng.standard_normal((rows, cols))


@dataclass
class Drawn:
    W: ws.WoodburyMatrix
    dense: np.ndarray
    kappa: float
    #: Backward error the factorisation layer accepts from an unpivoted ``LDLᵀ`` of a
    #: sparse indefinite block (its documented bound), for draws with ``saddle`` blocks.
    growth: float = 0.0

    @property
    def tol(self) -> float:
        return (C * self.W.n * EPS + C * self.growth) * self.kappa


def build(s: Structure) -> Drawn:
    rng = np.random.default_rng(s.seed)
    n, p = s.n, s.p
    A = square_block(n, s.a_kind, s, rng)
    B = square_block(p, s.b_kind, s, rng) if p else np.zeros((0, 0))
    if s.symmetric:
        X = side_block(n, p, s.u_kind, s, rng)
        kwargs = dict(A=A, B=B, X=X, symmetric=True)
        U = np.eye(n) if X is None else dense(X)
        V = U.T
    else:
        Uin = side_block(n, p, s.u_kind, s, rng)
        Vin = side_block(p, n, s.v_kind, s, rng)
        kwargs = dict(A=A, B=B, U=Uin, V=Vin, symmetric=False)
        U = np.eye(n) if Uin is None else dense(Uin)
        V = np.eye(n) if Vin is None else dense(Vin)
    a, b = dense(A), dense(B)
    norm = lambda m: np.linalg.norm(m, 2) if m.size else 0.0  # noqa: E731
    conds = [np.linalg.cond(a)]
    if p:
        conds.append(np.linalg.cond(b))
    assume(max(conds) <= MAX_COND)
    ref = np.linalg.inv(a) + (U @ np.linalg.solve(b, V) if p else 0.0)
    conds.append(np.linalg.cond(ref))
    assume(conds[-1] <= MAX_COND)
    w_inv = np.linalg.inv(ref)
    b_inv_norm = norm(np.linalg.inv(b)) if p else 0.0
    conds.append((norm(np.linalg.inv(a)) + norm(U) * b_inv_norm * norm(V)) * norm(w_inv))
    if p:
        o = b + V @ a @ U
        conds.append(np.linalg.cond(o))
        # The operator warns (IllConditionedWarning) when its estimate of the reciprocal
        # 1-norm condition number of O falls below RCOND_WARNING; an estimate never exceeds
        # cond₁(O) ≤ p·cond₂(O), so draws below this bound cannot warn.
        assume(conds[-1] <= min(MAX_COND, 1 / (p * RCOND_WARNING)))
        o_inv_norm = norm(np.linalg.inv(o))
        conds.append((norm(a) + norm(a @ U) * o_inv_norm * norm(V @ a)) * norm(ref))
    kappa = float(max(conds))
    assume(kappa <= MAX_COND)
    note(f"κ = {kappa:.3g}")
    W = ws.WoodburyMatrix(**{k: v for k, v in kwargs.items() if v is not None})
    expected = ws.SymmetricWoodburyMatrix if s.symmetric else ws.WoodburyMatrix
    assert type(W) is expected
    saddle = s.a_kind == "saddle" or (p > 0 and s.b_kind == "saddle")
    return Drawn(W, ref, kappa, BACKWARD_ERROR_TOL if saddle else 0.0)


@given(structures())
def test_solve_inverts_matvec(s):
    d = build(s)
    rng = np.random.default_rng(s.seed + 1)
    x = rng.standard_normal(s.n)
    X = rng.standard_normal((s.n, 3))
    assert rel_err(d.W.solve(d.W @ x), x) <= d.tol
    assert rel_err(d.W @ d.W.solve(x), x) <= d.tol
    assert rel_err(d.W.solve(d.W @ X), X) <= d.tol
    assert rel_err(d.W.T.solve(d.W.T @ X), X) <= d.tol
    # and each against the dense reference
    assert rel_err(d.W @ X, d.dense @ X) <= d.tol
    assert rel_err(d.W.solve(X), np.linalg.solve(d.dense, X)) <= d.tol


@given(structures())
def test_adjoint_dot_test(s):
    d = build(s)
    rng = np.random.default_rng(s.seed + 2)
    testing.assert_dot_test(d.W, rng, rtol=d.tol)
    testing.assert_dot_test(d.W.inv(), rng, rtol=d.tol)
    assert rel_err(d.W.T.toarray(), d.dense.T) <= d.tol


@given(structures().filter(lambda s: s.symmetric))
def test_symmetric_equals_its_transpose(s):
    d = build(s)
    W = d.W
    assert W.T is W
    assert W.H is W
    full = W.toarray()
    assert rel_err(full, full.T) <= d.tol
    x = np.random.default_rng(s.seed + 3).standard_normal(s.n)
    np.testing.assert_array_equal(W.rmatvec(x), W.matvec(x))
    inv = W.inv().toarray()
    assert rel_err(inv, inv.T) <= d.tol


@given(structures())
def test_slogdet_equals_numpy(s):
    d = build(s)
    sign, logabsdet = d.W.slogdet()
    ref_sign, ref_log = np.linalg.slogdet(d.dense)
    assert sign == ref_sign
    # d log|det W| = tr(W⁻¹ dW): an absolute error of n·eps·κ
    assert abs(logabsdet - ref_log) <= d.tol
    assert d.W.T.slogdet() == (sign, logabsdet) or abs(d.W.T.slogdet()[1] - ref_log) <= d.tol


def test_saddle_block_solves_within_the_accepted_backward_error():
    """The example of ``test_solve_inverts_matvec`` that a fresh ``make test`` failed on.

    ``A = [[δ₀, −1], [−1, δ₁]]`` with ``δ₁ ≈ 2.3e-6`` is perfectly conditioned (κ = 1 +
    2.3e-6), but its ``LDLᵀ`` without off-diagonal pivots, pivoting on ``δ₁`` first, has
    element growth ``1/δ₁``: errors of ``eps/δ₁ ≈ 1e-10``. The factorisation layer keeps
    it when one probe solve, with ``b = cos(1.234 i + 0.5)``, was its stability test (a
    backward error of 0.68 η, η = ``BACKWARD_ERROR_TOL``; for ``b = e₂`` it is 9.8 η, for
    the ``x`` below 155 η). The test is now the element growth ``‖|L||D||Lᵀ|‖∞/‖M‖∞``,
    which bounds the backward error of every right-hand side; a solve keeps the backward
    error the layer accepts, ``η``: ``C · (n·eps + η) · κ`` forward, as in :class:`Drawn`.
    """
    a = np.array([[4.350866293504849e-12, -1.0], [-1.0, 2.3376296455643693e-06]])
    x = np.array([0.3295967945156564, 0.36441107568465997])
    # Symmetric: a general sparse A is factorised with partial pivoting, which is stable.
    W = ws.WoodburyMatrix(sparse.csc_array(a), np.zeros((0, 0)), X=np.zeros((2, 0)))
    kappa = np.linalg.cond(a)
    bound = (C * 2 * EPS + C * BACKWARD_ERROR_TOL) * kappa
    for b in (x, np.array([0.0, 1.0])):
        assert rel_err(W @ b, np.linalg.solve(a, b)) <= bound
