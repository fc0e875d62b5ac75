"""Case 3: AR(1) plus noise, ``W = Q⁻¹ + I`` with tridiagonal ``Q`` (ρ = 0.9)."""

from __future__ import annotations

from woodbury_sparse.testing import ar1_precision

from . import _gmrf
from ._harness import CaseResult

NAME = "ar1"
TITLE = "AR(1) plus noise: operations vs the CHOLMOD floor"


def make_q(n: int):
    return ar1_precision(n, 0.9)


def mem_task(task: str, n: int):
    return _gmrf.mem_task_for(make_q, task, n)


def sizes(quick: bool) -> list[int]:
    return [10**4] if quick else [10**4, 10**5, 10**6, 10**7]


def run(quick: bool = False) -> CaseResult:
    res = CaseResult(NAME, TITLE)
    reps = {10**4: (7, 15), 10**5: (5, 9), 10**6: (3, 7), 10**7: (1, 3)}
    if quick:
        reps = {10**4: (1, 1)}
    _gmrf.run_sizes(res, make_q, sizes(quick), reps, __name__, memory_from=10**6)
    res.notes.append(
        "Floors per operation (bare CHOLMOD, `O = I + Q`, `A = Q`): log density = "
        "factorise O and A + log-determinants + one O-solve + two products with Q; solve = "
        "factorise O + one O-solve + two products with Q; matvec = factorise A + one "
        "A-solve; slogdet = factorise O and A; draw = factorise A + `solve_Lt` + "
        "`apply_Pt` + 2n normals. Repeated floors omit the factorisations; a repeated "
        "slogdet is a cached scalar on both sides."
    )
    return res
