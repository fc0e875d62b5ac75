"""Markdown report, headline and figures from the cases' results."""

from __future__ import annotations

from pathlib import Path

from ._harness import Result, Timings, fmt_ms, fmt_ratio
from .case_gmrf import OPS

ANALYSIS = Path(__file__).resolve().parent / "analysis.md"

#: (measurement, case, parameter, our route, baseline route, R's WoodburyMatrix 0.0.4 in ms
#: on the development machine (issue 5), target speed-up over R). Baselines: the bare
#: CHOLMOD floor, the dense route, or direct inversion.
HEADLINE = [
    ("AR(1)+noise n = 10⁶: `dwnorm` first", "ar1", "1000000", "logpdf first", 1406, 3),
    ("AR(1)+noise n = 10⁶: `dwnorm` repeated", "ar1", "1000000", "logpdf repeated", 415, 3),
    ("AR(1)+noise n = 10⁶: `solve` repeated", "ar1", "1000000", "solve repeated", 101, 3),
    ("AR(1)+noise n = 10⁶: `slogdet` repeated", "ar1", "1000000", "slogdet repeated", 117, 3),
    ("regression n = 2000, p = 20: `dwnorm` first", "regression", "2000", "first", 14, None),
    ("regression n = 2000, p = 20: `dwnorm` repeated", "regression", "2000", "repeated", 1.7, None),
]
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
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _medians(results: dict[str, Result], case: str, param: str) -> dict[str, float]:
    res = results.get(case)
    return res.data.get(param, {}).get("median", {}) if res else {}


def headline(results: dict[str, Result]) -> tuple[list[dict], list[dict]]:
    """The headline table (ours against the baselines and R) and the targets of issue 5."""
    rows, targets = [], []
    for what, case, param, route, r_ms, goal in HEADLINE:
        t = _medians(results, case, param)
        base = "floor" if case == "ar1" else "dense"
        if f"ours {route}" not in t:
            continue
        ours, other = t[f"ours {route}"], t.get(f"{base} {route}")
        rows.append(
            {
                "measurement": what,
                "ours (ms)": fmt_ms(ours),
                "baseline (ms)": f"{base} {fmt_ms(other)}" if other else "cached",
                "R WoodburyMatrix (ms)": r_ms,
                "speed-up vs R": fmt_ratio(r_ms / (ours * 1e3)),
            }
        )
        if goal:
            ok = r_ms / (ours * 1e3) >= goal
            targets.append(
                {
                    "target": f"≥ {goal}× faster than R: {what}",
                    "value": fmt_ratio(r_ms / (ours * 1e3)) + "×",
                    "met": "yes" if ok else "**no**",
                }
            )
    sc = results.get("scaling")
    for route, label, goal in SCALING_TARGETS:
        values = []
        for regime in ("default", "one thread"):
            data = sc.data.get(f"{regime}|1000") if sc else None
            if not data:
                continue
            t = data["median"]
            values.append((t["direct"] / t[route], regime))
            rows.append(
                {
                    "measurement": f"N = 1000, D = 5, {regime} threads: {label} vs `inv`",
                    "ours (ms)": fmt_ms(t[route]),
                    "baseline (ms)": f"direct {fmt_ms(t['direct'])}",
                    "R WoodburyMatrix (ms)": "–",
                    "speed-up vs R": "–",
                }
            )
        if values:
            met = [v >= goal for v, _ in values]
            targets.append(
                {
                    "target": f"{label} ≥ {goal}× faster than direct inversion at N = 1000",
                    "value": "; ".join(f"{v:.1f}× ({r})" for v, r in values),
                    "met": "yes" if all(met) else ("**partly**" if any(met) else "**no**"),
                }
            )
    ar1 = results.get("ar1")
    for which, goal in FLOOR_TARGETS.items():
        ratios = [
            (Timings(d["samples"]).ratio(k, k.replace("ours", "floor"))[0], f"{op} n = {int(n):,}")
            for n, d in (ar1.data.items() if ar1 else ())
            for op in OPS[1:]
            for k in [f"ours {op} {which}"]
            if k.replace("ours", "floor") in d["samples"]
        ]
        if ratios:
            ratios.sort(reverse=True)
            misses = [f"{w} ({r:.2f})" for r, w in ratios if r > goal]
            targets.append(
                {
                    "target": f"AR(1): every {which} call within {goal}× of its CHOLMOD floor",
                    "value": f"worst {ratios[0][0]:.2f}× ({ratios[0][1]})",
                    "met": "yes" if not misses else "**no**: " + "; ".join(misses[:6]),
                }
            )
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
