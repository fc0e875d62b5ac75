"""GMRF plus noise, ``W = Q⁻¹ + I`` (``A = Q``, ``B = I``, ``X = I``): cases ``ar1``, ``grid``.

The capacitance is ``O = I + Q``. Each operation is timed on a fresh operator (*first*:
construction and factorisations included) and on a warm one (*repeated*), against its
*floor*: the bare scikit-sparse calls on the same matrices, with the CHOLMOD settings of
our factorisation layer, that the operation cannot avoid.
"""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
from scipy import sparse
from sksparse.cholmod import analyze, cholesky

import woodbury_sparse as ws
from woodbury_sparse._factor._sksparse import NATURAL_ORDER_BANDWIDTH, bandwidth, choose_mode
from woodbury_sparse.testing import ar1_precision, grid_precision

from ._harness import Case, Result, Timings, fmt_mib, fmt_ms, fmt_ratio
from .report import plot

OPS = ("construct", "logpdf", "solve", "matvec", "slogdet", "draw")
TIMES = (
    "Median wall times. *first*: a fresh operator each round (construction and "
    "factorisations included); *repeated*: the same warm operator (cached factors). Floors: "
    "bare scikit-sparse calls on the same matrices with the library's CHOLMOD settings "
    "(natural ordering and simplicial mode for banded matrices, otherwise the layer's mode "
    "choice and the default ordering; other choices are compared in the CHOLMOD case). "
    "Ratios: ours / floor, round by round."
)
MEMORY = (
    "Peak memory of one first call, traced by tracemalloc (NumPy and SciPy allocations). "
    "CHOLMOD's own buffers are not traced; both routes hold the same factorisations, so "
    "*extra* is what our route allocates beyond the floor."
)


def library_settings(m) -> tuple[str, str]:
    """The (mode, ordering) our factorisation layer asks CHOLMOD for: simplicial in natural
    order for banded matrices (a band factor has no fill), else the mode the layer chooses
    (``choose_mode``) with the default ordering (the layer hands CHOLMOD AMD's ordering)."""
    band = bandwidth(m) <= NATURAL_ORDER_BANDWIDTH
    return ("simplicial", "natural") if band else (choose_mode(m), "default")


def library_cholesky(m):
    """CHOLMOD as our factorisation layer calls it."""
    mode, ordering = library_settings(m)
    return cholesky(m, mode=mode, ordering_method=ordering)


def shared_choleskys(q, o):
    """CHOLMOD's factors of ``Q`` and ``O = I + Q`` on one symbolic analysis (one pattern)."""
    mode, ordering = library_settings(q)
    analysis = analyze(q, mode=mode, ordering_method=ordering)
    return analysis.cholesky(q), analysis.cholesky(o)


def setup(Q, shared: bool = False, own_copy: bool = False) -> SimpleNamespace:
    """Inputs, a warm operator (every cache filled) and the floor's cached factors.

    ``shared``: the first-call floors that need both factors factorise ``Q`` and
    ``O = I + Q`` on one symbolic analysis, and form ``O`` from the inputs (as the library
    must), in place of two analyses of a prepared ``O``. ``own_copy``: the first-call
    floors start from their own copy of ``Q`` (see :func:`floor`).
    """
    n = Q.shape[0]
    p = SimpleNamespace(
        Q=Q, eye=sparse.eye_array(n, format="csc"), n=n, shared=shared, own_copy=own_copy
    )
    p.x = np.random.default_rng(0).standard_normal(n)
    p.Qc, p.Oc = (sparse.csc_matrix(m) for m in (Q, p.eye + Q))
    for m in (p.Qc, p.Oc):
        m.sort_indices()
    p.W = ws.SymmetricWoodburyMatrix(Q, p.eye)
    ws.dwnorm(p.x, covariance=p.W, log=True)
    ws.rwnorm(1, None, p.W, random_state=0)
    p.W @ p.x
    p.fA, p.fO = library_cholesky(p.Qc), library_cholesky(p.Oc)
    return p


def ours(p, op: str, warm: bool):
    """Our operation on the warm operator, or on a fresh one built inside the call."""
    rng = np.random.default_rng(1)

    def get():
        return p.W if warm else ws.SymmetricWoodburyMatrix(p.Q, p.eye)

    return {
        "construct": get,
        "logpdf": lambda: ws.dwnorm(p.x, covariance=get(), log=True),
        "solve": lambda: get().solve(p.x),
        "matvec": lambda: get() @ p.x,
        "slogdet": lambda: get().slogdet(),
        "draw": lambda: ws.rwnorm(1, None, get(), random_state=rng),
    }[op]


def floor(p, op: str, warm: bool):
    """The bare CHOLMOD work of an operation; ``warm``: with the factors cached.

    A first call (not ``warm``) builds a fresh operator, which must hold its own copy of
    ``A`` (operators are immutable and never alias their inputs): with ``p.own_copy`` its
    floor starts from that copy (the *construct* floor, ``csc_matrix(Q, copy=True)``),
    and factorises and multiplies with it. Validation (finiteness, duplicates, symmetry)
    stays out of every floor.
    """
    rng, x = np.random.default_rng(1), p.x

    def own_q():
        return sparse.csc_matrix(p.Qc, copy=True) if p.own_copy and not warm else p.Qc

    def fa(q):
        return p.fA if warm else library_cholesky(q)

    def fo(q):
        if warm:
            return p.fO
        return library_cholesky(sparse.csc_matrix(p.eye + q) if p.shared else p.Oc)

    def both(q):  # (A's factor, O's factor)
        if warm or not p.shared:
            return fa(q), fo(q)
        return shared_choleskys(q, sparse.csc_matrix(p.eye + q))

    def logpdf():
        q = own_q()
        f_a, f_o = both(q)
        y = q @ x
        quad = x @ y - y @ f_o.solve_A(y)
        return -0.5 * (p.n * np.log(2 * np.pi) + f_o.logdet() - f_a.logdet() + quad)

    def solve():
        q = own_q()
        y = q @ x
        return y - q @ fo(q).solve_A(y)

    def matvec():
        return fa(own_q()).solve_A(x) + x

    def slogdet():
        f_a, f_o = both(own_q())
        return f_o.logdet() - f_a.logdet()

    def draw():
        f_a, z = fa(own_q()), rng.standard_normal(2 * p.n)
        return f_a.apply_Pt(f_a.solve_Lt(z[: p.n], use_LDLt_decomposition=False)) + z[p.n :]

    return {
        "construct": lambda: sparse.csc_array(p.Qc, copy=True),
        "logpdf": logpdf,
        "solve": solve,
        "matvec": matvec,
        "slogdet": slogdet,
        "draw": draw,
    }[op]


def routes(ops):
    def declare(n, p):
        out = {}
        for op in ops:
            out[f"ours {op} first"] = ours(p, op, warm=False)
            out[f"floor {op} first"] = floor(p, op, warm=False)
            if op != "construct":  # a repeated slogdet is a cached scalar: no floor
                out[f"ours {op} repeated"] = ours(p, op, warm=True)
            if op not in ("construct", "slogdet"):
                out[f"floor {op} repeated"] = floor(p, op, warm=True)
        return out

    return declare


def tabulate(res: Result, n: int, p, t: Timings) -> None:
    for op in dict.fromkeys(k.split()[1] for k in t.samples):
        row = {"n": f"{n:,}", "operation": op}
        for which in ("first", "repeated"):
            ours_k, floor_k = f"ours {op} {which}", f"floor {op} {which}"
            row[f"{which} (ms)"] = fmt_ms(t.median(ours_k))
            cached = which == "repeated" and op == "slogdet"
            row[f"floor {which} (ms)"] = "cached" if cached else fmt_ms(t.median(floor_k))
            row[f"ratio {which}"] = fmt_ratio(t.ratio(ours_k, floor_k))
        res.add(TIMES, row)
    for op in ("logpdf", "solve") if t.peaks else ():
        mine, bare = t.peaks[f"ours {op}"], t.peaks[f"floor {op}"]
        res.add(
            MEMORY,
            {
                "n": f"{n:,}",
                "operation (first call)": op,
                "ours peak (MiB)": fmt_mib(mine),
                "floor peak (MiB)": fmt_mib(bare),
                "extra (MiB)": fmt_mib(mine - bare),
            },
        )


def memory(n, p):
    """First calls of the log density and the solve, ours and the floor's."""
    return {f"{w} {op}": f(p, op, False) for op in ("logpdf", "solve") for w, f in _WHO.items()}


_WHO = {"ours": ours, "floor": floor}


def figure(res: Result, path) -> None:
    """Ratio to the CHOLMOD floor per operation and size, first and repeated calls."""
    ns = sorted(int(n) for n in res.data)
    t = {n: Timings(res.data[str(n)]["samples"]) for n in ns}

    def ratios(op, which):
        return [t[n].ratio(f"ours {op} {which}", f"floor {op} {which}")[0] for n in ns]

    panels = [
        (
            f"{res.name}: {which} call / floor",
            [(op, ns, ratios(op, which), "o-") for op in OPS[1:]],
            [(goal, f"target {goal}×"), (1.0, None)],
        )
        for which, goal in (("first", 1.5), ("repeated", 1.3))
    ]
    plot(path, panels, "n", "ours / bare CHOLMOD")


def case(
    name,
    title,
    doc,
    make_q,
    repeats: dict,
    quick_n: int,
    ops,
    note: str,
    shared=False,
    own_copy=False,
    blocks: dict | None = None,
) -> Case:
    """Both GMRF cases: sizes with (first, repeated) rounds, the matrix, the operations.

    ``blocks``: consecutive calls of each route per round, by size (the harness's
    ``block``; 1 where not given).
    """
    return Case(
        name=name,
        title=title,
        doc=doc + "\n\n" + __doc__,
        params=lambda quick: [quick_n] if quick else list(repeats),
        setup=lambda n: setup(make_q(n), shared, own_copy),
        routes=routes(ops),
        timing=lambda n, quick: {
            "repeats": lambda route: 3 if quick else repeats[n][route.endswith("repeated")],
            "block": (blocks or {}).get(n, 1),
        },
        memory=memory,
        tabulate=tabulate,
        figure=figure,
        notes=(note,),
    )


AR1 = case(
    "ar1",
    "AR(1) plus noise: operations vs the CHOLMOD floor",
    "AR(1) plus noise, ``W = Q⁻¹ + I`` with tridiagonal ``Q`` (ρ = 0.9).",
    lambda n: ar1_precision(n, 0.9),
    {10**4: (7, 15), 10**5: (5, 9), 10**6: (3, 7), 10**7: (1, 3)},
    10**4,
    OPS,
    "Floors per operation (bare CHOLMOD, `O = I + Q`, `A = Q`); every first-call floor "
    "starts from its own copy of Q (the construct floor: a fresh operator must copy A, "
    "never alias it): log density = form O "
    "from the inputs + factorise A and O on one symbolic analysis (O has Q's pattern) + "
    "log-determinants + one O-solve + two products with Q; solve = form and factorise O + "
    "one O-solve + two products with Q; matvec = factorise A + one A-solve; slogdet = "
    "form O + factorise A and O on one analysis; draw = factorise A + `solve_Lt` + "
    "`apply_Pt` + 2n normals. Repeated floors omit the factorisations; a repeated "
    "slogdet is a cached scalar on both sides.",
    shared=True,
    own_copy=True,
    # Three calls of a route per round, the middle one the sample: a call then follows
    # one of its own kind, as in a user's loop. With one, the harness's fixed cyclic order
    # put every first-call floor right after our first call, whose freed operator malloc
    # handed it again: at n = 10⁵ the floor's first matvec took 1,139 page faults there
    # and 2,899 after any other route (11.3 against 14.0 ms), ours 2,900-4,000. n = 10⁷
    # keeps one call (seconds each).
    blocks={10**4: 3, 10**5: 3, 10**6: 3},
)
GRID = case(
    "grid",
    "2-D grid GMRF plus noise (the fill-in case)",
    "2-D grid GMRF plus noise, ``W = Q⁻¹ + I`` with ``Q = κ² I + L`` on an m×m grid.",
    lambda n: grid_precision(math.isqrt(n), kappa=0.5),
    {100**2: (5, 9), 300**2: (3, 5), 1000**2: (1, 3)},
    50**2,
    ("logpdf", "solve", "matvec"),
    "Grid sides m = 100, 300, 1000 (n = m²). Only log density, solve and matvec are timed "
    "here (the other operations behave as for AR(1)); at n = 10⁶ each first call is timed "
    "once, as one CHOLMOD factorisation takes several seconds.",
)


# -- GRID: the CHOLMOD mode -----------------------------------------------------------------
#: The two CHOLMOD modes timed beside the library's first log density on the grids.
CHOLMOD_MODES = ("simplicial", "supernodal")
MODES = (
    "First log density (a fresh operator: construction and both factorisations included) "
    "against the bare CHOLMOD log density in each mode, with one symbolic analysis (default "
    "ordering) shared by `Q` and `O = I + Q` (formed from the inputs, as the library must), "
    "timed in the same rounds. *chosen*: the mode "
    "the library's rule picks from the symbolic statistics (`_sksparse.choose_mode`: flops "
    "per entry of `L`, with the threshold `SUPERNODAL_MIN_FLOPS_PER_ENTRY`); *ours / better*: "
    "round by round, ours over the faster of the two modes in that round (median, quartiles)."
)


def mode_floor(p, mode: str):
    """The first log density on bare CHOLMOD in ``mode``: one analysis for ``Q`` and ``O``."""

    def logpdf():
        f_a = analyze(p.Qc, mode=mode)
        f_o = f_a.cholesky(sparse.csc_matrix(p.eye + p.Qc))  # O formed, as ours must
        f_a.cholesky_inplace(p.Qc)
        y = p.Qc @ p.x
        quad = p.x @ y - y @ f_o.solve_A(y)
        return -0.5 * (p.n * np.log(2 * np.pi) + f_o.logdet() - f_a.logdet() + quad)

    return logpdf


def grid_routes(declare_base):
    def declare(n, p):
        out = declare_base(n, p)
        for mode in CHOLMOD_MODES:
            out[f"{mode} logpdf first"] = mode_floor(p, mode)
        return out

    return declare


def grid_tabulate(res: Result, n: int, p, t: Timings) -> None:
    tabulate(res, n, p, t)
    ours = np.asarray(t.samples["ours logpdf first"])
    modes = [np.asarray(t.samples[f"{mode} logpdf first"]) for mode in CHOLMOD_MODES]
    k = min(len(ours), *(len(m) for m in modes))
    mid, lo, hi = np.percentile(ours[:k] / np.minimum(*(m[:k] for m in modes)), [50, 25, 75])
    res.add(
        MODES,
        {
            "grid": f"{math.isqrt(n)}×{math.isqrt(n)}",
            "simplicial (ms)": fmt_ms(t.median("simplicial logpdf first")),
            "supernodal (ms)": fmt_ms(t.median("supernodal logpdf first")),
            "chosen": choose_mode(p.Qc),
            "ours (ms)": fmt_ms(t.median("ours logpdf first")),
            "ours / better": fmt_ratio((float(mid), float(lo), float(hi))),
        },
    )


GRID = dataclasses.replace(GRID, routes=grid_routes(GRID.routes), tabulate=grid_tabulate)
