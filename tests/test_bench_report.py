"""The benchmark report renders from saved results, old and new, and evaluates every target.

The fixture ``tests/data/bench_quick_results.json`` is the ``results.json`` of a real quick
run, ``python -m benchmarks.run --quick --targets`` (three regimes), not written by hand
(only re-serialised without indentation); rerun that command and copy the file when the
cases' routes change."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

report = pytest.importorskip("benchmarks.report")
targets = pytest.importorskip("benchmarks.targets")
try:  # the cases time bare CHOLMOD through scikit-sparse 0.4's API (the benchmark environment)
    from benchmarks import run as run_module
except ImportError as error:  # no scikit-sparse, or 0.5 (no ``analyze``)
    pytest.skip(f"benchmarks.run does not import here: {error}", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "data" / "bench_quick_results.json"
COMMITTED = sorted((ROOT / "benchmarks" / "results").glob("**/results.json"))


@pytest.fixture(scope="module")
def quick_run():
    return report.load(json.loads(FIXTURE.read_text()))


def test_a_quick_run_re_renders_with_every_target_in_every_regime(quick_run, tmp_path):
    (tmp_path / "results.json").write_text(FIXTURE.read_text())
    assert run_module.main(["--report-only", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "REPORT.md").read_text()
    assert "QUICK run" in text
    head = text.split("## Headline", 1)[1].split("\n## ", 1)[0]
    for t in targets.TARGETS:
        assert f"{t.what} (#{t.issue})" in head
    for regime in ("one-thread", "default", "busy"):
        assert f"| {report.REGIME_LABELS[regime]} " in head
        assert f"regime `{regime}`" in text  # each regime's case sections
    assert "no case slower than with one thread" in head
    assert "no figure" not in text
    assert (tmp_path / "ar1.png").exists()


def test_every_target_is_measured_or_names_what_is_missing(quick_run):
    """A target whose routes a case does not time is shown as such (naming the route), never
    dropped; one that is measured shows a finite median inside its quartiles."""
    for p in quick_run.passes:
        cases = p.by_name()
        for t in targets.TARGETS:
            m = targets.measure(t, p.regime, cases, quick=True)
            if m.worst is None:
                assert m.missing.startswith(("route `", "case `")), (t.what, m.missing)
                assert m.missing in report._cell(m)
                continue
            assert math.isfinite(m.worst[0]) and m.worst[1] <= m.worst[0] <= m.worst[2]
            assert m.met == (not m.misses)


def test_the_quick_run_measures_the_targets_whose_routes_the_cases_time(quick_run):
    """Every target reads routes the cases time; R's where R was installed."""
    for p in quick_run.passes:
        cases = p.by_name()
        measured = {
            t.what for t in targets.TARGETS if targets.measure(t, p.regime, cases, True).worst
        }
        assert {t.what for t in targets.TARGETS if t.case != "r"} <= measured
        if any(n.startswith("R session") for n in cases["r"].notes):
            assert {t.what for t in targets.TARGETS if t.case == "r"} <= measured


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_results_re_render(path, tmp_path):
    """Every committed results.json, whatever format it was written in."""
    run = report.load(json.loads(path.read_text()))
    text = report.render(run, run_module.CASES)
    assert text.startswith("# woodbury_sparse benchmark report")
    assert report.readme_block(run).strip() in text


def test_the_earlier_single_regime_format_loads():
    saved = {
        "machine": {"regime": "one-thread: one BLAS thread", "date": "d"},
        "cases": [{"name": "sweep", "title": "t", "data": {}, "notes": [], "seconds": 1.0}],
    }
    run = report.load(saved)
    assert [p.regime for p in run.passes] == ["one-thread"]
    assert run.passes[0].cases[0].name == "sweep"
    m = targets.measure(targets.TARGETS[0], "one-thread", run.passes[0].by_name())
    assert m.worst is None and m.missing == "case `ar1` not run"


def test_paired_ratio_takes_the_fastest_denominator_round_by_round():
    samples = {"ours": [2.0, 4.0, 6.0], "a": [1.0, 8.0, 3.0], "b": [4.0, 2.0], "c": []}
    # rounds 0 and 1 (b ran two): min(a, b) = 1, 2 → ratios 2, 2
    assert targets.paired_ratio(samples, "ours", ("a", "b")) == (2.0, 2.0, 2.0)
    assert targets.paired_ratio(samples, "ours", "a")[0] == pytest.approx(2.0)
    assert targets.paired_ratio(samples, "ours", "c") is None
    assert targets.paired_ratio(samples, "missing", "a") is None


def test_goals_loosen_by_relax_outside_one_thread():
    t = targets.Target(15, "x", "c", (("l", "n", "d"),), 1.2)
    assert t.goal_in("one-thread") == 1.2
    assert t.goal_in("busy") == pytest.approx(1.8)
    s = targets.Target(15, "x", "c", (("l", "n", "d"),), 10, at_least=True, relax=2)
    assert s.goal_in("default") == 5
    assert s.goal_text("default") == "≥ 5"


def _result(data: dict, name: str = "c"):
    return report.Result(name, "title", data=data)


def test_measure_reports_the_worst_case_and_every_miss():
    t = targets.Target(15, "x", "c", (("op", "ours", "floor"),), 1.5)
    data = {
        "10": {"samples": {"ours": [1.0, 1.0, 1.0], "floor": [1.0, 1.0, 1.0]}},
        "20": {"samples": {"ours": [3.0, 3.0, 3.0], "floor": [1.0, 1.0, 1.0]}},
        "30": {"samples": {"ours": [2.0, 2.0, 2.0], "floor": [1.0, 1.0, 1.0]}},
    }
    m = targets.measure(t, "one-thread", {"c": _result(data)})
    assert m.worst == (3.0, 3.0, 3.0) and m.where == "op, n = 20" and not m.met
    assert m.misses == ["op, n = 20 (3.00)", "op, n = 30 (2.00)"]
    assert targets.measure(t, "default", {"c": _result(data)}).misses == ["op, n = 20 (3.00)"]
    sized = targets.Target(15, "x", "c", t.pairs, 1.5, targets.n_at_least(15))
    assert targets.measure(sized, "one-thread", {"c": _result(data)}).count == 2
    assert targets.measure(sized, "one-thread", {"c": _result(data)}, quick=True).count == 3


def test_measure_names_a_route_the_case_did_not_time():
    t = targets.Target(15, "x", "c", (("op", "ours", "floor"),), 1.5)
    data = {"10": {"samples": {"ours": [1.0]}}}
    m = targets.measure(t, "one-thread", {"c": _result(data)})
    assert m.worst is None and m.met is None
    assert m.missing == "route `floor` not timed"
    assert "route `floor` not timed" in report._cell(m)


def test_the_library_is_compared_with_its_own_one_thread_time():
    t = targets.Target(15, "x", "c", (("op", "ours", "floor"),), 1.5)
    one = {"c": _result({"10": {"median": {"ours": 2.0, "floor": 1.0}}})}
    busy = {"c": _result({"10": {"median": {"ours": 3.0, "floor": 9.0}}})}
    assert targets.slower_than_one_thread(t, "busy", busy, one, False) == (1.5, "op, n = 10")
    speedup = targets.Target(5, "x", "c", (("op", "floor", "ours"),), 10, at_least=True)
    assert targets.slower_than_one_thread(speedup, "busy", busy, one, False)[0] == 1.5


def test_sync_readme_replaces_only_the_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_BEGIN}\nold\n{report.README_END}\nrest\n")
    assert report.sync_readme(readme, "new\n")
    assert readme.read_text() == f"intro\n{report.README_BEGIN}\nnew\n{report.README_END}\nrest\n"
    assert report.readme_section(readme) == "new\n"
    assert not report.sync_readme(readme, "new\n")


def test_sync_readme_needs_exactly_one_pair_of_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"{report.README_BEGIN}\n{report.README_BEGIN}\n{report.README_END}\n")
    with pytest.raises(ValueError, match="must hold exactly one '<!-- bench:begin -->' line"):
        report.sync_readme(readme, "x\n")


def test_a_quick_run_is_not_synced_into_the_readme(tmp_path, capsys):
    (tmp_path / "results.json").write_text(FIXTURE.read_text())
    with pytest.raises(SystemExit):
        run_module.main(["--sync-readme", "--out", str(tmp_path)])
    assert "is a quick run: not for the README" in capsys.readouterr().err


@pytest.mark.parametrize("regime", ["one-thread", "busy"])
def test_a_targets_run_times_exactly_the_sizes_some_target_reads(regime):
    harness = pytest.importorskip("benchmarks._harness")
    for name in sorted(run_module.TARGETED):
        case = run_module.CASES[name]
        mine = [t for t in targets.TARGETS if t.case == name]
        kept = run_module.for_targets(case, regime).params(False)
        for p in case.params(False):
            read = any(t.sizes(harness.key(p), regime) for t in mine)
            assert (p in kept) == read, (name, p)
        assert run_module.for_targets(case, regime).params(True) == list(case.params(True))
