"""The SciPy fallback backend against CHOLMOD, interleaved in one run.

The package without scikit-sparse factorises banded symmetric blocks with LAPACK's banded
Cholesky and everything else with SuperLU. One Python process started with
``WOODBURY_SPARSE_BACKEND=scipy`` (the same interpreter and package, only the backend
differs) stays up for the whole case and runs one operation per request, timing it itself
(CPU time and one BLAS thread in the ``one-thread`` regime, wall time and the pools as
found otherwise); the same operation on CHOLMOD runs in this process in the same round.
Problems: AR(1)+noise ``W = Q⁻¹ + I`` (ρ = 0.9, banded: issue 15's "within 2× of CHOLMOD")
and, for what the fallback costs elsewhere, the 2-D grid ``Q = κ² I + L`` (SuperLU).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse.testing import ar1_precision, grid_precision

from ._harness import Case, Result, SelfTimed, Timings, fmt_ms, fmt_ratio, regime

OPS = ("logpdf_first", "logpdf_repeated", "solve_first", "solve_repeated")

DRIVER = r"""
import json, math, sys, time
import numpy as np
import threadpoolctl
from scipy import sparse
import woodbury_sparse as ws
from woodbury_sparse.testing import ar1_precision, grid_precision

def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()

say({"backend": ws.backend_info()})
clock, limits, ops = time.perf_counter, None, {}
for line in sys.stdin:
    a = line.split()
    if not a or a[0] == "quit":
        break
    if a[0] == "clock":
        if limits is not None:
            limits.restore_original_limits()
            limits = None
        if a[1] == "cpu":
            clock, limits = time.process_time, threadpoolctl.threadpool_limits(1)
        else:
            clock = time.perf_counter
        say("ok")
    elif a[0] == "setup":
        n = int(a[2])
        if a[1] == "ar1":
            q = ar1_precision(n, 0.9)
        else:
            q = grid_precision(math.isqrt(n), kappa=0.5)
        eye = sparse.eye_array(n, format="csc")
        x = np.random.default_rng(0).standard_normal(n)
        make = lambda: ws.SymmetricWoodburyMatrix(q, eye)
        W = make()
        value = ws.dwnorm(x, covariance=W, log=True)
        W.solve(x)
        ops = {
            "logpdf_first": lambda: ws.dwnorm(x, covariance=make(), log=True),
            "logpdf_repeated": lambda: ws.dwnorm(x, covariance=W, log=True),
            "solve_first": lambda: make().solve(x),
            "solve_repeated": lambda: W.solve(x),
        }
        say({"value": value})
    elif a[0] == "run":
        f = ops[a[1]]
        t0 = clock()
        f()
        say(clock() - t0)
    else:
        say({"error": line.strip()})
"""


class FallbackSession:
    """The Python process on the SciPy backend running :data:`DRIVER`."""

    def __init__(self) -> None:
        env = dict(os.environ, WOODBURY_SPARSE_BACKEND="scipy")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.backend = self.ask(None)["backend"]
        if self.backend.get("backend") != "scipy":  # pragma: no cover
            raise RuntimeError(f"the fallback process runs {self.backend}, not SciPy")

    def ask(self, line: str | None):
        if line is not None:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the fallback process ended (asked {line!r})")
        out = json.loads(answer)
        if isinstance(out, dict) and "error" in out:
            raise RuntimeError(f"the fallback process refused {out['error']!r}")
        return out

    def run(self, op: str) -> SelfTimed:
        return SelfTimed(float(self.ask(f"run {op}")))

    def close(self) -> None:
        """Ask the process to end, wait for it, and close both pipes (idempotent)."""
        if self.proc.poll() is None:
            try:
                self.proc.communicate("quit\n", timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.proc.kill()
                self.proc.communicate()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


def setup(param) -> SimpleNamespace:
    kind, n = param
    session = FallbackSession()
    session.ask("clock cpu" if regime() == "one-thread" else "clock wall")
    p = SimpleNamespace(session=session, n=n, kind=kind)
    p.Q = ar1_precision(n, 0.9) if kind == "ar1" else grid_precision(math.isqrt(n), kappa=0.5)
    p.eye = sparse.eye_array(n, format="csc")
    p.x = np.random.default_rng(0).standard_normal(n)
    p.make = lambda: ws.SymmetricWoodburyMatrix(p.Q, p.eye)
    p.W = p.make()
    p.value = ws.dwnorm(p.x, covariance=p.W, log=True)
    p.W.solve(p.x)
    p.fallback_value = session.ask(f"setup {kind} {n}")["value"]
    return p


def routes(param, p) -> dict:
    ours = {
        "logpdf_first": lambda: ws.dwnorm(p.x, covariance=p.make(), log=True),
        "logpdf_repeated": lambda: ws.dwnorm(p.x, covariance=p.W, log=True),
        "solve_first": lambda: p.make().solve(p.x),
        "solve_repeated": lambda: p.W.solve(p.x),
    }
    out = {}
    for op, f in ours.items():
        out[f"cholmod {op}"] = f
        out[f"fallback {op}"] = lambda op=op: p.session.run(op)
    return out


CAPTION = (
    "The SciPy fallback (LAPACK banded Cholesky for AR(1), SuperLU for the grid) against "
    "CHOLMOD, the same operations on the same problem in the same rounds ({clock}); "
    "*first*: construction + the call on a fresh operator; *repeated*: the call on a warm "
    "one. Fallback / CHOLMOD: round by round, median (quartiles). The last column is the "
    "two backends' log densities' relative difference."
)


def tabulate(res: Result, param, p, t: Timings) -> None:
    kind, n = param
    what = "CPU time, one BLAS thread" if regime() == "one-thread" else "wall time"
    diff = abs(p.fallback_value - p.value) / abs(p.value)
    for op in OPS:
        res.add(
            CAPTION.format(clock=what),
            {
                "problem": "AR(1)+noise" if kind == "ar1" else "2-D grid + noise",
                "n": f"{n:,}",
                "operation": op.replace("_", " ").replace("logpdf", "dwnorm"),
                "CHOLMOD (ms)": fmt_ms(t.median(f"cholmod {op}")),
                "fallback (ms)": fmt_ms(t.median(f"fallback {op}")),
                "fallback / CHOLMOD": fmt_ratio(t.ratio(f"fallback {op}", f"cholmod {op}")),
                "log density rel. diff.": f"{diff:.1e}",
            },
        )
    note = f"Fallback process: {p.session.backend}; this process: {ws.backend_info()}."
    if note not in res.notes:
        res.notes.append(note)
    p.session.close()


def _params(quick: bool):
    if quick:
        return [("ar1", 10**4)]
    return [("ar1", 10**5), ("ar1", 10**6), ("grid", 100**2), ("grid", 300**2)]


def timing(param, quick: bool) -> dict:
    if quick:
        return {"repeats": 3}
    return {"repeats": 5 if param[1] <= 10**5 else 3, "warmup": True}


CASE = Case(
    name="fallback",
    title="The SciPy fallback backend vs CHOLMOD, interleaved",
    doc=__doc__,
    params=_params,
    setup=setup,
    routes=routes,
    timing=timing,
    tabulate=tabulate,
)

__all__ = ["CASE"]
