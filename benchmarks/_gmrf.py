"""Shared machinery of the sparse cases (AR(1) + noise, 2-D grid GMRF + noise).

``W = Q⁻¹ + I`` (``A = Q``, ``B = I``, ``X = I``): the capacitance is ``O = I + Q``. Each
operation is timed against its *floor*: the bare scikit-sparse calls on the same
matrices, with the same CHOLMOD settings as our factorisation layer, that the operation
cannot avoid.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sksparse.cholmod import cholesky

import woodbury_sparse as ws
from woodbury_sparse._factor._sksparse import NATURAL_ORDER_BANDWIDTH, bandwidth

from ._harness import CaseResult, fmt_mib, fmt_ms, fmt_ratio, progress
from ._harness import legacy_interleaved as interleaved

OPS = ("construct", "logpdf", "solve", "matvec", "slogdet", "draw")


def inputs(Q: sparse.csc_array, seed: int = 0):
    n = Q.shape[0]
    rng = np.random.default_rng(seed)
    eye = sparse.eye_array(n, format="csc")
    x = rng.standard_normal(n)
    Oc = sparse.csc_matrix(eye + Q)
    Oc.sort_indices()
    Qc = sparse.csc_matrix(Q, copy=True)
    Qc.sort_indices()
    return eye, x, Oc, Qc


def ours(Q, eye, x, op: str, W=None):
    """A callable for our operation; ``W=None`` builds a fresh operator (first call)."""
    rng = np.random.default_rng(1)

    def get():
        return ws.SymmetricWoodburyMatrix(Q, eye) if W is None else W

    fns = {
        "construct": lambda: ws.SymmetricWoodburyMatrix(Q, eye),
        "logpdf": lambda: ws.dwnorm(x, covariance=get(), log=True),
        "solve": lambda: get().solve(x),
        "matvec": lambda: get() @ x,
        "slogdet": lambda: get().slogdet(),
        "draw": lambda: ws.rwnorm(1, None, get(), random_state=rng),
    }
    return fns[op]


def library_cholesky(m, ordering: str = "library"):
    """CHOLMOD as our factorisation layer calls it (``"library"``), or with ``ordering``.

    The layer factorises banded matrices in natural order and simplicial mode, anything
    else with CHOLMOD's default ordering and automatic mode.
    """
    if ordering != "library":
        return cholesky(m, ordering_method=ordering)
    banded = bandwidth(m) <= NATURAL_ORDER_BANDWIDTH
    return cholesky(
        m,
        mode="simplicial" if banded else "auto",
        ordering_method="natural" if banded else "default",
    )


def floor(Qc, Oc, x, op: str, first: bool, ordering: str = "library", cached=None):
    """The bare CHOLMOD work of an operation; ``cached = (fA, fO)`` for repeated calls."""
    n = Qc.shape[0]
    rng = np.random.default_rng(1)

    def fac(m):
        return library_cholesky(m, ordering)

    def fa():
        return fac(Qc) if first else cached[0]

    def fo():
        return fac(Oc) if first else cached[1]

    def logpdf():
        f_o, f_a = fo(), fa()
        logdet = f_o.logdet() - f_a.logdet()
        y = Qc @ x
        quad = x @ y - y @ f_o.solve_A(y)
        return -0.5 * (n * np.log(2 * np.pi) + logdet + quad)

    def solve():
        f_o = fo()
        y = Qc @ x
        return y - Qc @ f_o.solve_A(y)

    def matvec():
        return fa().solve_A(x) + x

    def slogdet():
        return fo().logdet() - fa().logdet() if first else None

    def draw():
        f_a = fa()
        z = rng.standard_normal(2 * n)
        return f_a.apply_Pt(f_a.solve_Lt(z[:n], use_LDLt_decomposition=False)) + z[n:]

    def construct():
        return sparse.csc_array(Qc, copy=True)

    return dict(
        construct=construct, logpdf=logpdf, solve=solve, matvec=matvec, slogdet=slogdet, draw=draw
    )[op]


def mem_task_for(make_q, task: str, n: int):
    """Callables for the memory probe: ``ours-<op>`` / ``floor-<op>`` (first calls)."""
    Q = make_q(n)
    eye, x, Oc, Qc = inputs(Q)
    who, op = task.split("-", 1)
    if who == "ours":
        return ours(Q, eye, x, op)
    return floor(Qc, Oc, x, op, first=True)


def run_sizes(
    result: CaseResult,
    make_q,
    sizes: list[int],
    repeats: dict[int, tuple[int, int]],
    module: str,
    memory_from: int,
    ops=OPS,
) -> None:
    """Time every op at every size (first and repeated) against its floors; fill ``result``."""
    from ._harness import memory_in_subprocess

    rows, mem_rows, raw = [], [], {}
    for n in sizes:
        rep_first, rep_rep = repeats[n]
        progress(f"  n = {n:,}: building inputs")
        Q = make_q(n)
        eye, x, Oc, Qc = inputs(Q)
        # warm operator and cached bare factors for the repeated calls
        W = ws.SymmetricWoodburyMatrix(Q, eye)
        ws.dwnorm(x, covariance=W, log=True)
        ws.rwnorm(1, None, W, random_state=0)
        _ = W @ x
        cached = (library_cholesky(Qc), library_cholesky(Oc))
        for op in ops:
            progress(f"  n = {n:,}: {op} (first ×{rep_first}, repeated ×{rep_rep})")
            funcs = {
                "ours": ours(Q, eye, x, op),
                "floor": floor(Qc, Oc, x, op, True),
            }
            first = interleaved(funcs, rep_first)
            if op == "construct":
                rep = {"ours": np.nan, "floor": np.nan}
            else:
                rep = interleaved(
                    {
                        "ours": ours(Q, eye, x, op, W=W),
                        "floor": floor(Qc, Oc, x, op, False, cached=cached),
                    },
                    rep_rep,
                )
            raw[(n, op)] = {"first": first, "repeated": rep}
            cached_op = op == "slogdet"
            rows.append(
                {
                    "n": f"{n:,}",
                    "operation": op,
                    "first (ms)": fmt_ms(first["ours"]),
                    "floor first (ms)": fmt_ms(first["floor"]),
                    "ratio first": fmt_ratio(first["ours"] / first["floor"]),
                    "repeated (ms)": fmt_ms(rep["ours"]),
                    "floor repeated (ms)": "cached" if cached_op else fmt_ms(rep["floor"]),
                    "ratio repeated": "–"
                    if cached_op or op == "construct"
                    else fmt_ratio(rep["ours"] / rep["floor"]),
                }
            )
        if n >= memory_from:
            for op in ("logpdf", "solve"):
                progress(f"  n = {n:,}: peak memory of {op} (subprocesses)")
                mo = memory_in_subprocess(module, f"ours-{op}", n)
                mf = memory_in_subprocess(module, f"floor-{op}", n)
                raw[(n, f"mem-{op}")] = {"ours": mo, "floor": mf}
                mem_rows.append(
                    {
                        "n": f"{n:,}",
                        "operation (first call)": op,
                        "ours peak (MiB)": fmt_mib(mo),
                        "floor peak (MiB)": fmt_mib(mf),
                        "ratio": fmt_ratio(mo / mf) if mo and mf else "–",
                    }
                )
        del W, cached, Q, Oc, Qc
    result.table(
        "Median wall times. *first*: a fresh operator each repeat (construction and "
        "factorisations included); *repeated*: the same warm operator (cached factors). "
        "Floors: bare scikit-sparse calls on the same matrices with the library's CHOLMOD "
        "settings (natural ordering and simplicial mode for banded matrices, otherwise "
        "mode auto and the default ordering). Other orderings and modes are compared in "
        "the CHOLMOD case.",
        list(rows[0]),
        rows,
    )
    if mem_rows:
        result.table(
            "Peak memory of one first call: growth of the peak resident set "
            "(`/proc/self/status` VmHWM after, minus VmRSS before, with VmHWM reset through "
            "`/proc/self/clear_refs`) in a fresh subprocess per measurement, inputs built "
            "beforehand. Includes CHOLMOD's C allocations (tracemalloc would miss them).",
            list(mem_rows[0]),
            mem_rows,
        )
    result.data["raw"] = {f"{k[0]}|{k[1]}": v for k, v in raw.items()}
