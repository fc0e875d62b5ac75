"""CHOLMOD choices: ordering (natural / AMD / METIS / default) × mode (simplicial /
supernodal / auto), on the capacitance ``O = I + Q`` of the AR(1) and grid cases.

Every choice is one route, factorisation and solve timed in the same rounds, as ratios to
the choice our factorisation layer makes. CHOLMOD runs on the BLAS the system provides
(named in the machine table, as threadpoolctl finds it); the harness never switches it. To
compare BLAS implementations, run ``python -m benchmarks.run --only cholmod --out DIR``
once under each (for instance after ``apt-get install libopenblas0-pthread``).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from scipy import sparse
from sksparse.cholmod import cholesky

from woodbury_sparse.testing import ar1_precision, grid_precision

from ._harness import Case, Result, Timings, fmt_ms, fmt_ratio
from .case_gmrf import library_settings
from .report import plot

CONFIGS = [
    ("auto", "default"),
    ("simplicial", "natural"),
    ("simplicial", "amd"),
    ("supernodal", "natural"),
    ("supernodal", "amd"),
    ("supernodal", "metis"),
    ("simplicial", "metis"),
]
ROUTES = ("factorise", "solve")
CAPTION = (
    "Median of the rounds: `sksparse.cholmod.cholesky(O, mode, ordering_method)` and one "
    "solve with the factor. *current* = what the factorisation layer asks for: simplicial "
    "mode and natural ordering for banded matrices (bandwidth ≤ 8), otherwise mode auto "
    "and CHOLMOD's default ordering (AMD, then METIS if AMD's fill is poor). Ratios: this "
    "choice / current, round by round."
)


def setup(param) -> SimpleNamespace:
    label, n = param
    Q = ar1_precision(n, 0.9) if label == "AR(1)" else grid_precision(int(np.sqrt(n)))
    p = SimpleNamespace(cap=sparse.csc_matrix(sparse.eye_array(n) + Q), n=n)
    p.cap.sort_indices()
    p.b = np.random.default_rng(0).standard_normal(n)
    p.current = library_settings(p.cap)
    # natural order of a matrix that is not banded (a band of width √n): hopeless fill
    p.configs = [c for c in CONFIGS if p.current[1] == "natural" or c[1] != "natural"]
    p.factors = {c: cholesky(p.cap, mode=c[0], ordering_method=c[1]) for c in p.configs}
    p.nnz = {  # L() of a supernodal factor converts it: on a copy, and not at n = 10⁶
        c: f.copy().L().nnz if c[0] != "supernodal" or n <= 300_000 else None
        for c, f in p.factors.items()
    }
    return p


def routes(param, p) -> dict:
    out = {}
    for mode, ordering in p.configs:
        out[f"factorise {mode}/{ordering}"] = lambda m=mode, o=ordering: cholesky(
            p.cap, mode=m, ordering_method=o
        )
        out[f"solve {mode}/{ordering}"] = lambda f=p.factors[mode, ordering]: f.solve_A(p.b)
    return out


def tabulate(res: Result, param, p, t: Timings) -> None:
    for mode, ordering in p.configs:
        c, cur = f"{mode}/{ordering}", "/".join(p.current)
        res.add(
            CAPTION,
            {
                "problem": f"{param[0]} n = {p.n:,}",
                "mode / ordering": f"{mode} / {ordering}"
                + (" (current)" if (mode, ordering) == p.current else ""),
                "nnz(L)": f"{p.nnz[mode, ordering]:,}" if p.nnz[mode, ordering] else "–",
                "factorise (ms)": fmt_ms(t.median(f"factorise {c}")),
                "solve (ms)": fmt_ms(t.median(f"solve {c}")),
                "factorise / current": fmt_ratio(t.ratio(f"factorise {c}", f"factorise {cur}")),
                "solve / current": fmt_ratio(t.ratio(f"solve {c}", f"solve {cur}")),
            },
        )


def figure(res: Result, path) -> None:
    panels = []
    for problem, d in res.data.items():
        t, configs = d["median"], [k.split()[1] for k in d["median"] if "factorise" in k]
        ticks = [f"{c.split('/')[0][:5]}\n{c.split('/')[1]}" for c in configs]
        series = [
            (w, ticks, [t[f"{w} {c}"] * 1e3 for c in configs], "o") for w in ("factorise", "solve")
        ]
        panels.append((problem.replace("|", ", n = ") + ": O = I + Q", series, []))
    plot(path, panels, "mode / ordering", "median time (ms)", "linear")


CASE = Case(
    name="cholmod",
    title="CHOLMOD ordering and mode",
    doc=__doc__,
    params=lambda quick: (
        [("AR(1)", 10**4), ("grid", 50**2)] if quick else [("AR(1)", 10**6), ("grid", 500**2)]
    ),
    setup=setup,
    routes=routes,
    timing=lambda param, quick: {"repeats": 3},
    tabulate=tabulate,
    figure=figure,
)
