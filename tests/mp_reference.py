"""Exact (mpmath) references for Woodbury problems whose two terms are scaled apart.

Shared by ``tests/test_cancellation.py``, ``tests/test_accuracy.py`` and
``tools/accuracy.py``. A *scaled problem* is a base problem (blocks of size about 1) with
``A`` multiplied by a ratio ``r``: ``W = A⁻¹/r + U B⁻¹ V``. For ``r ≫ 1`` the classical
``W⁻¹ b = A b − A U O⁻¹ V A b`` subtracts two terms of size ``r`` whose difference can be
of size 1 — the Gaussian-process nugget model ``σ² I + X K Xᵀ`` (``A = I/σ²``) with a
small ``σ²`` is the common case. For ``r ≪ 1`` the first term of ``W`` dominates.

References are computed from the very binary inputs the operator receives (so they carry
no input rounding), at :data:`DIGITS` significant digits, which exceeds the 16 of float64
plus the largest ``log₁₀ κ`` of the catalogue (about 26).

The bounds (see :func:`solve_bound` and :func:`logdet_bound`) are derived, not fitted:

* solve: the README's ``2·n·eps·κ`` with ``κ`` the largest 2-norm condition number of
  ``W``, ``A`` and ``B``. A backward stable solve has a relative forward error of at most
  ``eps·κ(W)`` times a modest function of ``n``; and ``W`` is a function of ``A`` (and
  ``B``) whose relative condition number is up to ``κ(A)`` (``κ(B)``): ``δ(A⁻¹) =
  −A⁻¹ δA A⁻¹``, so a perturbation ``eps‖A‖`` of ``A`` (one rounding of its factorisation,
  or of the product ``A x``) moves ``W`` by up to ``eps·κ(A)·‖A⁻¹‖``. ``O``'s condition is
  not part of it: where cancellation makes it matter, the operator refines.
* log-determinant: ``log|det W| = log|det O| − log|det A| − log|det B|``, each a sum of
  logarithms of pivots. A relative perturbation ``δ`` of a pivot ``d`` changes ``log|d|``
  by ``δ``; backward errors ``δM`` of the factorisations change the result by
  ``|tr(M⁻¹ δM)| ≤ m·eps·κ(M)`` for each factorised ``M`` of order ``m``. For ``A`` and
  ``B`` that is within ``2·n·eps·κ``; for ``O`` it brings in ``κ(O)``, which the operator
  avoids where it matters by factorising ``A W = I + (A U)(B⁻¹ V)`` instead (see
  ``WoodburyMatrix.slogdet``), so the bound uses the same ``κ`` as for a solve. On top,
  summing ``m`` logarithms in floating point errs by at most ``(m − 1)·eps·Σ|log|dᵢ||``
  and each logarithm by ``eps·|log|dᵢ||``, and the pivots of a block ``M`` lie within
  ``[σ_min(M)/g, g·σ_max(M)]`` (``g`` the growth factor, 1 for Cholesky), so
  ``Σ|log|dᵢ|| ≤ m·λ(M)`` with ``λ(M) = max(|log σ_max(M)|, |log σ_min(M)|) + log g``.
  That gives ``logdet_bound = 2·n·eps·κ + eps·Σ_M m_M²·λ(M)`` over ``M ∈ {A, B, O}``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import mpmath as mp
import numpy as np
from scipy import sparse

from woodbury_sparse import testing

EPS = float(np.finfo(np.float64).eps)

#: Significant digits of the references.
DIGITS = 50

#: The scale ratios ``r`` of ``A`` to ``B`` every problem is run at.
RATIOS = (1e-12, 1e-6, 1.0, 1e6, 1e12)

#: Growth allowance ``log g`` in the pivot-size argument of :func:`logdet_bound` (LU with
#: partial pivoting on the small, well-scaled blocks of the catalogue: ``g ≤ 2^(m−1)``,
#: in practice below 10; ``log 10 ≈ 2.3``).
LOG_GROWTH = np.log(10.0)


def _dense(m) -> np.ndarray:
    return m.toarray().astype(np.float64) if sparse.issparse(m) else np.asarray(m, np.float64)


@dataclass(frozen=True)
class ScaledProblem:
    """A base problem; :meth:`kwargs` scales its ``A`` by a ratio.

    Attributes
    ----------
    name : str
    base : dict
        Keyword arguments of :class:`~woodbury_sparse.WoodburyMatrix` at ratio 1.
    pd : bool
        Whether ``W`` is symmetric positive definite at every ratio (log density defined).
    general : bool
        Whether the operator is the general (not the symmetric) form.
    """

    name: str
    base: dict[str, Any] = field(repr=False)
    pd: bool = False
    general: bool = False

    def kwargs(self, ratio: float) -> dict[str, Any]:
        """The constructor's arguments with ``A`` multiplied by ``ratio`` (exactly)."""
        kw = dict(self.base)
        a = kw["A"]
        kw["A"] = a * ratio if ratio != 1.0 else a
        return kw


def _selection(n: int, p: int, rng: np.random.Generator) -> sparse.csc_array:
    """``n×p`` 0/1 matrix: observation ``i`` sees latent state ``cols[i]`` (no repeats)."""
    cols = np.sort(rng.choice(p, size=n, replace=False))
    return sparse.csc_array((np.ones(n), (np.arange(n), cols)), shape=(n, p))


def _aggregation(n: int, p: int) -> sparse.csc_array:
    """``n×p`` averaging matrix: observation ``i`` averages neighbouring latent states."""
    rows = np.repeat(np.arange(n), 2)
    cols = np.minimum((np.arange(2 * n) * p) // (2 * n), p - 1)
    return sparse.csc_array((np.full(2 * n, 0.5), (rows, cols)), shape=(n, p))


def catalogue(n: int = 8, seed: int = 0) -> dict[str, ScaledProblem]:
    """The problems of the cancellation tests (``n`` the order of ``W``)."""
    rng = np.random.default_rng(seed)
    p = 3
    spd = lambda k: testing.random_spd(k, rng, density=0.4)  # noqa: E731
    spd_dense = lambda k: testing.random_spd(k, rng, density=0.4, dense=True)  # noqa: E731
    indef = lambda k: testing.random_symmetric_indefinite(k, rng, density=0.4)  # noqa: E731
    rect = lambda r, c: rng.standard_normal((r, c))  # noqa: E731
    nonsym = lambda k, d: rng.standard_normal((k, k)) + d * np.eye(k)  # noqa: E731
    gen_sparse = lambda r, c: testing.random_sparse(r, c, 0.4, rng)  # noqa: E731
    eye = sparse.eye_array
    ar1 = testing.ar1_precision
    P = ScaledProblem
    problems = [
        # -- symmetric, X = I (p = n) --------------------------------------------------------
        P("identity_blocks", dict(A=np.eye(n), B=np.eye(n)), pd=True),
        P(
            "diagonal_blocks",
            dict(A=sparse.diags_array(rng.uniform(0.5, 2, n)), B=np.diag(rng.uniform(0.5, 2, n))),
            pd=True,
        ),
        P("ar1_plus_noise", dict(A=ar1(n, 0.9), B=eye(n)), pd=True),
        P("noise_plus_ar1", dict(A=eye(n), B=ar1(n, 0.9)), pd=True),
        P("ar1_plus_ar1", dict(A=ar1(n, 0.9), B=ar1(n, 0.5)), pd=True),
        P("dense_spd_identity_x", dict(A=spd_dense(n), B=spd_dense(n), symmetric=True), pd=True),
        P("grid_gmrf_plus_noise", dict(A=testing.grid_precision(3, 0.5), B=2.0 * eye(9)), pd=True),
        P("indefinite_identity_x", dict(A=indef(n), B=indef(n), symmetric=True)),
        # -- symmetric, rectangular X: regression and Gaussian-process nugget models -----------
        P("regression_nugget", dict(A=eye(n), B=np.eye(p), X=rect(n, p)), pd=True),
        P("regression_nugget_prior", dict(A=eye(n), B=spd_dense(p), X=rect(n, p)), pd=True),
        P("gp_nugget_square_x", dict(A=eye(n), B=spd_dense(n), X=rect(n, n)), pd=True),
        P("gp_nugget_p_gt_n", dict(A=eye(n), B=spd_dense(n + 4), X=rect(n, n + 4)), pd=True),
        P(
            "latent_ar1_observed",  # σ² I + S Q⁻¹ Sᵀ, S selects n of 2n latent states
            dict(A=eye(n), B=ar1(2 * n, 0.9), X=_selection(n, 2 * n, rng)),
            pd=True,
        ),
        P(
            "latent_ar1_aggregated",  # each observation averages two of p = n/2 latent states
            dict(A=eye(n), B=ar1(n // 2, 0.8), X=_aggregation(n, n // 2)),
            pd=True,
        ),
        P("ar1_sparse_x", dict(A=ar1(n, 0.9), B=np.eye(p), X=gen_sparse(n, p)), pd=True),
        P("dense_rectangular", dict(A=spd_dense(n), B=spd_dense(p), X=rect(n, p)), pd=True),
        P(
            "wide_diagonal_a",
            dict(A=sparse.diags_array(np.logspace(-3, 3, n)), B=np.eye(p), X=rect(n, p)),
            pd=True,
        ),
        P("indefinite_rectangular", dict(A=indef(n), B=indef(p), X=rect(n, p))),
        P(
            "several_b_symmetric",
            dict(A=spd(n), B=[spd(p), np.eye(2)], X=[rect(n, p), rect(n, 2)]),
            pd=True,
        ),
        P("two_identity_terms", dict(A=spd(n), B=[spd(n), eye(n)], X=[eye(n), eye(n)]), pd=True),
        P("rank_zero", dict(A=spd(n), B=np.zeros((0, 0)), X=np.zeros((n, 0))), pd=True),
        # -- general -------------------------------------------------------------------------
        P(
            "general_dense",
            dict(A=nonsym(n, 5), B=nonsym(p, 4), U=rect(n, p), V=rect(p, n)),
            general=True,
        ),
        P(
            "general_u_identity",
            dict(A=nonsym(n, 5), B=nonsym(n, 5), V=rect(n, n) + 4 * np.eye(n)),
            general=True,
        ),
        P(
            "general_v_identity",
            dict(A=nonsym(n, 5), B=nonsym(n, 5), U=rect(n, n) + 4 * np.eye(n)),
            general=True,
        ),
        P(
            "general_identity_uv",
            dict(A=nonsym(n, 5), B=nonsym(n, 5), symmetric=False),
            general=True,
        ),
        P(
            "general_sparse",
            dict(
                A=testing.random_sparse(n, n, 0.4, rng, diagonal=4.0),
                B=sparse.diags_array(rng.uniform(1, 2, p)),
                U=gen_sparse(n, p),
                V=gen_sparse(p, n),
            ),
            general=True,
        ),
        P(
            "general_p_gt_n",
            dict(A=nonsym(n, 5), B=nonsym(n + 4, 6), U=rect(n, n + 4), V=rect(n + 4, n)),
            general=True,
        ),
        P(
            "general_diagonal_a",
            dict(A=np.diag(rng.uniform(0.5, 2, n)), B=nonsym(p, 4), U=rect(n, p), V=rect(p, n)),
            general=True,
        ),
        P(
            "general_several_b",
            dict(
                A=nonsym(n, 5),
                B=[nonsym(p, 4), nonsym(2, 3)],
                U=[rect(n, p), rect(n, 2)],
                V=[rect(p, n), rect(2, n)],
            ),
            general=True,
        ),
    ]
    return {pr.name: pr for pr in problems}


def refinement_probes(n: int = 20) -> dict[str, dict[str, Any]]:
    """Problems on which iterative refinement is measured (``tests/test_accuracy.py``).

    * ``ill_conditioned_o``: ``W = A⁻¹ + I`` with ``A`` SPD of eigenvalues ``1 … 1e10``
      (dense, rotated): ``cond(W) = 2``, ``cond(O) = cond(I + A) = 5e9``. ``X = I``:
      solved as ``A O⁻¹ b``, refined only when asked (``refine=k``).
    * ``ill_conditioned_o_general``: the same ``W`` as ``A⁻¹ + Q Qᵀ`` with ``Q``
      orthogonal: the general formula, whose terms cancel by about ``1e10``, so
      ``solve`` refines automatically.
    * ``gp_nugget_p_gt_n``: ``σ² I + X K Xᵀ`` with ``σ² = 1e-12`` and ``p = n + 4``:
      ``cond(W) ≈ 40``, ``cond(O) ≈ 1e13``, terms cancelling by ``1e12``.
    """
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * np.logspace(0, 10, n)) @ q.T
    a = (a + a.T) / 2
    q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
    k = testing.random_spd(n + 4, rng, density=0.4, dense=True)
    return {
        "ill_conditioned_o": dict(A=a, B=np.eye(n), symmetric=True),
        "ill_conditioned_o_general": dict(A=a, B=np.eye(n), X=q2),
        "gp_nugget_p_gt_n": dict(
            A=1e12 * sparse.eye_array(n), B=k, X=rng.standard_normal((n, n + 4))
        ),
    }


# -- exact references ---------------------------------------------------------------------
def _mp(m: np.ndarray) -> mp.matrix:
    return mp.matrix(m.tolist()) if m.size else mp.matrix(0, 0)


def terms(kwargs) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """``A`` and the ``(B, U, V)`` terms of constructor arguments (lists recycled)."""
    a = _dense(kwargs["A"])
    n = a.shape[0]
    U, V, X = kwargs.get("U"), kwargs.get("V"), kwargs.get("X")
    if X is not None:
        U = X
        V = [_dense(x).T for x in X] if isinstance(X, list) else _dense(X).T
    lists = [v if isinstance(v, list) else [v] for v in (kwargs["B"], U, V)]
    out = []
    for i in range(max(len(v) for v in lists)):
        b, u, v = (lst[i % len(lst)] for lst in lists)
        u = np.eye(n) if u is None else _dense(u)
        v = np.eye(n) if v is None else _dense(v)
        out.append((_dense(b), u, v))
    return a, out


def _singular_values(m: mp.matrix) -> tuple[float, float]:
    s = mp.svd_r(m, compute_uv=False)
    values = [s[i] for i in range(len(s))]
    return max(values), min(values)


@dataclass
class Reference:
    """Exact quantities of one problem at one ratio (floats rounded from mpmath)."""

    n: int
    p: int
    x: np.ndarray  #: ``W⁻¹ b``
    inverse: np.ndarray  #: ``W⁻¹``
    product: np.ndarray  #: ``W b``
    product_t: np.ndarray  #: ``Wᵀ b``
    sign: float
    logabsdet: float
    quad: float  #: ``bᵀ W⁻¹ b``
    x_t: np.ndarray  #: ``W⁻ᵀ b``
    kappa_w: float  #: ``κ₂(W)``
    kappa_wab: float  #: the largest ``κ₂`` of ``W``, ``A`` and every ``B``
    kappa_o: float  #: ``κ₂(O)`` (1 when ``p = 0``)
    kappa: float  #: the largest ``κ₂`` of ``W``, ``A``, every ``B`` and ``O``
    log_scale: float  #: ``Σ_M m_M²·λ(M)`` over ``A``, ``B``, ``O`` (see the module docstring)
    b: np.ndarray = field(repr=False)
    w: Any = field(default=None, repr=False)  #: ``W`` itself, an mpmath matrix
    norm_w: float = 1.0  #: ``‖W‖₂``

    def backward_error(self, x: np.ndarray) -> float:
        """``‖b − W x‖₂ / (‖W‖₂ ‖x‖₂)`` for the exact ``W`` (the residual in mpmath)."""
        with mp.workdps(DIGITS):
            r = _mp(self.b) - self.w * _mp(np.asarray(x, dtype=np.float64))
            return float(mp.norm(r)) / (self.norm_w * float(np.linalg.norm(x)))

    def solve_bound(self) -> float:
        """``2·n·eps·κ`` with ``κ`` the largest condition number of ``W``, ``A``, ``B``."""
        return 2 * self.n * EPS * self.kappa_wab

    def logdet_bound(self) -> float:
        """``2·n·eps·κ + eps·Σ m²·λ``: absolute error of ``log|det W|``."""
        return 2 * self.n * EPS * self.kappa_wab + EPS * self.log_scale

    @property
    def logpdf(self) -> float:
        """``log N(b; 0, W) = −½(n log 2π + log det W + bᵀ W⁻¹ b)``."""
        return -0.5 * (self.n * np.log(2 * np.pi) + self.logabsdet + self.quad)

    def logpdf_bound(self) -> float:
        """Half the log-determinant's bound plus half the quadratic form's, plus the sums.

        ``|bᵀ δx| ≤ ‖b‖ ‖x‖ · (solve bound)``, and the three terms are added with one
        rounding each (``≤ 4 eps`` times their magnitudes, with a margin).
        """
        quad = np.linalg.norm(self.b) * np.linalg.norm(self.x) * self.solve_bound()
        terms = self.n * np.log(2 * np.pi) + abs(self.logabsdet) + abs(self.quad)
        return 0.5 * (self.logdet_bound() + quad) + 4 * EPS * terms


def reference(kwargs, seed: int = 0) -> Reference:
    """The exact :class:`Reference` of the operator built from ``kwargs``."""
    a, ts = terms(kwargs)
    n = a.shape[0]
    b = np.random.default_rng(seed).standard_normal(n)
    with mp.workdps(DIGITS):
        am = _mp(a)
        w = mp.inverse(am)
        blocks = [am]
        us, vs, bs = [], [], []
        for bb, u, v in ts:
            if not bb.size:
                continue
            bm = _mp(bb)
            w += _mp(u) * mp.inverse(bm) * _mp(v)
            blocks.append(bm)
            us.append(u)
            vs.append(v)
            bs.append(bb)
        p = sum(bb.shape[0] for bb in bs)
        if p:
            big_u, big_v = np.hstack(us), np.vstack(vs)
            big_b = np.zeros((p, p))
            k = 0
            for bb in bs:
                big_b[k : k + bb.shape[0], k : k + bb.shape[0]] = bb
                k += bb.shape[0]
            blocks.append(_mp(big_b) + _mp(big_v) * am * _mp(big_u))  # O, exactly
        winv = mp.inverse(w)
        bm = _mp(b)
        x = winv * bm
        x_t = winv.T * bm
        det = mp.det(w)
        kappas, log_scale, norm_w = [], 0.0, 1.0
        for i, m in enumerate([w, *blocks]):
            hi, lo = _singular_values(m)
            kappas.append(float(hi / lo))
            if i == 0:
                norm_w = float(hi)
            if i:
                lam = max(abs(mp.log(hi)), abs(mp.log(lo))) + LOG_GROWTH
                log_scale += float(m.rows**2 * lam)
        return Reference(
            n=n,
            p=p,
            x=np.array([float(v) for v in x]),
            x_t=np.array([float(v) for v in x_t]),
            inverse=np.array(winv.tolist(), dtype=float),
            product=np.array([float(v) for v in w * bm]),
            product_t=np.array([float(v) for v in w.T * bm]),
            sign=float(mp.sign(det)),
            logabsdet=float(mp.log(abs(det))),
            quad=float((bm.T * x)[0]),
            kappa_w=kappas[0],
            kappa_wab=max(kappas[: 2 + len(bs)]),
            kappa_o=kappas[-1] if p else 1.0,
            kappa=max(kappas),
            log_scale=log_scale,
            b=b,
            w=w,
            norm_w=norm_w,
        )


@functools.cache
def cached_reference(name: str, ratio: float, n: int = 8, seed: int = 0) -> Reference:
    """:func:`reference` of a problem of :func:`catalogue` (computed once per process)."""
    return reference(catalogue(n, seed)[name].kwargs(ratio), seed)
