"""Run the benchmark cases; print their tables and write ``REPORT.md``, figures, JSON.

usage: python -m benchmarks.run [--quick] [--targets] [--only NAME ...] [--out DIR]
                                [--regime {one-thread,default,busy} ...]
                                [--report-only] [--sync-readme]

Every case runs once per regime given, the regimes one after the other (by default
``one-thread``, ``default`` and ``busy``), into one ``results.json`` and one ``REPORT.md``
whose headline evaluates every target of ``benchmarks/targets.py`` in every regime;
``--targets`` runs only the cases and sizes those targets read.
``--quick`` runs every case at its smallest size, three rounds (CI), and writes to
``benchmarks/results/quick/`` (git-ignored), never over the committed full report.
``--report-only`` re-renders ``REPORT.md`` from the ``results.json`` in ``--out``;
``--sync-readme`` copies the report's headline block into README.md between its
``<!-- bench:begin -->`` and ``<!-- bench:end -->`` lines. The environment is recorded as
found: thread pools and BLAS come from threadpoolctl, and variables such as
``OPENBLAS_NUM_THREADS`` are the caller's to set.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from . import (
    case_cholmod,
    case_fallback,
    case_gradients,
    case_pathways,
    case_posterior,
    case_r,
    case_regression,
    case_scaling,
    case_selinv,
    case_sweep,
)
from ._harness import REGIMES, Case, key, machine_info, progress, run_case, set_regime
from .case_gmrf import AR1, GRID
from .report import Pass, Run, case_section, load, readme_block, sync_readme, write_report
from .targets import TARGETS

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
        case_fallback.CASE,
    )
}
RESULTS = Path(__file__).resolve().parent / "results"
README = RESULTS.parent.parent / "README.md"
#: The regimes of a run when ``--regime`` is not given: issue 15's targets hold in all three.
DEFAULT_REGIMES = ("one-thread", "default", "busy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smallest sizes, three rounds")
    parser.add_argument(
        "--only", nargs="+", choices=list(CASES), metavar="NAME", help=f"of {', '.join(CASES)}"
    )
    parser.add_argument(
        "--targets",
        action="store_true",
        help="only the cases and sizes that benchmarks/targets.py evaluates (full runs)",
    )
    parser.add_argument("--out", type=Path, default=None, help="output directory")
    parser.add_argument(
        "--regime",
        nargs="+",
        choices=list(REGIMES),
        default=list(DEFAULT_REGIMES),
        metavar="REGIME",
        help="one or more, run one after the other: "
        + "; ".join(f"{k}: {v}" for k, v in REGIMES.items()),
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="re-render REPORT.md and the figures from the results.json in --out",
    )
    parser.add_argument(
        "--sync-readme",
        action="store_true",
        help="copy the headline block of the results.json in --out (default: the committed "
        "one) into README.md, between its bench:begin and bench:end lines",
    )
    args = parser.parse_args(argv)
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    if args.report_only or args.sync_readme:
        run = load(json.loads((out / "results.json").read_text()))
        if args.report_only:
            write_report(out, run, CASES)
            progress(f"report re-rendered: {out / 'REPORT.md'}")
        if args.sync_readme:
            if run.quick:
                parser.error(f"{out / 'results.json'} is a quick run: not for the README")
            changed = sync_readme(README, readme_block(run))
            progress(f"{README}: {'updated' if changed else 'already in step'}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    regimes = list(dict.fromkeys(args.regime))
    command = " ".join(
        ["python -m benchmarks.run"]
        + (["--quick"] if args.quick else [])
        + (["--targets"] if args.targets else [])
        + (["--only", *args.only] if args.only else [])
        + ["--regime", *regimes]
    )
    run = Run([], args.quick, command)
    progress(f"benchmarks ({'quick' if args.quick else 'full'}, {', '.join(regimes)}) → {out}")
    for regime in regimes:
        set_regime(regime)
        info = machine_info()
        progress(f"regime {regime}: {REGIMES[regime]}")
        blas = info["CHOLMOD's BLAS"]
        progress(f"thread pools: {info['thread pools']}; CHOLMOD's BLAS: {blas}")
        t0 = time.perf_counter()
        results = []
        names = args.only or [n for n in CASES if not args.targets or n in TARGETED]
        for name in names:
            case = for_targets(CASES[name], regime) if args.targets else CASES[name]
            progress(f"case {name} ({regime}): {case.title}")
            results.append(run_case(case, args.quick))
            print("\n".join(case_section(results[-1], "", regime)), flush=True)
        info["total seconds"] = time.perf_counter() - t0
        info["load average after"] = os.getloadavg()
        run.passes.append(Pass(regime, info, results))
    set_regime("default")
    write_report(out, run, CASES)
    (out / "results.json").write_text(json.dumps(run.as_dict(), indent=1, default=str))
    total = sum(p.machine["total seconds"] for p in run.passes)
    progress(f"report written: {out / 'REPORT.md'} ({total:.0f} s)")
    failed = [f"{r.name} ({p.regime})" for p in run.passes for r in p.cases if _failed(r)]
    if failed:
        print(f"failed cases: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


#: The cases some target reads.
TARGETED = {t.case for t in TARGETS}


def for_targets(case: Case, regime: str) -> Case:
    """``case`` with only the parameter values some target admits in ``regime`` (all of
    them in a quick run): a full ``--targets`` run times every figure the targets need and
    nothing else."""
    mine = [t for t in TARGETS if t.case == case.name]

    def params(quick: bool) -> list:
        values = list(case.params(quick))
        if quick:
            return values
        return [p for p in values if any(t.sizes(key(p), regime) for t in mine)]

    return dataclasses.replace(case, params=params)


def _failed(res) -> bool:
    return any(n.startswith("failed") for n in res.notes)


if __name__ == "__main__":
    sys.exit(main())
