"""Markdown report and figures from the cases' results."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._harness import CaseResult, fmt_ms, fmt_ratio

R_FIGURES = {  # R's WoodburyMatrix 0.0.4 on this machine, from issue 5 (milliseconds)
    "ar1_logpdf_first": 1406,
    "ar1_logpdf_repeated": 415,
    "ar1_solve_repeated": 101,
    "ar1_slogdet_repeated": 117,
    "reg_logpdf_first": 14,
    "reg_logpdf_repeated": 1.7,
}
ANALYSIS = Path(__file__).resolve().parent / "analysis.md"


def _md_table(columns: list[str], rows: list[dict]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _by_name(results: list[CaseResult]) -> dict[str, CaseResult]:
    return {r.name: r for r in results}


def headline(results: list[CaseResult]) -> tuple[list[dict], list[dict]]:
    """The headline table (ours vs R and the baselines) and the target checks."""
    res = _by_name(results)
    rows, targets = [], []
    ar1 = res.get("ar1")
    raw = ar1.data.get("raw", {}) if ar1 else {}
    n6 = "1000000"
    if f"{n6}|logpdf" in raw:
        for what, key, which, rkey in (
            ("AR(1)+noise n = 10⁶: `dwnorm` first", "logpdf", "first", "ar1_logpdf_first"),
            ("AR(1)+noise n = 10⁶: `dwnorm` repeated", "logpdf", "repeated", "ar1_logpdf_repeated"),
            ("AR(1)+noise n = 10⁶: `solve` repeated", "solve", "repeated", "ar1_solve_repeated"),
            (
                "AR(1)+noise n = 10⁶: `slogdet` repeated",
                "slogdet",
                "repeated",
                "ar1_slogdet_repeated",
            ),
        ):
            t = raw[f"{n6}|{key}"][which]
            ours, fl = t["ours"], t.get("floor")
            r_ms = R_FIGURES[rkey]
            rows.append(
                {
                    "measurement": what,
                    "ours (ms)": fmt_ms(ours),
                    "CHOLMOD floor (ms)": "cached" if key == "slogdet" else fmt_ms(fl),
                    "R WoodburyMatrix (ms)": r_ms,
                    "speed-up vs R": fmt_ratio(r_ms / (ours * 1e3)),
                }
            )
            ok = r_ms / (ours * 1e3) >= 3
            targets.append(
                {
                    "target": f"≥ 3× faster than R: {what}",
                    "value": fmt_ratio(r_ms / (ours * 1e3)) + "×",
                    "met": "yes" if ok else "**no**",
                }
            )
    reg = res.get("regression")
    rraw = reg.data.get("raw", {}) if reg else {}
    if "2000" in rraw:
        for which, rkey in (("first", "reg_logpdf_first"), ("repeated", "reg_logpdf_repeated")):
            ours = rraw["2000"][which]["ours"]
            dense = rraw["2000"][which].get("dense")
            rows.append(
                {
                    "measurement": f"regression n = 2000, p = 20: `dwnorm` {which}",
                    "ours (ms)": fmt_ms(ours),
                    "CHOLMOD floor (ms)": f"dense route {fmt_ms(dense)}",
                    "R WoodburyMatrix (ms)": R_FIGURES[rkey],
                    "speed-up vs R": fmt_ratio(R_FIGURES[rkey] / (ours * 1e3)),
                }
            )
    sc = res.get("scaling")
    regimes = {
        "default threads": sc.data.get("raw", {}) if sc else {},
        "one thread": sc.data.get("raw_one_thread", {}) if sc else {},
    }
    for key, label, goal in (
        ("dense", "Woodbury dense update", 10),
        ("lazy", "lazy build + one solve", 100),
        ("reused", "lazy solve with the operator built", 100),
    ):
        values = []
        for regime, sraw in regimes.items():
            t = sraw.get("1000")
            if not t or key not in t:
                continue
            sp = t["direct"] / t[key]
            values.append(f"{sp:.1f}× ({regime})")
            rows.append(
                {
                    "measurement": f"N = 1000, D = 5, {regime}: {label} vs `inv`",
                    "ours (ms)": fmt_ms(t[key]),
                    "CHOLMOD floor (ms)": f"direct {fmt_ms(t['direct'])}",
                    "R WoodburyMatrix (ms)": "–",
                    "speed-up vs R": "–",
                }
            )
        if values:
            met = [float(v.split("×")[0]) >= goal for v in values]
            targets.append(
                {
                    "target": f"{label} ≥ {goal}× faster than direct inversion at N = 1000",
                    "value": "; ".join(values),
                    "met": "yes" if all(met) else ("**no**" if not any(met) else "**partly**"),
                }
            )
    if raw:
        for which, goal in (("first", 1.5), ("repeated", 1.3)):
            worst = []
            for key, v in raw.items():
                n, op = key.split("|")
                if op.startswith("mem") or (op in ("construct", "slogdet") and which == "repeated"):
                    continue
                if op == "construct":
                    continue
                t = v[which]
                if t.get("floor") and np.isfinite(t["ours"]) and t["floor"] > 0:
                    worst.append((t["ours"] / t["floor"], f"{op} n = {int(n):,}"))
            if worst:
                bad = sorted(worst, reverse=True)
                misses = [f"{w} ({r:.2f})" for r, w in bad if r > goal]
                targets.append(
                    {
                        "target": f"AR(1): every {which} call within {goal}× of its CHOLMOD floor",
                        "value": f"worst {bad[0][0]:.2f}× ({bad[0][1]})",
                        "met": "yes" if not misses else "**no**: " + "; ".join(misses[:6]),
                    }
                )
    return rows, targets


def ratio_figure(res: CaseResult, path: Path) -> None:
    """Ratio to the CHOLMOD floor per operation and size (first and repeated)."""
    import matplotlib.pyplot as plt

    raw = res.data.get("raw", {})
    ops = [o for o in ("logpdf", "solve", "matvec", "slogdet", "draw")]
    sizes = sorted({int(k.split("|")[0]) for k in raw})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, which, goal in zip(axes, ("first", "repeated"), (1.5, 1.3), strict=True):
        for op in ops:
            pts = [
                (n, raw[f"{n}|{op}"][which]["ours"] / raw[f"{n}|{op}"][which]["floor"])
                for n in sizes
                if f"{n}|{op}" in raw
                and not (op == "slogdet" and which == "repeated")
                and raw[f"{n}|{op}"][which].get("floor")
            ]
            if pts:
                ax.semilogx(*zip(*pts, strict=True), "o-", label=op)
        ax.axhline(goal, color="red", ls=":", label=f"target {goal}×")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_title(f"{res.title.split(':')[0]}: {which} call / floor")
        ax.set_xlabel("n")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ours / bare CHOLMOD")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: Path, results: list[CaseResult], info: dict, quick: bool, modules) -> None:
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# woodbury_sparse benchmark report"
        + (" (QUICK run: smallest sizes, 1 repeat)" if quick else ""),
        "",
        "Generated by `python -m benchmarks.run" + (" --quick" if quick else "") + "` "
        f"({info['date']}, {info['total_seconds']:.0f} s). Every case times our operators and "
        "their baselines in the same process, interleaved, and reports medians; ratios are "
        "the result, absolute times only context.",
        "",
        "## Machine, libraries, BLAS",
        "",
        _md_table(["item", "value"], [{"item": k, "value": f"`{v}`"} for k, v in info.items()]),
        "",
    ]
    head, targets = headline(results)
    if head:
        lines += ["## Headline", "", _md_table(list(head[0]), head), ""]
    if targets:
        lines += ["## Targets (issue 5)", "", _md_table(["target", "value", "met"], targets), ""]
    if ANALYSIS.exists() and not quick:
        lines += [ANALYSIS.read_text().strip(), ""]
    for res in results:
        lines += [f"## {res.title} (`{res.name}`, {res.seconds:.0f} s)", ""]
        mod = modules[res.name]
        doc = (mod.__doc__ or "").strip()
        if doc:
            lines += [doc, ""]
        for tab in res.tables:
            lines += [tab["caption"], "", _md_table(tab["columns"], tab["rows"]), ""]
        for note in res.notes:
            lines += [f"- {note}" if not note.startswith("failed") else note, ""]
        fig = None
        try:
            if res.name in ("ar1", "grid") and res.data.get("raw"):
                fig = f"{res.name}.png"
                ratio_figure(res, out / fig)
            elif hasattr(mod, "figure") and res.data.get("raw"):
                fig = f"{res.name}.png"
                mod.figure(res, out / fig)
        except Exception as exc:  # a figure never breaks the report
            lines += [f"(figure failed: {exc!r})", ""]
            fig = None
        if fig:
            lines += [f"![{res.title}]({fig})", ""]
    (out / "REPORT.md").write_text("\n".join(lines) + "\n")
