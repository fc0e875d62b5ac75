"""The README's performance figures are the committed benchmark report's.

The block between ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` must be exactly what
``benchmarks/results/results.json`` renders, and a section of the committed ``REPORT.md``.
After a benchmark run: ``python -m benchmarks.run --sync-readme`` (``make bench`` does it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

report = pytest.importorskip("benchmarks.report")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


@pytest.fixture(scope="module")
def block() -> str:
    return report.readme_block(report.load(json.loads((RESULTS / "results.json").read_text())))


def test_the_readme_block_is_what_the_committed_results_render(block):
    assert report.readme_section(ROOT / "README.md") == block, (
        "README.md's benchmark block differs from benchmarks/results/results.json: run "
        "`python -m benchmarks.run --sync-readme` and commit README.md"
    )


def test_the_committed_report_holds_the_same_block(block):
    assert block.strip() in (RESULTS / "REPORT.md").read_text(encoding="utf-8"), (
        "benchmarks/results/REPORT.md is not rendered from results.json: run "
        "`python -m benchmarks.run --report-only`"
    )


def test_the_committed_report_is_a_full_run():
    saved = json.loads((RESULTS / "results.json").read_text())
    assert not saved.get("quick", False)
