"""Selected inverse (Takahashi recursions) against its factorisation and the alternatives.

usage: python -m benchmarks.case_selinv [--quick]

Also a harness case (``NAME``, ``run``) for ``benchmarks.run``. Reported as ratios:

* large: the selected inverse of a 2-D grid GMRF precision at n = 250 000 (500×500,
  default ordering) and of an AR(1) precision at n = 10⁶, each against one numeric
  factorisation of the same matrix (the issue's targets: ≤ 5× and a small multiple);
* small (n = 2000–5000): ``selected_inverse(Q)`` (factorisation included) against the
  dense inverse ``numpy.linalg.inv`` and against one solve per unit vector with the same
  cached factor (the whole inverse, column by column), and the NumPy fallback kernel.
"""

from __future__ import annotations

import sys

import numpy as np

import woodbury_sparse as ws
from woodbury_sparse import _factor
from woodbury_sparse._factor import _selinv
from woodbury_sparse.testing import ar1_precision, grid_precision, random_spd

from ._harness import CaseResult, fmt_ms, fmt_ratio, progress
from ._harness import legacy_interleaved as interleaved

NAME = "selinv"
TITLE = "Selected inverse (marginal variances of a GMRF) by the Takahashi recursions"


def _factorize(Q):
    return _factor.factorize(Q, "sparse", Q.shape[0], True, "Q")


def _large(res: CaseResult, quick: bool) -> None:
    problems = (
        [("grid 100×100", grid_precision(100)), ("AR(1)", ar1_precision(10**4, 0.9))]
        if quick
        else [("grid 500×500", grid_precision(500)), ("AR(1)", ar1_precision(10**6, 0.9))]
    )
    rows = []
    for label, Q in problems:
        n = Q.shape[0]
        progress(f"selinv: {label}, n = {n}")
        factor = _factorize(Q)
        lower, d, _ = factor.ldl_parts()
        parts = {
            "factorisation": lambda Q=Q: _factorize(Q),
            "selected inverse (cached factor)": lambda f=factor: _factor.factor_selected_inverse(f),
            "of which Takahashi kernel": lambda lo=lower, d=d: _selinv.takahashi(lo, d),
            "selected_inverse(Q), all in": lambda Q=Q: ws.selected_inverse(Q),
        }
        times = interleaved(parts, 1 if quick else 3)
        base = times["factorisation"]
        rows.append(
            {
                "problem": label,
                "n": f"{n:,}",
                "nnz(L)": f"{lower.nnz:,}",
                "factor": factor.method,
                "factorisation": fmt_ms(base),
                "selinv (cached factor)": fmt_ms(times["selected inverse (cached factor)"]),
                "kernel": fmt_ms(times["of which Takahashi kernel"]),
                "selected_inverse(Q)": fmt_ms(times["selected_inverse(Q), all in"]),
                "selinv / factorisation": fmt_ratio(
                    times["selected inverse (cached factor)"] / base
                ),
                "all-in / factorisation": fmt_ratio(times["selected_inverse(Q), all in"] / base),
            }
        )
        res.data.setdefault("large", {})[label] = {"n": n, **times}
        del factor, lower
    res.table(
        "Selected inverse against one numeric factorisation of the same matrix "
        f"(kernel: {_selinv.KERNEL}; default CHOLMOD ordering; median of the repeats)",
        list(rows[0]),
        rows,
    )


def _small(res: CaseResult, quick: bool) -> None:
    rng = np.random.default_rng(0)
    problems = (
        [("grid 20×20", grid_precision(20)), ("AR(1)", ar1_precision(500, 0.9))]
        if quick
        else [
            ("grid 50×50", grid_precision(50)),
            ("grid 70×70", grid_precision(70)),
            ("AR(1)", ar1_precision(5000, 0.9)),
            ("random SPD", random_spd(3000, rng, density=0.001)),
        ]
    )
    rows = []
    for label, Q in problems:
        n = Q.shape[0]
        progress(f"selinv: {label}, n = {n} (alternatives)")
        factor = _factorize(Q)
        eye = np.eye(n)
        lower, d, _ = factor.ldl_parts()
        funcs = {
            "selected_inverse(Q)": lambda Q=Q: ws.selected_inverse(Q),
            "dense inverse": lambda Q=Q: np.linalg.inv(Q.toarray()),
            "solve per unit vector": lambda f=factor, e=eye: f.solve(e),
            "NumPy kernel": lambda lo=lower, d=d: _selinv.takahashi(lo, d, kernel="numpy"),
        }
        times = interleaved(funcs, 1 if quick else 3)
        ours = times["selected_inverse(Q)"]
        rows.append(
            {
                "problem": label,
                "n": f"{n:,}",
                "selected_inverse(Q)": fmt_ms(ours),
                "dense inverse": fmt_ms(times["dense inverse"]),
                "× dense": fmt_ratio(times["dense inverse"] / ours),
                "solves with I": fmt_ms(times["solve per unit vector"]),
                "× solves": fmt_ratio(times["solve per unit vector"] / ours),
                "NumPy kernel only": fmt_ms(times["NumPy kernel"]),
            }
        )
        res.data.setdefault("small", {})[label] = {"n": n, **times}
    res.table(
        "Against the obvious alternatives (× = how many times slower the alternative is; "
        "ours includes validation and the factorisation, the unit-vector solves reuse a "
        "cached factor)",
        list(rows[0]),
        rows,
    )


def run(quick: bool = False) -> CaseResult:
    res = CaseResult(NAME, TITLE)
    _large(res, quick)
    _small(res, quick)
    res.notes.append(
        "The Takahashi recursion runs in the C extension woodbury_sparse._factor._takahashi "
        "(built at install); 'NumPy kernel' is the fallback used when no C compiler was "
        "available. The selected inverse holds Q⁻¹ on the pattern of L + Lᵀ: the diagonal "
        "(marginal variances) and every neighbour pair."
    )
    return res


def main(argv: list[str]) -> None:
    res = run(quick="--quick" in argv)
    for table in res.tables:
        print(f"\n{table['caption']}\n")
        cols = table["columns"]
        widths = [max(len(c), *(len(str(r[c])) for r in table["rows"])) for c in cols]
        print("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
        for r in table["rows"]:
            print("  ".join(str(r[c]).rjust(w) for c, w in zip(cols, widths, strict=True)))
    for note in res.notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main(sys.argv[1:])
