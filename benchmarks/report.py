"""Markdown report, headline and figures from the cases' results."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from . import targets
from ._harness import Result, fmt_ratio

ANALYSIS = Path(__file__).resolve().parent / "analysis.md"
#: The README's block of headline figures lies between these lines; ``python -m
#: benchmarks.run --sync-readme`` writes it, ``tests/test_readme_bench.py`` checks it.
README_BEGIN, README_END = "<!-- bench:begin -->", "<!-- bench:end -->"
#: What each regime's column is called.
REGIME_LABELS = {
    "one-thread": "one thread, CPU",
    "default": "default threads, wall",
    "busy": "busy machine, wall",
}


@dataclass
class Pass:
    """The cases of one regime, with the machine as recorded before it."""

    regime: str
    machine: dict
    cases: list[Result]

    def by_name(self) -> dict[str, Result]:
        return {r.name: r for r in self.cases}


@dataclass
class Run:
    """A whole run: its passes (one per regime), whether quick, the command."""

    passes: list[Pass]
    quick: bool = False
    command: str = "python -m benchmarks.run"

    def as_dict(self) -> dict:
        return {
            "format": 2,
            "quick": self.quick,
            "command": self.command,
            "passes": [
                {"regime": p.regime, "machine": p.machine, "cases": [r.__dict__ for r in p.cases]}
                for p in self.passes
            ],
        }

    def pass_of(self, regime: str) -> Pass | None:
        return next((p for p in self.passes if p.regime == regime), None)


def _result(c: dict) -> Result:
    known = {f.name for f in fields(Result)}
    return Result(**{k: v for k, v in c.items() if k in known})


def load(saved: dict) -> Run:
    """A run from ``results.json``: this format (``passes``) or the earlier one (one
    regime: ``machine`` and ``cases``, the regime in the machine's record, if at all)."""
    if "passes" in saved:
        passes = [
            Pass(p["regime"], p["machine"], [_result(c) for c in p["cases"]])
            for p in saved["passes"]
        ]
        return Run(passes, saved.get("quick", False), saved.get("command", Run.command))
    machine = saved.get("machine", {})
    regime = str(machine.get("regime", "unrecorded")).split(":")[0]
    command = Run.command + (f" --regime {regime}" if "regime" in machine else "")
    return Run(
        [Pass(regime, machine, [_result(c) for c in saved.get("cases", [])])], False, command
    )


def md_table(columns: list[str], rows: list[dict]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "–")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _cell(m: targets.Measured, with_where: bool = True) -> str:
    if m.worst is None:
        return f"– ({m.missing})"
    where = f", {m.where}" if with_where and m.where else ""
    if m.met:
        return f"{fmt_ratio(m.worst)} ✓{where}"
    more = f"; {len(m.misses) - 1} more" if m.misses and len(m.misses) > 1 else ""
    return f"**{fmt_ratio(m.worst)} ✗**{where}{more}"


def targets_table(run: Run) -> str:
    """Every target of :data:`benchmarks.targets.TARGETS` in every regime of the run: the
    worst ratio (median, quartiles) and where, ✓ met or ✗ not; then the library's time in
    each regime against one thread."""
    regimes = [p.regime for p in run.passes]
    cases = {p.regime: p.by_name() for p in run.passes}
    rows = []
    for t in targets.TARGETS:
        goals = dict.fromkeys(t.goal_text(r) for r in regimes)
        row = {"target": f"{t.what} (#{t.issue})", "goal": " / ".join(goals)}
        for r in regimes:
            row[_label(r)] = _cell(targets.measure(t, r, cases[r], run.quick))
        rows.append(row)
    base = cases.get("one-thread")
    if base is not None and len(regimes) > 1:
        row = {
            "target": "no case slower than with one thread (ours: regime / one thread, worst)",
            "goal": f"≤ {targets.NOT_SLOWER_TOLERANCE:.3g}",
        }
        for r in regimes:
            if r == "one-thread":
                continue
            found = [
                w
                for t in targets.TARGETS
                if (w := targets.slower_than_one_thread(t, r, cases[r], base, run.quick))
            ]
            if not found:
                row[_label(r)] = "– (nothing to compare)"
                continue
            worst, where = max(found)
            ok = worst <= targets.NOT_SLOWER_TOLERANCE
            row[_label(r)] = f"{fmt_ratio(worst)} {'✓' if ok else '✗'}, {where}"
        rows.append(row)
    return md_table(["target", "goal", *map(_label, regimes)], rows)


def _label(regime: str) -> str:
    return REGIME_LABELS.get(regime, regime)


def versus_r(run: Run) -> tuple[str, list[str]]:
    """R / ours per problem, size and operation, one column per regime (the ``r`` case),
    and the R sessions' versions; ("", []) when no pass ran R."""
    cols: dict[str, dict] = {}
    versions: list[str] = []
    order: dict[tuple[str, str], dict] = {}
    for p in run.passes:
        res = p.by_name().get("r")
        if res is None:
            continue
        versions += [n for n in res.notes if n.startswith("R session") and n not in versions]
        for key, d in res.data.items():
            if not isinstance(d, dict) or "samples" not in d:
                continue
            ops = dict.fromkeys(k.split(" ", 1)[1] for k in d["samples"] if k.startswith("R "))
            for op in ops:
                ratio = targets.paired_ratio(d["samples"], f"R {op}", f"ours {op}")
                if ratio is None:
                    continue
                kind, _, n = key.rpartition("|")
                row = order.setdefault(
                    (key, op),
                    {
                        "problem": "AR(1)+noise" if kind == "ar1" else kind,
                        "n": f"{int(n):,}" if n.isdigit() else n,
                        "operation": op.replace("_", " ").replace("logpdf", "`dwnorm`"),
                    },
                )
                row[_label(p.regime)] = fmt_ratio(ratio)
                cols[_label(p.regime)] = None
    if not order:
        return "", []
    return md_table(["problem", "n", "operation", *cols], list(order.values())), versions


def readme_block(run: Run) -> str:
    """The README's headline figures, all from this run: provenance, the targets table,
    R / ours. The same text is a section of ``REPORT.md``."""
    first = run.passes[0].machine if run.passes else {}
    last = run.passes[-1].machine if run.passes else {}
    blas = first.get("CHOLMOD's BLAS", first.get("cholmod_blas", "not recorded"))
    before = first.get("load average before", first.get("loadavg_before"))
    after = last.get("load average after", last.get("loadavg_after"))
    load = ""
    if before is not None and after is not None:
        load = f"; load average {before[0]:.1f} before, {after[0]:.1f} after"
    regimes = ", ".join(f"`{p.regime}`" for p in run.passes)
    lines = [
        f"Measured by `{run.command}` on {first.get('date', 'an unrecorded date')} "
        f"({first.get('cores', '?')} cores, CHOLMOD's BLAS: {blas}{load}; regimes {regimes})"
        + (" — a QUICK run, smallest sizes only: not the targets' sizes" if run.quick else "")
        + ". Each cell: the worst case of the target, as the median of the round-by-round "
        "ratios (quartiles in brackets); ✓ met, ✗ not met.",
        "",
        targets_table(run),
        "",
    ]
    table, versions = versus_r(run)
    if table:
        said = "; ".join(v.removeprefix("R session: ").rstrip(".") for v in versions)
        lines += [
            f"R's WoodburyMatrix against ours, interleaved in the same run (the `r` case; "
            f"{said}): R / ours, median of the rounds (quartiles).",
            "",
            table,
            "",
        ]
    else:
        ran = [r for p in run.passes if (r := p.by_name().get("r")) is not None]
        failed = [n for r in ran for n in r.notes if n.startswith("failed")]
        why = "the `r` case was not part of this run"
        if failed:
            last = [line for line in failed[0].splitlines() if line.strip("`").strip()][-1]
            why = f"the `r` case did not run: {last.strip()}"
        lines += [f"No comparison with R: {why}.", ""]
    return "\n".join(lines).strip() + "\n"


def case_section(res: Result, doc: str, regime: str = "") -> list[str]:
    """Markdown lines of one case: title, description, tables and notes."""
    where = f", {regime}" if regime else ""
    cpu = f", {res.cpu_seconds:.0f} s CPU" if res.cpu_seconds else ""
    lines = [f"## {res.title} (`{res.name}`{where}, {res.seconds:.0f} s{cpu})", ""]
    lines += [doc.strip(), ""] if doc.strip() else []
    for tab in res.tables:
        lines += [tab["caption"], "", md_table(tab["columns"], tab["rows"]), ""]
    for note in res.notes:
        lines += [note if note.startswith("failed") else f"- {note}", ""]
    return lines


def _machine_rows(run: Run) -> list[dict]:
    rows = [{"item": k, "value": f"`{v}`"} for k, v in run.passes[0].machine.items()]
    for p in run.passes[1:]:
        for k in ("regime", "load average before", "load average after", "total seconds"):
            if k in p.machine:
                rows.append({"item": f"{k} ({p.regime})", "value": f"`{p.machine[k]}`"})
    return rows


def render(run: Run, cases: dict, out: Path | None = None) -> str:
    """``REPORT.md`` of a run; with ``out``, the first pass's figures are drawn there."""
    total = sum(
        float(p.machine.get("total seconds", p.machine.get("total_seconds", 0))) for p in run.passes
    )
    date = run.passes[0].machine.get("date", "date not recorded") if run.passes else ""
    lines = [
        "# woodbury_sparse benchmark report"
        + (" (QUICK run: smallest sizes)" if run.quick else ""),
        "",
        f"Generated by `{run.command}` ({date}, {total:.0f} s). Every case times our "
        "operators and their baselines in the same process, interleaved round by round; "
        "times are medians, ratios the median of the per-round ratios with their quartiles "
        "in brackets. Ratios are the result, absolute times only context.",
        "",
        "## Machine, libraries, BLAS",
        "",
        md_table(["item", "value"], _machine_rows(run)) if run.passes else "(no cases run)",
        "",
        "## Headline (the README's performance figures)",
        "",
        "Targets: `benchmarks/targets.py`. Goals are issue 15's for one BLAS thread and CPU "
        "time; with default thread pools (wall time, idle or with one CPU-bound competitor) "
        "the same ratios must hold within 1.5×, the second goal.",
        "",
        readme_block(run).strip(),
        "",
    ]
    if ANALYSIS.exists() and not run.quick:
        lines += [ANALYSIS.read_text().strip(), ""]
    drawn: set[str] = set()  # a case's figure: from the first regime whose results draw it
    for p in run.passes:
        regime = f"regime `{p.regime}`" if len(run.passes) > 1 else ""
        for res in p.cases:
            case = cases.get(res.name)
            lines += case_section(res, case.doc if case else "", regime)
            if out is None or case is None or case.figure is None or res.name in drawn:
                continue
            if any(n.startswith("failed") for n in res.notes):
                continue
            try:
                case.figure(res, out / f"{res.name}.png")
            except Exception as exc:  # a figure never breaks the report
                if p is run.passes[-1]:
                    lines += [f"(no figure: {exc!r})", ""]
                continue
            drawn.add(res.name)
            lines += [f"![{res.title}]({res.name}.png)", ""]
    return "\n".join(lines) + "\n"


def write_report(out: Path, run: Run, cases: dict) -> None:
    """``REPORT.md`` and the figures of the first regime, into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    (out / "REPORT.md").write_text(render(run, cases, out))


def sync_readme(readme: Path, block: str) -> bool:
    """Put ``block`` between the README's markers; True when the README changed."""
    text = readme.read_text(encoding="utf-8")
    if text.count(README_BEGIN) != 1 or text.count(README_END) != 1:
        raise ValueError(
            f"{readme} must hold exactly one {README_BEGIN!r} line and one {README_END!r} line"
        )
    head, rest = text.split(README_BEGIN)
    _, tail = rest.split(README_END)
    new = f"{head}{README_BEGIN}\n{block}{README_END}{tail}"
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def readme_section(readme: Path) -> str:
    """The README's text between the markers (what :func:`sync_readme` last wrote)."""
    text = readme.read_text(encoding="utf-8")
    return text.split(README_BEGIN, 1)[1].split(README_END, 1)[0].removeprefix("\n")


def plot(path, panels, xlabel: str, ylabel: str, xscale="log", yscale="log") -> None:
    """Line figures side by side: ``panels = [(title, series, lines)]``, ``series`` a list
    of ``(label, xs, ys, style)`` (NaNs skipped), ``lines`` of ``(y, label)``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, (title, series, lines) in zip(axes[0], panels, strict=True):
        for label, xs, ys, style in series:
            ok = np.isfinite(np.asarray(ys, dtype=float))
            if ok.any():
                ax.plot(np.asarray(xs)[ok], np.asarray(ys, dtype=float)[ok], style, label=label)
        for y, label in lines:
            ax.axhline(y, color="grey", ls=":", label=label)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel, yscale=yscale)
        if xscale != "linear":  # a linear scale set anew would drop categorical ticks
            ax.set_xscale(xscale)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
