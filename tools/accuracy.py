"""Measure the accuracy of woodbury_sparse against exact (mpmath) references.

Run from the repository root (or a worktree), with the test extra installed (mpmath)::

    python tools/accuracy.py              # the cancellation catalogue × scale ratios
    python tools/accuracy.py --refinement # iterative refinement on the probes

The first table has one row per problem of ``tests/mp_reference.py`` and scale ratio
``r`` (``A`` multiplied by ``r``). Each error is given as a fraction of the bound
``tests/test_cancellation.py`` asserts (≤ 1 meets it): ``solve``, ``W @ b`` and
``W.inv().toarray()`` against ``2·n·eps·κ`` (κ the largest condition number of ``W``,
``A`` and ``B``), ``log|det W|`` and the log density against the bounds derived in
``tests/mp_reference.py``. ``warn`` marks an ``IllConditionedWarning``. The second table
follows iterative refinement on the probes of ``tests/test_accuracy.py``: forward error
and backward error ``‖b − W x‖/(‖W‖ ‖x‖)``, both against the exact ``W``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import mp_reference as ref  # noqa: E402

import woodbury_sparse as ws  # noqa: E402
from woodbury_sparse import testing  # noqa: E402

COLUMNS = ("solve", "product", "inverse", "logdet", "logpdf")


def _measure(problem: ref.ScaledProblem, ratio: float) -> dict[str, float]:
    exact = ref.cached_reference(problem.name, ratio)
    W = ws.WoodburyMatrix(**problem.kwargs(ratio))
    out = {"kappa_w": exact.kappa_w, "kappa_wab": exact.kappa_wab, "kappa_o": exact.kappa_o}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bound = exact.solve_bound()
        out["solve"] = testing.relative_error(W.solve(exact.b), exact.x) / bound
        out["product"] = testing.relative_error(W @ exact.b, exact.product) / bound
        out["inverse"] = testing.relative_error(W.inv().toarray(), exact.inverse) / bound
        sign, logdet = W.slogdet()
        out["logdet"] = (
            abs(logdet - exact.logabsdet) / exact.logdet_bound() if sign == exact.sign else np.inf
        )
        out["logpdf"] = np.nan
        if problem.pd:
            logpdf = ws.WoodburyNormal(np.zeros(W.n), W).logpdf(exact.b)
            out["logpdf"] = abs(logpdf - exact.logpdf) / exact.logpdf_bound()
    out["warned"] = any(issubclass(w.category, ws.WoodburyWarning) for w in caught)
    return out


def catalogue_table() -> None:
    """Print the catalogue × ratio table and the worst fraction of each bound."""
    print(
        f"{'problem':26s} {'ratio':>6s} {'κ(W)':>8s} {'κ(W,A,B)':>8s} {'κ(O)':>8s} "
        + " ".join(f"{c:>8s}" for c in COLUMNS)
        + "  warn"
    )
    worst = dict.fromkeys(COLUMNS, 0.0)
    for name, problem in ref.catalogue().items():
        for ratio in ref.RATIOS:
            m = _measure(problem, ratio)
            for c in COLUMNS:
                if not np.isnan(m[c]):
                    worst[c] = max(worst[c], m[c])
            row = " ".join(f"{m[c]:8.2g}" for c in COLUMNS)
            print(
                f"{name:26s} {ratio:6.0e} {m['kappa_w']:8.1e} {m['kappa_wab']:8.1e} "
                f"{m['kappa_o']:8.1e} {row}  {'yes' if m['warned'] else ''}"
            )
    print("worst fraction of the bound: " + ", ".join(f"{c} {worst[c]:.2g}" for c in COLUMNS))


def refinement_table() -> None:
    """Forward and backward errors, unrefined, automatically refined and with ``refine=k``."""
    print(
        f"{'probe':26s} {'solve':>16s} {'fwd error':>10s} {'bwd error':>10s} "
        f"{'eps·κ(W)':>9s} {'eps·κ(W,A,B)':>12s} {'eps·κ(O)':>9s}"
    )
    for name, kwargs in ref.refinement_probes().items():
        exact = ref.reference(kwargs)
        W = ws.WoodburyMatrix(**kwargs)
        scales = (
            f"{ref.EPS * exact.kappa_w:9.1e} {ref.EPS * exact.kappa_wab:12.1e} "
            f"{ref.EPS * exact.kappa_o:9.1e}"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ws.IllConditionedWarning)
            runs = [("one pass", W._solve_once(exact.b)[0]), ("solve(b)", W.solve(exact.b))]
            runs += [(f"refine={k}", W.solve(exact.b, refine=k)) for k in (1, 2, 3)]
        for label, x in runs:
            forward = testing.relative_error(x, exact.x)
            print(
                f"{name:26s} {label:>16s} {forward:10.1e} {exact.backward_error(x):10.1e} {scales}"
            )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--refinement", action="store_true", help="the iterative-refinement table instead"
    )
    args = parser.parse_args(argv)
    if args.refinement:
        refinement_table()
    else:
        catalogue_table()


if __name__ == "__main__":
    main()
