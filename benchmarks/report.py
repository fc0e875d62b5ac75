"""Markdown report, headline and figures from the cases' results."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._harness import Result, Timings, fmt_ms, fmt_ratio

ANALYSIS = Path(__file__).resolve().parent / "analysis.md"

#: (measurement, case, parameter, our route, the ``r`` case's parameter and operation,
#: target speed-up over R). Baselines: the bare CHOLMOD floor, the dense route, or direct
#: inversion. R's figures come only from the ``r`` case of the same run (R and ours
#: interleaved, round by round), never from R timed separately.
HEADLINE = [
    ("AR(1)+noise n = 10⁶: `dwnorm` first", "ar1", "1000000", "logpdf first",
     ("ar1|1000000", "logpdf_first"), 3),
    ("AR(1)+noise n = 10⁶: `dwnorm` repeated", "ar1", "1000000", "logpdf repeated",
     ("ar1|1000000", "logpdf_repeated"), 3),
    ("AR(1)+noise n = 10⁶: `solve` repeated", "ar1", "1000000", "solve repeated",
     ("ar1|1000000", "solve_repeated"), 3),
    ("AR(1)+noise n = 10⁶: `slogdet` repeated", "ar1", "1000000", "slogdet repeated", None, None),
    ("regression n = 2000, p = 20: `dwnorm` first", "regression", "2000", "first",
     ("regression|2000", "logpdf_first"), None),
    ("regression n = 2000, p = 20: `dwnorm` repeated", "regression", "2000", "repeated",
     ("regression|2000", "logpdf_repeated"), None),
]  # fmt: skip
#: (route of the scaling case, what it is, target speed-up over `inv` at N = 1000)
SCALING_TARGETS = [
    ("dense", "Woodbury dense update", 10),
    ("lazy", "lazy build + one solve", 100),
    ("reused", "lazy solve with the operator built", 100),
]
#: AR(1): every call within this factor of its CHOLMOD floor
FLOOR_TARGETS = {"first": 1.5, "repeated": 1.3}


def md_table(columns: list[str], rows: list[dict]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "–")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _target(what: str, values: list[tuple[float, str]], goal: float, above: bool = True):
    """A target row: met when every value is ≥ ``goal`` (``above``), or ≤ it (then the
    values come worst first and only the worst is shown)."""
    ok = [v >= goal if above else v <= goal for v, _ in values]
    shown = "; ".join(f"{v:.2f}×" + (f" ({w})" if w else "") for v, w in values[: 1 + above * 99])
    misses = [f"{w} ({v:.2f})" for (v, w), good in zip(values, ok, strict=True) if w and not good]
    met = "yes" if all(ok) else "**partly**" if any(ok) else "**no**"
    return {
        "target": what,
        "value": shown if above else f"worst {shown}",
        "met": met + (": " + "; ".join(misses[:6]) if misses else ""),
    }


def _versus_r(results: dict[str, Result], key) -> tuple[float, float, float] | None:
    """R / ours (median, quartiles) from the ``r`` case of this run, or None without it."""
    res = results.get("r")
    if key is None or res is None or key[0] not in res.data:
        return None
    t = Timings(res.data[key[0]]["samples"])
    ratio = t.ratio(f"R {key[1]}", f"ours {key[1]}")
    return ratio if np.isfinite(ratio[0]) else None


def headline(results: dict[str, Result]) -> tuple[list[dict], list[dict]]:
    """The headline table (ours against the baselines and R) and the targets of issue 5."""
    rows, targets = [], []

    def medians(case: str, param: str) -> dict[str, float]:
        res = results.get(case)
        return res.data.get(param, {}).get("median", {}) if res else {}

    for what, case, param, route, r_key, goal in HEADLINE:
        t, base = medians(case, param), "floor" if case == "ar1" else "dense"
        if f"ours {route}" in t:
            ours, other = t[f"ours {route}"], t.get(f"{base} {route}")
            versus = _versus_r(results, r_key)
            rows.append(
                {
                    "measurement": what,
                    "ours (ms)": fmt_ms(ours),
                    "baseline (ms)": f"{base} {fmt_ms(other)}" if other else "cached",
                    "R / ours, interleaved (r case)": fmt_ratio(versus) if versus else "–",
                }
            )
            if goal and versus:
                targets.append(_target(f"≥ {goal}× faster than R: {what}", [(versus[0], "")], goal))
    for route, label, goal in SCALING_TARGETS:
        values = []
        for regime, threads in (("default", "default threads"), ("one thread", "one thread")):
            if t := medians("scaling", f"{regime}|1000"):
                values.append((t["direct"] / t[route], threads))
                rows.append(
                    {
                        "measurement": f"N = 1000, D = 5, {threads}: {label} vs `inv`",
                        "ours (ms)": fmt_ms(t[route]),
                        "baseline (ms)": f"direct {fmt_ms(t['direct'])}",
                    }
                )
        if values:
            what = f"{label} ≥ {goal}× faster than direct inversion at N = 1000"
            targets.append(_target(what, values, goal))
    ar1 = results["ar1"].data.items() if "ar1" in results else ()
    for which, goal in FLOOR_TARGETS.items():
        ratios = []
        for n, d in ar1:
            t = Timings(d["samples"])
            for op in dict.fromkeys(k.split()[1] for k in t.samples if "construct" not in k):
                if f"floor {op} {which}" in t.samples:
                    r = t.ratio(f"ours {op} {which}", f"floor {op} {which}")[0]
                    ratios.append((r, f"{op} n = {int(n):,}"))
        if ratios:
            what = f"AR(1): every {which} call within {goal}× of its CHOLMOD floor"
            targets.append(_target(what, sorted(ratios, reverse=True), goal, above=False))
    return rows, targets


def case_section(res: Result, doc: str) -> list[str]:
    """Markdown lines of one case: title, description, tables and notes."""
    lines = [f"## {res.title} (`{res.name}`, {res.seconds:.0f} s)", ""]
    lines += [doc.strip(), ""] if doc.strip() else []
    for tab in res.tables:
        lines += [tab["caption"], "", md_table(tab["columns"], tab["rows"]), ""]
    for note in res.notes:
        lines += [note if note.startswith("failed") else f"- {note}", ""]
    return lines


def write_report(out: Path, results: list[Result], info: dict, quick: bool, cases) -> None:
    import matplotlib

    matplotlib.use("Agg")
    by_name = {r.name: r for r in results}
    lines = [
        "# woodbury_sparse benchmark report" + (" (QUICK run: smallest sizes)" if quick else ""),
        "",
        "Generated by `python -m benchmarks.run" + (" --quick" if quick else "") + "` "
        f"({info['date']}, {info.get('total seconds', 0):.0f} s). Every case times our "
        "operators and their baselines in the same process, interleaved round by round; "
        "times are medians, ratios the median of the per-round ratios with their quartiles "
        "in brackets. Ratios are the result, absolute times only context.",
        "",
        "## Machine, libraries, BLAS",
        "",
        md_table(["item", "value"], [{"item": k, "value": f"`{v}`"} for k, v in info.items()]),
        "",
    ]
    head, targets = headline(by_name)
    if head:
        lines += ["## Headline", "", md_table(list(head[0]), head), ""]
    if targets:
        lines += ["## Targets (issue 5)", "", md_table(["target", "value", "met"], targets), ""]
    if ANALYSIS.exists() and not quick:
        lines += [ANALYSIS.read_text().strip(), ""]
    for res in results:
        case = cases[res.name]
        lines += case_section(res, case.doc)
        if case.figure is None or any(n.startswith("failed") for n in res.notes):
            continue
        try:
            case.figure(res, out / f"{res.name}.png")
            lines += [f"![{res.title}]({res.name}.png)", ""]
        except Exception as exc:  # a figure never breaks the report
            lines += [f"(figure failed: {exc!r})", ""]
    (out / "REPORT.md").write_text("\n".join(lines) + "\n")


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
