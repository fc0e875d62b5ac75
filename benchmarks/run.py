"""Run the benchmark suite and write ``REPORT.md``, figures and ``results.json``.

usage: python -m benchmarks.run [--quick] [--only NAME ...] [--out DIR] [--report-only]

``--quick`` runs every case once at its smallest size (CI) and writes to
``benchmarks/results/quick/`` (git-ignored), never over the committed full report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

from . import (
    case_ar1,
    case_cholmod,
    case_grid,
    case_pathways,
    case_peer,
    case_regression,
    case_scaling,
    case_sweep,
)
from ._harness import CaseResult, machine_info, progress
from .report import write_report

CASES = {
    m.NAME: m
    for m in (
        case_scaling,
        case_regression,
        case_ar1,
        case_grid,
        case_sweep,
        case_pathways,
        case_peer,
        case_cholmod,
    )
}
RESULTS = Path(__file__).resolve().parent / "results"
_BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _reexec_without_coretype(argv: list[str]) -> None:
    """Full runs only: numpy's OpenBLAS runs slower kernels with these set (see the env
    notes), so the run restarts itself once with both unset, in this command alone."""
    if any(k in os.environ for k in _BLAS_ENV) and not os.environ.get("WOODBURY_BENCH_REEXEC"):
        env = {k: v for k, v in os.environ.items() if k not in _BLAS_ENV}
        env["WOODBURY_BENCH_REEXEC"] = ",".join(f"{k}={os.environ.get(k, '')}" for k in _BLAS_ENV)
        print("restarting with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset", flush=True)
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks.run", *argv], env)


def run_cases(names: list[str], quick: bool) -> list[CaseResult]:
    results = []
    for name in names:
        module = CASES[name]
        progress(f"case {name}: {module.TITLE}")
        t0 = time.perf_counter()
        try:
            res = module.run(quick=quick)
        except Exception:  # a broken case is reported, the others still run
            res = CaseResult(name, module.TITLE)
            res.notes.append("failed:\n\n```\n" + traceback.format_exc() + "```")
            print(traceback.format_exc(), file=sys.stderr, flush=True)
        res.seconds = time.perf_counter() - t0
        res.data["loadavg_after"] = os.getloadavg()
        progress(f"case {name}: done in {res.seconds:.1f} s")
        results.append(res)
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smallest sizes, one repeat")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(CASES),
        metavar="NAME",
        help=f"cases to run (of {', '.join(CASES)})",
    )
    parser.add_argument("--out", type=Path, default=None, help="output directory")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="re-render REPORT.md and the figures from the results.json in --out",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
        saved = json.loads((out / "results.json").read_text())
        results = [CaseResult(**c) for c in saved["cases"]]
        write_report(out, results, saved["machine"], quick=args.quick, modules=CASES)
        progress(f"report re-rendered: {out / 'REPORT.md'}")
        return 0
    if not args.quick:
        _reexec_without_coretype(argv)
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(CASES)
    info = machine_info()
    info["loadavg_before"] = os.getloadavg()
    info["reexec"] = os.environ.get("WOODBURY_BENCH_REEXEC")
    progress(f"benchmarks ({'quick' if args.quick else 'full'}) → {out}")
    t0 = time.perf_counter()
    results = run_cases(names, args.quick)
    info["total_seconds"] = time.perf_counter() - t0
    info["loadavg_after"] = os.getloadavg()
    write_report(out, results, info, quick=args.quick, modules=CASES)
    (out / "results.json").write_text(
        json.dumps({"machine": info, "cases": [r.__dict__ for r in results]}, indent=1, default=str)
    )
    progress(f"report written: {out / 'REPORT.md'}")
    failed = [r.name for r in results if any(n.startswith("failed") for n in r.notes)]
    if failed:
        print(f"failed cases: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
