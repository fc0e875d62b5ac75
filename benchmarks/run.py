"""Run the benchmark cases; print their tables and write ``REPORT.md``, figures, JSON.

usage: python -m benchmarks.run [--quick] [--only NAME ...] [--out DIR] [--report-only]
                                [--regime {one-thread,default,busy}]

``--quick`` runs every case at its smallest size, three rounds (CI), and writes to
``benchmarks/results/quick/`` (git-ignored), never over the committed full report. The
environment is recorded as found: thread pools and BLAS come from threadpoolctl, and
variables such as ``OPENBLAS_NUM_THREADS`` are the caller's to set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import (
    case_cholmod,
    case_gradients,
    case_pathways,
    case_posterior,
    case_r,
    case_regression,
    case_scaling,
    case_selinv,
    case_sweep,
)
from ._harness import REGIMES, Result, machine_info, progress, run_case, set_regime
from .case_gmrf import AR1, GRID
from .report import case_section, write_report

CASES = {
    c.name: c
    for c in (
        case_scaling.CASE,
        case_regression.CASE,
        AR1,
        GRID,
        case_sweep.CASE,
        case_pathways.CASE,
        case_selinv.CASE,
        case_gradients.CASE,
        case_posterior.CASE,
        case_cholmod.CASE,
        case_r.CASE,
    )
}
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smallest sizes, three rounds")
    parser.add_argument(
        "--only", nargs="+", choices=list(CASES), metavar="NAME", help=f"of {', '.join(CASES)}"
    )
    parser.add_argument("--out", type=Path, default=None, help="output directory")
    parser.add_argument(
        "--regime",
        choices=list(REGIMES),
        default="default",
        help="; ".join(f"{k}: {v}" for k, v in REGIMES.items()),
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="re-render REPORT.md and the figures from the results.json in --out",
    )
    args = parser.parse_args(argv)
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    if args.report_only:
        saved = json.loads((out / "results.json").read_text())
        results = [Result(**c) for c in saved["cases"]]
        write_report(out, results, saved["machine"], args.quick, CASES)
        progress(f"report re-rendered: {out / 'REPORT.md'}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    set_regime(args.regime)
    info = machine_info()
    progress(f"benchmarks ({'quick' if args.quick else 'full'}) → {out}")
    blas = info["CHOLMOD's BLAS"]
    progress(f"thread pools: {info['thread pools']}; CHOLMOD's BLAS: {blas}")
    t0 = time.perf_counter()
    results = []
    for name in args.only or CASES:
        progress(f"case {name}: {CASES[name].title}")
        results.append(run_case(CASES[name], args.quick))
        print("\n".join(case_section(results[-1], "")), flush=True)
    info["total seconds"] = time.perf_counter() - t0
    info["load average after"] = os.getloadavg()
    write_report(out, results, info, args.quick, CASES)
    (out / "results.json").write_text(
        json.dumps({"machine": info, "cases": [r.__dict__ for r in results]}, indent=1, default=str)
    )
    progress(f"report written: {out / 'REPORT.md'} ({info['total seconds']:.0f} s)")
    failed = [r.name for r in results if any(n.startswith("failed") for n in r.notes)]
    if failed:
        print(f"failed cases: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
