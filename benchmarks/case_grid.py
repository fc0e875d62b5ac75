"""Case 4: 2-D grid GMRF plus noise, ``W = Q⁻¹ + I`` with ``Q = κ² I + L`` on an m×m grid."""

from __future__ import annotations

import math

from woodbury_sparse.testing import grid_precision

from . import _gmrf
from ._harness import CaseResult

NAME = "grid"
TITLE = "2-D grid GMRF plus noise (the fill-in case)"


def make_q(n: int):
    return grid_precision(math.isqrt(n), kappa=0.5)


def mem_task(task: str, n: int):
    return _gmrf.mem_task_for(make_q, task, n)


def run(quick: bool = False) -> CaseResult:
    res = CaseResult(NAME, TITLE)
    if quick:
        sizes, reps = [50**2], {50**2: (1, 1)}
    else:
        sizes = [100**2, 316**2, 1000**2]
        reps = {100**2: (5, 9), 316**2: (3, 5), 1000**2: (1, 3)}
    ops = ("logpdf", "solve", "matvec") if not quick else _gmrf.OPS
    _gmrf.run_sizes(res, make_q, sizes, reps, __name__, memory_from=10**6, ops=ops)
    res.notes.append(
        "Grid sides m = 100, 316, 1000 (n = m²). Only log density, solve and matvec are "
        "timed here (the other operations behave as for AR(1)); at n = 10⁶ each first call "
        "is timed once, as one CHOLMOD factorisation takes several seconds."
    )
    return res
