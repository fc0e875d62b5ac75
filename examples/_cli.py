"""The command line every example shares: ``python examples/NAME.py [--quick] [--outdir D]``."""

from __future__ import annotations

import argparse
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "output"


def run_example(main, description: str | None) -> None:
    """Parse ``--quick`` and ``--outdir`` and call ``main(quick=..., outdir=...)``."""
    parser = argparse.ArgumentParser(description=(description or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--outdir", type=Path, default=OUTPUT, help="where figures go")
    args = parser.parse_args()
    main(quick=args.quick, outdir=args.outdir)
