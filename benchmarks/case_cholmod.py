"""CHOLMOD choices: ordering (natural / AMD / METIS / default) × mode (simplicial /
supernodal / auto) × system BLAS (reference / OpenBLAS), on the capacitance ``O = I + Q``
of the AR(1) and grid cases.

Each BLAS runs in its own subprocess: the reference BLAS is what Debian's alternatives
select by default here; OpenBLAS (``libopenblas0-pthread``) is loaded by putting its
directory first on ``LD_LIBRARY_PATH`` for that subprocess only, so the system-wide
alternative is never switched. The BLAS actually mapped is read back from
``/proc/self/maps`` and recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ._harness import OPENBLAS_DIR, CaseResult, fmt_ms, progress

NAME = "cholmod"
TITLE = "CHOLMOD ordering, mode and BLAS"
CONFIGS = [
    ("auto", "default"),
    ("simplicial", "natural"),
    ("simplicial", "amd"),
    ("supernodal", "natural"),
    ("supernodal", "amd"),
    ("supernodal", "metis"),
    ("simplicial", "metis"),
]


def _problems(quick: bool):
    from scipy import sparse

    from woodbury_sparse.testing import ar1_precision, grid_precision

    if quick:
        specs = [
            ("AR(1)", 10**4, lambda: ar1_precision(10**4, 0.9)),
            ("grid", 50**2, lambda: grid_precision(50)),
        ]
    else:
        specs = [
            ("AR(1)", 10**6, lambda: ar1_precision(10**6, 0.9)),
            ("grid", 500**2, lambda: grid_precision(500)),
        ]
    for label, n, make in specs:
        Q = make()
        cap = sparse.csc_matrix(sparse.eye_array(n) + Q)
        cap.sort_indices()
        yield label, n, cap


def _child(quick: bool) -> None:
    from sksparse.cholmod import cholesky

    from woodbury_sparse._factor._sksparse import NATURAL_ORDER_BANDWIDTH, bandwidth

    from ._harness import cholmod_blas

    out = {"blas": cholmod_blas(), "rows": []}
    reps = 1 if quick else 3
    for label, n, cap in _problems(quick):
        b = np.random.default_rng(0).standard_normal(n)
        banded = bandwidth(cap) <= NATURAL_ORDER_BANDWIDTH
        library = ("simplicial", "natural") if banded else ("auto", "default")
        for mode, ordering in CONFIGS:
            if ordering == "natural" and not banded:  # a band of width √n: hopeless fill
                continue
            ft, st = [], []
            for _ in range(reps):
                t0 = time.perf_counter()
                f = cholesky(cap, mode=mode, ordering_method=ordering)
                ft.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                f.solve_A(b)
                st.append(time.perf_counter() - t0)
            nnz_l = int(f.L().nnz) if mode != "supernodal" or n <= 300_000 else None
            out["rows"].append(
                {
                    "problem": label,
                    "n": n,
                    "mode": mode,
                    "ordering": ordering,
                    "factor_s": float(np.median(ft)),
                    "solve_s": float(np.median(st)),
                    "nnz_L": nnz_l,
                    "current": (mode, ordering) == library,
                }
            )
    print("RESULT " + json.dumps(out), flush=True)


def run(quick: bool = False) -> CaseResult:
    res = CaseResult(NAME, TITLE)
    root = Path(__file__).resolve().parent.parent
    envs = {"reference": {}}
    if Path(OPENBLAS_DIR, "libblas.so.3").exists():
        envs["openblas"] = {"LD_LIBRARY_PATH": OPENBLAS_DIR}
    else:
        res.notes.append(
            f"OpenBLAS not measured: {OPENBLAS_DIR}/libblas.so.3 is missing "
            "(`apt-get install libopenblas0-pthread`)."
        )
    results = {}
    for name, extra in envs.items():
        progress(f"  BLAS {name}: subprocess")
        env = {**os.environ, **extra}
        if name == "reference":
            env.pop("LD_LIBRARY_PATH", None)
        proc = subprocess.run(
            [sys.executable, "-c", f"from benchmarks.case_cholmod import _child; _child({quick})"],
            capture_output=True,
            text=True,
            cwd=root,
            env=env,
            check=False,
        )
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            res.notes.append(f"BLAS {name}: measurement failed: {proc.stderr.strip()[-300:]}")
            continue
        results[name] = json.loads(line[7:])
    if not results:
        return res
    first = next(iter(results.values()))
    rows = []
    for i, base in enumerate(first["rows"]):
        row = {
            "problem": f"{base['problem']} n = {base['n']:,}",
            "mode / ordering": f"{base['mode']} / {base['ordering']}"
            + (" (current)" if base.get("current") else ""),
            "nnz(L)": f"{base['nnz_L']:,}" if base["nnz_L"] else "–",
        }
        for r in results.values():
            row[f"factorise, {r['blas']} (ms)"] = fmt_ms(r["rows"][i]["factor_s"])
            row[f"solve, {r['blas']} (ms)"] = fmt_ms(r["rows"][i]["solve_s"])
        rows.append(row)
    res.table(
        "Median of 3 factorisations (`sksparse.cholmod.cholesky(O, mode, ordering_method)`) "
        "and of the following solve, per BLAS. *current* = what the factorisation layer "
        "asks for: simplicial mode and natural ordering for banded matrices (bandwidth ≤ "
        "8), otherwise mode auto and CHOLMOD's default ordering (AMD, then METIS if AMD's "
        "fill is poor).",
        list(rows[0]),
        rows,
    )
    res.notes.append(
        "BLAS read back from each subprocess's memory map: "
        + ", ".join(f"{k} → {v['blas']}" for k, v in results.items())
        + "."
    )
    res.data["raw"] = results
    return res


def figure(res: CaseResult, path) -> None:
    import matplotlib.pyplot as plt

    results = res.data["raw"]
    problems = sorted({r["problem"] for v in results.values() for r in v["rows"]})
    fig, axes = plt.subplots(1, len(problems), figsize=(11, 4.2))
    axes = np.atleast_1d(axes)
    width = 0.8 / max(1, len(results))
    for ax, prob in zip(axes, problems, strict=True):
        for j, (name, r) in enumerate(results.items()):
            rows = [x for x in r["rows"] if x["problem"] == prob]
            pos = np.arange(len(rows)) + j * width
            ax.bar(pos, [x["factor_s"] * 1e3 for x in rows], width, label=f"{name} BLAS")
            ax.set_xticks(np.arange(len(rows)) + width * (len(results) - 1) / 2)
            ax.set_xticklabels([f"{x['mode'][:5]}\n{x['ordering']}" for x in rows], fontsize=7)
        n = rows[0]["n"]
        ax.set_title(f"{prob}, n = {n:,}: factorise O = I + Q")
        ax.set_ylabel("ms")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
