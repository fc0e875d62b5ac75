"""Selected inverse (Takahashi recursions) against its factorisation and the alternatives.

* Against one numeric factorisation of the same matrix (bare CHOLMOD, our layer's
  settings): ``selected_inverse(Q)`` all in (validation, factorisation, reading ``L``,
  recursion, layout), the Takahashi kernel alone on that factor's ``L`` and ``D``, and the
  layout alone (the recursion's lower triangle as the symmetric CSC result in ``Q``'s
  ordering) — 2-D grid GMRF precision at
  n = 250 000 (500×500) and AR(1) precision at n = 10⁶ (the issue's targets: ≤ 5× and a
  small multiple), and the small problems below.
* The diagonals of the AR(1)+noise covariance ``W = Q⁻¹ + I`` built on it (AR(1) rows):
  ``W.diagonal()`` and ``W.inv().diagonal()`` all in, from a new operator (validation,
  factorisations, recursion), against one factorisation of ``O = Q + I``.
* Small (n ≤ 5000): against the dense inverse ``numpy.linalg.inv``, one solve per unit
  vector with the cached factor (the whole inverse, column by column), and the NumPy
  fallback kernel.

The recursion runs in the C extension ``woodbury_sparse._factor._takahashi`` (built at
install); the NumPy kernel is the fallback used when no C compiler was available. The
selected inverse holds Q⁻¹ on the pattern of L + Lᵀ: the diagonal (marginal variances)
and every neighbour pair.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse._factor import _selinv
from woodbury_sparse.testing import ar1_precision, grid_precision, random_spd

from ._harness import Case, Result, Timings, fmt_ms, fmt_ratio
from .case_gmrf import library_cholesky

SMALL = 5000
FACTOR = (
    "Selected inverse against one numeric factorisation of the same matrix (bare CHOLMOD "
    f"with our layer's settings; kernel: {_selinv.KERNEL}). Medians of the rounds; ratios "
    "round by round."
)
ALTERNATIVES = (
    "Against the obvious alternatives (× = how many times slower the alternative is than "
    "`selected_inverse(Q)`, which includes validation and the factorisation; the unit-vector "
    "solves reuse a cached factor)."
)
DIAGONALS = (
    "Diagonals of the AR(1)+noise covariance W = Q⁻¹ + I, all in from a new operator, against "
    "one numeric factorisation of O = Q + I (bare CHOLMOD). Medians; ratios round by round."
)
MAKE = {
    "grid": lambda n: grid_precision(math.isqrt(n)),
    "AR(1)": lambda n: ar1_precision(n, 0.9),
    "random SPD": lambda n: random_spd(n, np.random.default_rng(0), density=0.001),
}


def setup(param) -> SimpleNamespace:
    kind, n = param
    Q = MAKE[kind](n)
    p = SimpleNamespace(Q=Q, Qc=sparse.csc_matrix(Q), n=n)
    p.Qc.sort_indices()
    p.factor = library_cholesky(p.Qc)
    lower, D = p.factor.copy().L_D()  # L_D() converts a supernodal factor: on a copy
    p.lower, p.d = sparse.csc_array(lower), np.asarray(D.diagonal())
    p.perm = np.asarray(p.factor.P())
    p.recursion = _selinv.takahashi(p.lower, p.d)
    if kind == "AR(1)":
        p.noise = sparse.eye_array(n, format="csc")
        p.Oc = sparse.csc_matrix(Q + p.noise)
        p.Oc.sort_indices()
    return p


def routes(param, p) -> dict:
    out = {
        "factorisation": lambda: library_cholesky(p.Qc),
        "selected_inverse(Q)": lambda: ws.selected_inverse(p.Q),
        "kernel": lambda: _selinv.takahashi(p.lower, p.d),
        "layout": lambda: _selinv._symmetric_csc(*p.recursion, p.perm),
    }
    if param[0] == "AR(1)":
        out["factorisation of O"] = lambda: library_cholesky(p.Oc)
        out["W.diagonal()"] = lambda: ws.WoodburyMatrix(p.Q, p.noise).diagonal()
        out["W.inv().diagonal()"] = lambda: ws.WoodburyMatrix(p.Q, p.noise).inv().diagonal()
    if p.n <= SMALL:
        out["dense inverse"] = lambda: np.linalg.inv(p.Q.toarray())
        out["unit-vector solves"] = lambda: p.factor.solve_A(np.eye(p.n))
        out["NumPy kernel"] = lambda: _selinv.takahashi(p.lower, p.d, kernel="numpy")
    return out


def tabulate(res: Result, param, p, t: Timings) -> None:
    kind, n = param
    m = math.isqrt(n)
    head = {"problem": f"grid {m}×{m}" if kind == "grid" else kind, "n": f"{n:,}"}
    ours = "selected_inverse(Q)"
    res.add(
        FACTOR,
        {
            **head,
            "nnz(L)": f"{p.lower.nnz:,}",
            "factorisation (ms)": fmt_ms(t.median("factorisation")),
            "kernel (ms)": fmt_ms(t.median("kernel")),
            "selected_inverse(Q) (ms)": fmt_ms(t.median(ours)),
            "kernel / factorisation": fmt_ratio(t.ratio("kernel", "factorisation")),
            "layout / factorisation": fmt_ratio(t.ratio("layout", "factorisation")),
            "all-in / factorisation": fmt_ratio(t.ratio(ours, "factorisation")),
        },
    )
    if kind == "AR(1)":
        res.add(
            DIAGONALS,
            {
                **head,
                "factorisation of O (ms)": fmt_ms(t.median("factorisation of O")),
                "W.diagonal() (ms)": fmt_ms(t.median("W.diagonal()")),
                "W.inv().diagonal() (ms)": fmt_ms(t.median("W.inv().diagonal()")),
                "diag W / factorisation": fmt_ratio(t.ratio("W.diagonal()", "factorisation of O")),
                "diag W⁻¹ / factorisation": fmt_ratio(
                    t.ratio("W.inv().diagonal()", "factorisation of O")
                ),
            },
        )
    if n <= SMALL:
        res.add(
            ALTERNATIVES,
            {
                **head,
                "selected_inverse(Q) (ms)": fmt_ms(t.median(ours)),
                "dense inverse (ms)": fmt_ms(t.median("dense inverse")),
                "× dense": fmt_ratio(t.ratio("dense inverse", ours)),
                "solves with I (ms)": fmt_ms(t.median("unit-vector solves")),
                "× solves": fmt_ratio(t.ratio("unit-vector solves", ours)),
                "NumPy kernel only (ms)": fmt_ms(t.median("NumPy kernel")),
            },
        )


CASE = Case(
    name="selinv",
    title="Selected inverse (marginal variances of a GMRF) by the Takahashi recursions",
    doc=__doc__,
    params=lambda quick: (
        [("grid", 20**2), ("AR(1)", 500), ("grid", 100**2), ("AR(1)", 10**4)]
        if quick
        else [
            ("grid", 50**2),
            ("grid", 70**2),
            ("AR(1)", 5000),
            ("random SPD", 3000),
            ("grid", 500**2),
            ("AR(1)", 10**6),
        ]
    ),
    setup=setup,
    routes=routes,
    timing=lambda param, quick: {"repeats": 3},
    tabulate=tabulate,
)
