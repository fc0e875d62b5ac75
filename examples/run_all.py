"""Run every example (``make demo``); figures go to ``examples/output/``.

``python examples/run_all.py --quick`` runs them at small sizes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = [
    "quickstart",
    "regression",
    "ar1_noise",
    "several_terms",
    "scipy_interop",
    "mauna_loa",
    "sids_icar",
    "gene_network",
    "pbmc_pathways",
    "dask_scaling",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--outdir", type=Path, default=HERE / "output")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(HERE))
    for name in EXAMPLES:
        print(f"\n=== examples/{name}.py " + "=" * (60 - len(name)), flush=True)
        start = time.perf_counter()
        importlib.import_module(name).main(quick=args.quick, outdir=args.outdir)
        print(f"--- {name}: {time.perf_counter() - start:.1f} s", flush=True)
    figures = sorted(p.name for p in args.outdir.glob("*.png"))
    print(f"\nfigures in {args.outdir}: {', '.join(figures) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
